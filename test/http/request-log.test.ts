import { describe, expect, it } from 'vitest';
import { createLoggerOptions } from '../../src/http/log-options.js';
import { type BuildServerOptions, buildServer } from '../../src/server.js';
import { testConfig } from '../../src/testing.js';

/** The raw log lines (with a request id) a server writes while answering `url`. */
async function requestLines(
  level: 'info' | 'debug',
  logging: (write: (line: string) => void) => BuildServerOptions,
  url = '/healthz?x=1',
): Promise<string[]> {
  const lines: string[] = [];
  const app = await buildServer(testConfig({ logLevel: level }), {
    ...logging((line) => void lines.push(line)),
    webUi: false,
  });
  try {
    lines.length = 0;
    expect((await app.inject({ method: 'GET', url, remoteAddress: '203.0.113.9' })).statusCode).toBe(200);
  } finally {
    await app.close();
  }
  return lines.filter((line) => line.includes('"reqId"'));
}

/** The JSON log lines a server at `level` writes while answering `GET /healthz?x=1`. */
async function logOfOneRequest(level: 'info' | 'debug'): Promise<Record<string, unknown>[]> {
  const lines = await requestLines(level, (write) => ({ logStream: { write } }));
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A line with the fields that differ between two runs (time, duration) blanked. */
const steady = (line: string) =>
  line.replace(/"time":\d+/, '"time":0').replace(/"responseTime":[\d.e-]+/, '"responseTime":0');

describe('request log', () => {
  it('writes one line per request at info, with the request, status and time', async () => {
    const entries = await logOfOneRequest('info');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      msg: 'request completed',
      req: { method: 'GET', url: '/healthz?x=1' },
      res: { statusCode: 200 },
    });
    expect(typeof entries[0]?.responseTime).toBe('number');
  });

  it('writes the completed line without the redaction pass byte for byte as with it', async () => {
    // The default logger takes the redaction-free path for "request completed"; passing the same
    // options explicitly (`logger`) takes pino's redacting path. The lines must not differ.
    const url = '/healthz?access_token=secret-value&x=1';
    const fast = await requestLines('info', (write) => ({ logStream: { write } }), url);
    const redacting = await requestLines(
      'info',
      (write) => ({ logger: createLoggerOptions('info', { write }) }),
      url,
    );
    expect(fast).toHaveLength(1);
    expect(redacting).toHaveLength(1);
    expect(steady(fast[0] ?? '')).toBe(steady(redacting[0] ?? ''));
    expect(fast[0]).toContain('access_token=[redacted]');
    expect(fast[0]).not.toContain('secret-value');
    // The request id comes first, as the per-request child's binding puts it.
    expect(Object.keys(JSON.parse(fast[0] ?? '{}') as object)).toEqual([
      'level',
      'time',
      'pid',
      'hostname',
      'reqId',
      'req',
      'res',
      'responseTime',
      'msg',
    ]);
  });

  it("keeps a caller's own logger's redaction on the completed line", async () => {
    const options = createLoggerOptions('info');
    const [line] = await requestLines('info', (write) => ({
      logger: { ...options, stream: { write }, redact: { paths: ['req.remoteAddress'], censor: '[gone]' } },
    }));
    expect(line).toContain('"remoteAddress":"[gone]"');
    expect(line).not.toContain('203.0.113.9');
  });

  it('adds the incoming-request line at debug', async () => {
    const entries = await logOfOneRequest('debug');
    expect(entries.map((entry) => entry.msg)).toEqual(['incoming request', 'request completed']);
  });
});
