import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { startServer } from '../../src/start-server.js';
import { testConfig } from '../../src/testing.js';
import { PASSWORD } from '../support/accounts.js';
import { freePort } from '../support/private-postgres.js';

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(metricsUrl: string | undefined): Promise<string> {
  const response = await fetch(`${metricsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
  expect(response.status).toBe(200);
  return response.text();
}

/** Scrapes until `ok` holds of the text (a start-up attempt or a state change is asynchronous). */
async function scrapeUntil(metricsUrl: string | undefined, ok: (text: string) => boolean): Promise<string> {
  let text = '';
  for (let attempt = 0; attempt < 100; attempt += 1) {
    text = await scrape(metricsUrl);
    if (ok(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return text;
}

// Ops review 2026-12s O6: the listener opened only once the core had started and closed before the
// drain, so a server waiting for its database, or draining, looked to Prometheus like one that was down.
describe('the metrics listener of startServer', () => {
  it('answers while the server waits for its database: its state, the failed attempts, the 503s and dropped log lines', async () => {
    // Nothing listens on this port: every start-up attempt is refused, then retried.
    const port = await freePort();
    const server = await startServer(
      testConfig({ port: 0, metricsPort: 0, databaseUrl: `postgres://postgres@127.0.0.1:${port}/postgres` }),
      { logger: false, initialRetryDelayMs: 50, maxRetryDelayMs: 200, droppedLogLines: () => 7 },
    );
    try {
      expect(server.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${server.url}/users/me`)).status).toBe(503);
      const text = await scrapeUntil(
        server.metricsUrl,
        (t) => (sample(t, 'gatehouse_startup_attempts_failed_total') ?? 0) >= 2,
      );
      expect(sample(text, 'gatehouse_server_state{state="starting"}')).toBe(1);
      expect(sample(text, 'gatehouse_server_state{state="ready"}')).toBe(0);
      expect(sample(text, 'gatehouse_startup_attempts_failed_total')).toBeGreaterThanOrEqual(2);
      expect(sample(text, 'gatehouse_http_requests_total{method="GET",route="unmatched",status="503"}')).toBe(
        1,
      );
      expect(sample(text, 'gatehouse_log_lines_dropped_total')).toBe(7);
      // Process metrics from the first scrape on.
      expect(sample(text, 'gatehouse_process_resident_memory_bytes')).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
    await expect(fetch(`${server.metricsUrl}/metrics`)).rejects.toThrow();
  });

  it('shows the application once ready, and keeps answering through the drain until the core has closed', {
    timeout: 20_000,
  }, async () => {
    const config = testConfig({
      port: 0,
      metricsPort: 0,
      registrationsPerHour: 1000,
      shutdownGracePeriodMs: 60_000,
    });
    config.databaseUrl = `sqlite:${join(config.dataDir, 'gatehouse.db')}`;
    const server = await startServer(config, { logger: false, webUi: false });
    const app = await server.ready;
    if (app === undefined) throw new Error('the server did not start');
    const ready = await scrape(server.metricsUrl);
    expect(sample(ready, 'gatehouse_server_state{state="ready"}')).toBe(1);
    expect(sample(ready, 'gatehouse_server_state{state="starting"}')).toBe(0);
    expect(sample(ready, 'gatehouse_startup_attempts_failed_total')).toBe(0);
    // The application's own figures are in the same registry; no dropped-lines series was asked for.
    expect(sample(ready, 'gatehouse_revoked_sessions')).toBe(0);
    expect(sample(ready, 'gatehouse_log_lines_dropped_total')).toBeUndefined();

    // A registration held at its password hash: the drain waits for it.
    const { hasher } = gatehouseCore(app.gatehouse);
    const hash = hasher.hash.bind(hasher);
    let arrived: () => void = () => {};
    const reached = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    hasher.hash = async (password, lane) => {
      arrived();
      await held;
      return hash(password, lane);
    };
    const registration = fetch(`${server.url}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'draining@example.com', password: PASSWORD }),
    }).then((response) => response.status);
    await reached;
    const closed = server.close();
    const draining = await scrapeUntil(
      server.metricsUrl,
      (t) => sample(t, 'gatehouse_server_state{state="draining"}') === 1,
    );
    expect(sample(draining, 'gatehouse_server_state{state="draining"}')).toBe(1);
    expect(sample(draining, 'gatehouse_server_state{state="ready"}')).toBe(0);
    expect(sample(draining, 'gatehouse_revoked_sessions')).toBe(0);
    release();
    expect(await registration).toBe(201);
    await closed;
    await expect(fetch(`${server.metricsUrl}/metrics`)).rejects.toThrow();
  });
});
