import { spawn } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { freePort } from './support/private-postgres.js';
import { CLI } from './support/server-process.js';
import { useTempDirs } from './support/temp-dirs.js';

const tempDir = useTempDirs();

// Ops review 2026-12s O1: stdout on a full disk (systemd's `StandardOutput=append:` on the data
// disk), /dev/full here. Pino's stream had no error listener, so the first refused log line was an
// uncaught exception, and pino's exit handler then retried SonicBoom's flushSync every 100 ms for
// ever: the process answered nothing, not even /healthz, and never exited.
describe('gatehouse serve with stdout refusing every write (ENOSPC)', () => {
  it('goes on serving, logs nothing, and stops on SIGTERM', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    const full = openSync('/dev/full', constants.O_WRONLY);
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        METRICS_PORT: String(metricsPort),
        DATA_DIR: tempDir('gh-log-full-'),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', full, 'pipe'],
    });
    closeSync(full);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = `http://127.0.0.1:${port}`;
      const answer = async (path: string, init?: RequestInit) =>
        fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(2_000) }).then(
          (response) => response.status,
          () => 0,
        );
      await expect.poll(() => answer('/readyz'), { timeout: 30_000, interval: 200 }).toBe(200);
      // Each of these logs lines (a request, a refused sign-in), all refused by the destination.
      // (400, then 429 once this address has failed too often: refusals are logged too.)
      for (let i = 0; i < 20; i += 1) {
        expect([400, 429]).toContain(
          await answer('/token', {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: 'grant_type=password&username=nobody%40example.com&password=wrong-password-here',
          }),
        );
        expect(await answer('/healthz')).toBe(200);
      }
      // The lines are held (4 MiB at most), none dropped yet: the series says so (ops review O6).
      const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((response) =>
        response.text(),
      );
      expect(metrics).toMatch(/^gatehouse_log_lines_dropped_total 0$/m);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).not.toMatch(/Error|ENOSPC/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
