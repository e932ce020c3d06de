import { describe, expect, it } from 'vitest';
import { buildServer } from '../../src/server.js';
import { testConfig } from '../../src/testing.js';

/** The JSON log lines a server at `level` writes while answering `GET /healthz?x=1`. */
async function logOfOneRequest(level: 'info' | 'debug'): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const app = await buildServer(testConfig({ logLevel: level }), {
    logStream: { write: (line: string) => void lines.push(line) },
    webUi: false,
  });
  try {
    lines.length = 0;
    expect((await app.inject({ method: 'GET', url: '/healthz?x=1' })).statusCode).toBe(200);
  } finally {
    await app.close();
  }
  return lines
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => typeof entry.reqId === 'string');
}

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

  it('adds the incoming-request line at debug', async () => {
    const entries = await logOfOneRequest('debug');
    expect(entries.map((entry) => entry.msg)).toEqual(['incoming request', 'request completed']);
  });
});
