import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { DicerySettings } from './apps/dicery/index.js';
import { defaultConfig, type GatehouseConfig } from './config/config.js';
import type { ScheduledTimer, Scheduler } from './lib/scheduler.js';
import { type BuildServerOptions, buildServer, type ReferenceServerConfig } from './server.js';

/** What a test may override: the core's settings and the reference apps' (Dicery's `roomTokenTtl`…). */
export type TestConfigOverrides = Partial<GatehouseConfig & DicerySettings>;

/** Data directories made by {@link testConfig} and not yet removed. */
const temporaryDirs = new Set<string>();

/** Removes a data directory made by {@link testConfig} (other paths are left alone). */
function removeTemporaryDir(dir: string): void {
  if (!temporaryDirs.delete(dir)) return;
  // Retried: a mail the closing server still writes to the outbox can land between the walk and
  // the rmdir (ENOTEMPTY). A send in flight when the mailer closes still completes, and its file
  // operations wait in libuv's pool behind any password hashes: 5 retries (≈ 0.75 s) ran out in a
  // full run on a loaded machine, so 10, with Node's linear backoff (≈ 2.75 s in all).
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  } catch {
    // Still being written on a machine slower than that (10 retries ran out once more in a full
    // run beside other suites): left to the exit clean-up, not a failed close.
    temporaryDirs.add(dir);
  }
}

let exitCleanupInstalled = false;

/**
 * One `exit` listener per process removes what is left. It used to be added whenever the set was
 * empty, so a suite that built and closed servers in turn added one per server and Node warned of a
 * listener leak (MaxListenersExceededWarning, "11 exit listeners added to [process]").
 */
function installExitCleanup(): void {
  if (exitCleanupInstalled) return;
  exitCleanupInstalled = true;
  process.once('exit', () => temporaryDirs.forEach(removeTemporaryDir));
}

/**
 * Settings for tests: an in-memory SQLite database, a random secret, a temporary data directory,
 * and everything else at its production default (hashing parameters included). The directory is
 * removed when a {@link buildTestServer} server using it closes, and in any case when the process
 * exits, so test runs leave no folders behind.
 */
export function testConfig(overrides: TestConfigOverrides = {}): ReferenceServerConfig {
  let dataDir = overrides.dataDir;
  if (dataDir === undefined) {
    dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
    installExitCleanup();
    temporaryDirs.add(dataDir);
  }
  return {
    ...defaultConfig,
    databaseUrl: 'sqlite::memory:',
    secretKey: new Uint8Array(randomBytes(32)),
    logLevel: 'silent',
    ...overrides,
    dataDir,
  };
}

/**
 * A controllable clock for tests: starts at `start` and moves only when told. It is also a
 * {@link Scheduler}: pass it as `scheduler` (with `clock`) to `createGatehouse`/`buildServer`, and
 * {@link TestClock.advance} fires the timers that fall due, in order, at their due time.
 */
export interface TestClock extends Scheduler {
  (): number;
  /** Moves time forward by `ms`, running each timer that falls due on the way. */
  advance(ms: number): void;
}

interface PendingTimer {
  due: number;
  every: number | undefined;
  run: () => void;
  order: number;
}

/** Creates a {@link TestClock}. */
export function createTestClock(start = Date.now()): TestClock {
  let now = start;
  let order = 0;
  const timers = new Set<PendingTimer>();
  const add = (run: () => void, ms: number, every: number | undefined): ScheduledTimer => {
    // Like Node's timers: a delay below 1 ms is 1 ms, so an interval can never spin in place.
    const timer: PendingTimer = { due: now + Math.max(1, ms), every, run, order: order++ };
    timers.add(timer);
    return { cancel: () => timers.delete(timer) };
  };
  const next = (until: number): PendingTimer | undefined => {
    let found: PendingTimer | undefined;
    for (const timer of timers) {
      if (timer.due > until) continue;
      if (
        found === undefined ||
        timer.due < found.due ||
        (timer.due === found.due && timer.order < found.order)
      ) {
        found = timer;
      }
    }
    return found;
  };
  return Object.assign(() => now, {
    advance(ms: number) {
      const target = now + ms;
      for (let timer = next(target); timer !== undefined; timer = next(target)) {
        now = timer.due;
        if (timer.every === undefined) timers.delete(timer);
        else {
          timer.due += Math.max(1, timer.every);
          timer.order = order++;
        }
        timer.run();
      }
      now = target;
    },
    setTimeout: (run: () => void, ms: number) => add(run, ms, undefined),
    setInterval: (run: () => void, ms: number) => add(run, ms, ms),
  });
}

/** Builds a server on {@link testConfig} for `app.inject` tests. Close it when done. */
export async function buildTestServer(
  overrides: TestConfigOverrides = {},
  options: BuildServerOptions = {},
): Promise<FastifyInstance> {
  const config = testConfig(overrides);
  const app = await buildServer(config, { logger: false, ...options });
  app.addHook('onClose', async () => removeTemporaryDir(config.dataDir));
  return app;
}
