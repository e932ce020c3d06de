import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dataDir = mkdtempSync(join(tmpdir(), 'gh-npm-start-'));
let serverPid: number | undefined;
afterAll(() => {
  // A server the signal did not reach would otherwise outlive the run, holding its port.
  if (serverPid !== undefined) {
    try {
      process.kill(serverPid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(dataDir, { recursive: true, force: true });
});

/** `env` without the shared PostgreSQL and Redis that CI sets for the suites that need them. */
function withoutSharedServices(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { DATABASE_URL: _database, REDIS_URL: _redis, ...rest } = env;
  return rest;
}

/** True while a process with this id exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', { timeout: 60_000 }, () => {
  // A process manager (systemd, Docker with npm as PID 1, a deploy script) stops the README's
  // `npm start` by signalling npm. npm forwards SIGTERM to the script's `sh -c`, which died of it
  // and left the server running without its parent, still listening and never shutting down.
  it('passes SIGTERM sent to npm on to the server, which shuts down gracefully', async () => {
    const npm = spawn('npm', ['start', '--silent'], {
      // SQLite in its own DATA_DIR: under CI's DATABASE_URL it joined the shared PostgreSQL, whose
      // recorded SECRET_KEY fingerprint (another test's) refused this server's generated secret.
      env: { ...withoutSharedServices(process.env), PORT: '0', DATA_DIR: dataDir, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    npm.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const exited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
    await expect
      .poll(() => output.includes('Gatehouse is ready'), { timeout: 45_000, interval: 100 })
      .toBe(true);
    const pid = Number(/"pid":(\d+)[^\n]*Gatehouse is ready/.exec(output)?.[1]);
    expect(Number.isInteger(pid)).toBe(true);
    serverPid = pid;
    npm.kill('SIGTERM');
    await exited;
    await expect.poll(() => alive(pid), { timeout: 10_000, interval: 100 }).toBe(false);
    expect(output).toContain('SIGTERM received');
  });
});
