import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  type PrivatePostgres,
  runPostgresFaultTests,
  startPrivatePostgres,
} from '../support/private-postgres.js';
import { callServer, jsonPost, passwordGrant, readinessBecomes } from '../support/server-calls.js';
import { type ServerProcess, startServerProcess } from '../support/server-process.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

/**
 * Fault review, second part: PostgreSQL's `max_connections` exhausted by other clients (another
 * service's pool, a leaking cron job, a `psql` left open per operator). The real server process on
 * a private PostgreSQL (`max_connections=50`, see private-postgres.ts); the test holds every slot
 * itself, then lets go.
 */

const PASSWORD = 'correct horse battery';
const CONNECT_TIMEOUT_MS = 1000;
const STATEMENT_TIMEOUT_MS = 1000;
/** A refused connection answers at once; this bounds a hang (connect timeout plus two busy cores). */
const HANG_BOUND_MS = CONNECT_TIMEOUT_MS + 2000;

/**
 * Calls that must succeed (sign-up, logins: real argon2id hashing) get a wide bound: on a loaded
 * machine they took over 3 s. Only the refusals are held to {@link HANG_BOUND_MS}.
 */
const SUCCESS_BOUND_MS = 30_000;

const call = (server: ServerProcess, path: string, init: RequestInit = {}, boundMs = HANG_BOUND_MS) =>
  callServer(server, path, init, boundMs);
const login = (email: string) => passwordGrant(email, PASSWORD);

/** The pool's gauges, read from the server's own metrics listener. */
async function poolGauges(metricsUrl: string): Promise<Record<string, number>> {
  const text = await (
    await fetch(`${metricsUrl}/metrics`, { signal: AbortSignal.timeout(HANG_BOUND_MS) })
  ).text();
  const gauges: Record<string, number> = {};
  for (const match of text.matchAll(/^gatehouse_database_connections\{state="(\w+)"\} (\d+)$/gm)) {
    gauges[String(match[1])] = Number(match[2]);
  }
  return gauges;
}

describe.skipIf(!runPostgresFaultTests)('PostgreSQL max_connections exhausted (private PostgreSQL)', () => {
  let postgres: PrivatePostgres;
  let server: ServerProcess;
  let metricsUrl: string;
  const hogs: pg.Client[] = [];
  const email = `slots.${process.pid}@example.com`;

  /** Opens connections until PostgreSQL refuses one with 53300 (too many connections). */
  async function takeEverySlot(): Promise<void> {
    for (let i = 0; i < 60; i += 1) {
      const client = new pg.Client({ connectionString: `${postgres.url}&application_name=slot_hog` });
      client.on('error', () => {});
      try {
        await client.connect();
        hogs.push(client);
      } catch (error) {
        expect((error as { code?: string }).code).toBe('53300');
        return;
      }
    }
    throw new Error('PostgreSQL never refused a connection');
  }

  async function releaseSlots(): Promise<void> {
    await Promise.all(hogs.splice(0).map((client) => client.end().catch(() => {})));
  }

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    const metricsPort = await freePort();
    server = await startServerProcess({
      DATA_DIR: tempDir('gh-slots-'),
      DATABASE_URL: `${postgres.url}&application_name=gatehouse_slots_test`,
      DATABASE_CONNECT_TIMEOUT: `${CONNECT_TIMEOUT_MS}ms`,
      DATABASE_STATEMENT_TIMEOUT: `${STATEMENT_TIMEOUT_MS}ms`,
      SECRET_KEY: 'fault-test-secret-fault-test-secret-0123456789',
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
      LOGIN_MAX_FAILURES_PER_IP: '100000',
      METRICS_PORT: String(metricsPort),
    });
    metricsUrl = `http://127.0.0.1:${metricsPort}`;
    await server.waitFor(/Gatehouse is ready/);
    const created = await call(
      server,
      '/auth/register',
      jsonPost({ email, password: PASSWORD }),
      SUCCESS_BOUND_MS,
    );
    expect(created.status).toBe(201);
  });

  afterAll(async () => {
    await releaseSlots();
    if (server?.alive()) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    postgres?.dispose();
  });

  it('answers 503 at once while no slot is free, says not ready, keeps JWT reads, and recovers alone', async () => {
    const signedIn = await call(server, '/token', login(email), SUCCESS_BOUND_MS);
    expect(signedIn.status).toBe(200);
    const bearer = { authorization: `Bearer ${String(signedIn.body.access_token)}` };
    // Fills the user cache, as a signed-in client's first request does: JWT reads then need no database.
    expect((await call(server, '/users/me', { headers: bearer })).status).toBe(200);

    await takeEverySlot();
    // The server's own pooled connections still hold slots: end them, and take those slots too.
    // (Through a held connection: psql would find no slot either.)
    await hogs[0]?.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'gatehouse_slots_test'",
    );
    await server.waitFor(/database connection lost/);
    await takeEverySlot();

    // Twenty logins at once: every one a 503 (RFC 6749 JSON on /token) within the bound, none a 500.
    const started = performance.now();
    const storm = await Promise.all(Array.from({ length: 20 }, () => call(server, '/token', login(email))));
    const stormMs = performance.now() - started;
    for (const answer of storm) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(503);
      expect(answer.body).toMatchObject({ error: 'temporarily_unavailable', code: 'DATABASE_UNAVAILABLE' });
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    const ready = await call(server, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ database: 'down' });
    expect((await call(server, '/healthz')).status).toBe(200);
    expect((await call(server, '/users/me', { headers: bearer })).status).toBe(200);
    // Nobody left waiting for a connection, none left open: the refused connects were not kept.
    expect(await poolGauges(metricsUrl)).toMatchObject({ in_use: 0, idle: 0, waiting: 0 });

    await releaseSlots();
    // Recovery needs no restart: the next request connects again.
    expect((await readinessBecomes(server, 200, HANG_BOUND_MS)).status).toBe(200);
    const after = await Promise.all(
      Array.from({ length: 12 }, () => call(server, '/token', login(email), SUCCESS_BOUND_MS)),
    );
    for (const answer of after) expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    const gauges = await poolGauges(metricsUrl);
    expect(gauges.waiting).toBe(0);
    expect((gauges.in_use ?? 0) + (gauges.idle ?? 0)).toBeLessThanOrEqual(10);
    expect(server.alive()).toBe(true);
    // For the fault review: how long the storm took to be refused (not an assertion).
    console.info(`20 logins refused in ${Math.round(stormMs)} ms while every slot was taken`);
  });
});
