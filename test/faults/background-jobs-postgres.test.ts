import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import {
  type PrivatePostgres,
  runPostgresFaultTests,
  startPrivatePostgres,
} from '../support/private-postgres.js';

/**
 * The background jobs (red-team 2026-12p, part 1) against a PostgreSQL of this test's own, frozen
 * (SIGSTOP) and killed then restarted: the hourly sweep, the revocation list's and the signing
 * keys' reloads, the security-notice sweep, Dicery's idle and closed-room sweep. Each must give a
 * hung call a deadline, never run twice at once (so a long outage piles nothing up), survive its
 * failures and run again once the database is back, leave no unhandled rejection, and let the
 * server close while a call hangs. Timers run on a test clock (advanced by hand, hours at a time);
 * the database's own bounds (1 s statement timeout, 1 s connect) are real time.
 */

const STATEMENT_TIMEOUT_MS = 1000;
/** Real time for a hung call to meet its client-side deadline (statement timeout + 1 s), with slack. */
const DEADLINE_SLACK_MS = STATEMENT_TIMEOUT_MS + 1000 + 3000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not reached: ${what}`);
    await sleep(50);
  }
}

/** Resolves `work`, or rejects once `ms` of real time passed: a hang fails the test instead of its timeout. */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe.runIf(runPostgresFaultTests)(
  'background jobs against a frozen or killed PostgreSQL',
  { shuffle: false, timeout: 120_000 },
  () => {
    let postgres: PrivatePostgres;
    let app: FastifyInstance;
    let clock: TestClock;
    const logs: string[] = [];
    const queries: string[] = [];
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => void rejections.push(reason);

    /** Advances the test clock `total` ms in `step`s, letting callbacks run between steps. */
    const advance = async (total: number, step: number) => {
      for (let moved = 0; moved < total; moved += step) {
        clock.advance(step);
        await sleep(0);
      }
    };
    /**
     * Warning lines, but for the breaker's "answering again", which is held back up to 10 s after its
     * "not answering" line (connection-breaker.ts) and so may come after a phase that checks for none.
     */
    const warnings = () =>
      logs.filter((line) => /"level":40/.test(line) && !line.includes('database answering again'));
    const pool = () => gatehouseCore(app.gatehouse).database.poolStats();

    beforeAll(async () => {
      process.on('unhandledRejection', onRejection);
      postgres = await startPrivatePostgres();
      clock = createTestClock(Date.now());
      app = await buildTestServer(
        {
          databaseUrl: postgres.url,
          databaseConnectTimeoutMs: 1000,
          databaseStatementTimeoutMs: STATEMENT_TIMEOUT_MS,
          // Asymmetric: its keys live in the database and are reloaded every 30 s (HS256's are not).
          jwtAlgorithm: 'ES256',
          logLevel: 'warn',
        },
        {
          clock,
          scheduler: clock,
          webUi: false,
          // buildTestServer turns logging off unless asked: the warnings are what this test reads.
          logger: undefined,
          logStream: { write: (line) => void logs.push(line) },
          onQuery: (sql) => void queries.push(sql),
        },
      );
      await app.ready();
    }, 60_000);
    afterAll(async () => {
      process.off('unhandledRejection', onRejection);
      postgres?.thaw();
      await app?.close().catch(() => {});
      postgres?.dispose();
    });

    it('runs every job once against a healthy database', async () => {
      queries.length = 0;
      await advance(65 * 60_000, 60_000);
      await waitFor(() => queries.some((sql) => /delete from "audit_events"/i.test(sql)), 'the hourly sweep');
      await waitFor(() => queries.some((sql) => /"signing_keys"/.test(sql)), 'a signing key reload');
      expect(warnings()).toEqual([]);
    });

    it('piles nothing up while PostgreSQL is frozen, warns, and leaves no unhandled rejection', async () => {
      postgres.freeze();
      // Three hours of timers while the first calls hang: the keyrings' 30 s reloads, the notices'
      // 60 s sweep, the revocation reload, the hourly sweep and Dicery's 5-minute sweep, hundreds of
      // ticks. Each job has at most one call in flight, so the pool is never short of a slot.
      await advance(3 * 60 * 60_000, 30_000);
      expect(pool().waiting).toBe(0);
      expect(pool().open).toBeLessThanOrEqual(pool().max);
      // The hung calls meet their deadline; the breaker then fails the next ones at once.
      await sleep(DEADLINE_SLACK_MS);
      await advance(60 * 60_000, 30_000);
      await sleep(500);
      expect(pool().waiting).toBe(0);
      expect(pool().unreachable).toBe(true);
      expect(warnings().join('\n')).toMatch(
        /sweep step failed|revocation list reload failed|signing key reload failed/,
      );
      expect(rejections).toEqual([]);
    });

    it('runs every job again, successfully, once it thaws', async () => {
      postgres.thaw();
      await waitFor(() => pool().unreachable !== true, 'the breaker closed');
      // Whatever was in flight finishes or fails first; then an hour and a half of timers.
      await sleep(DEADLINE_SLACK_MS);
      logs.length = 0;
      queries.length = 0;
      await advance(90 * 60_000, 30_000);
      await waitFor(() => queries.some((sql) => /delete from "audit_events"/i.test(sql)), 'the hourly sweep');
      await waitFor(() => queries.some((sql) => /"signing_keys"/.test(sql)), 'a signing key reload');
      await waitFor(() => queries.some((sql) => /"pending_notices"/.test(sql)), 'a notice sweep');
      await waitFor(() => queries.some((sql) => /"rooms"/.test(sql)), "Dicery's sweep");
      await waitFor(() => queries.some((sql) => /"revoked_at" >/.test(sql)), 'a revocation reload');
      await sleep(500);
      expect(warnings()).toEqual([]);
      expect(rejections).toEqual([]);
    });

    it('runs every job again after PostgreSQL was killed and restarted', async () => {
      postgres.kill();
      await advance(2 * 60 * 60_000, 30_000);
      await sleep(DEADLINE_SLACK_MS);
      await advance(10 * 60_000, 30_000);
      postgres.start();
      await waitFor(() => pool().unreachable !== true, 'the breaker closed');
      await sleep(DEADLINE_SLACK_MS);
      logs.length = 0;
      queries.length = 0;
      await advance(90 * 60_000, 30_000);
      await waitFor(() => queries.some((sql) => /delete from "audit_events"/i.test(sql)), 'the hourly sweep');
      await waitFor(() => queries.some((sql) => /"revoked_at" >/.test(sql)), 'a revocation reload');
      await sleep(500);
      expect(warnings()).toEqual([]);
      expect(rejections).toEqual([]);
    });

    it('closes while every job has a call hung on a frozen PostgreSQL, and nothing runs or warns after', async () => {
      postgres.freeze();
      // A minute in: the notice sweep, the keyrings' reloads and the revocation reload hang now.
      await advance(65 * 60_000, 30_000);
      await within(app.close(), 60_000, 'app.close()');
      const closedAt = queries.length;
      const warned = warnings().length;
      postgres.thaw();
      await sleep(DEADLINE_SLACK_MS);
      expect(queries.slice(closedAt)).toEqual([]);
      expect(warnings().slice(warned)).toEqual([]);
      expect(rejections).toEqual([]);
    });
  },
);
