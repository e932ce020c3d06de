import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type PrivatePostgres,
  runPostgresFaultTests,
  startPrivatePostgres,
} from '../support/private-postgres.js';
import { callServer, jsonPost, passwordGrant, readinessBecomes } from '../support/server-calls.js';
import { type ServerProcess, startServerProcess } from '../support/server-process.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

/**
 * Fault review, second part: the database address reaches a server that answers but refuses
 * writes, as after a failover to a standby still in recovery or with `default_transaction_read_only`
 * set by an operator (the same SQLSTATE, 25006, either way; the setting is what a test can do to a
 * private cluster). The real server process on a private PostgreSQL.
 */

const PASSWORD = 'correct horse battery';
const HANG_BOUND_MS = 4000;

/** Calls that must succeed (sign-up, logins: real argon2id hashing) get a wide bound on a loaded machine. */
const SUCCESS_BOUND_MS = 30_000;

const call = (server: ServerProcess, path: string, init: RequestInit = {}, boundMs = HANG_BOUND_MS) =>
  callServer(server, path, init, boundMs);
const login = (email: string) => passwordGrant(email, PASSWORD);
const register = (email: string) => jsonPost({ email, password: PASSWORD });

describe.skipIf(!runPostgresFaultTests)('PostgreSQL refusing writes (read-only, private PostgreSQL)', () => {
  let postgres: PrivatePostgres;
  let server: ServerProcess;
  const email = `read-only.${process.pid}@example.com`;

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    server = await startServerProcess({
      DATA_DIR: tempDir('gh-read-only-'),
      DATABASE_URL: postgres.url,
      DATABASE_CONNECT_TIMEOUT: '1s',
      DATABASE_STATEMENT_TIMEOUT: '1s',
      SECRET_KEY: 'fault-test-secret-fault-test-secret-0123456789',
    });
    await server.waitFor(/Gatehouse is ready/);
    expect((await call(server, '/auth/register', register(email), SUCCESS_BOUND_MS)).status).toBe(201);
  });

  afterAll(async () => {
    if (server?.alive()) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    postgres?.dispose();
  });

  it('says not ready (database read-only), answers writes 503, keeps JWT reads, and is ready again once writable', async () => {
    const signedIn = await call(server, '/token', login(email), SUCCESS_BOUND_MS);
    expect(signedIn.status).toBe(200);
    const bearer = { authorization: `Bearer ${String(signedIn.body.access_token)}` };
    expect((await call(server, '/users/me', { headers: bearer })).status).toBe(200);

    postgres.psql('alter system set default_transaction_read_only = on');
    postgres.psql('select pg_reload_conf()');
    // Before the fix the probe's `select 1` still answered: 200 "ready" while every write failed.
    const ready = await readinessBecomes(server, 503, HANG_BOUND_MS);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ status: 'not ready', database: 'read-only' });
    await server.waitFor(/readiness check: the database is read-only/);

    const refused = await call(server, '/token', login(email));
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: 'temporarily_unavailable', code: 'DATABASE_UNAVAILABLE' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // A wrong password too: its login_failed entry cannot be written, so it is not answered as a
    // refusal that leaves no trace (operator red-team 2026-12h F2: 400, the attempt unaudited and
    // a stack logged at error level for each).
    const guessed = await call(server, '/token', passwordGrant(email, 'wrong horse battery staple'));
    expect(guessed.status).toBe(503);
    expect(guessed.body).toMatchObject({ error: 'temporarily_unavailable', code: 'DATABASE_UNAVAILABLE' });
    expect(server.output()).not.toMatch(/audit entry lost/);
    const signUp = await call(server, '/auth/register', register(`x.${email}`));
    expect(signUp.status).toBe(503);
    expect(signUp.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await call(server, '/users/me', { headers: bearer })).status).toBe(200);

    // ALTER SYSTEM writes a file, not a table: a read-only server takes it.
    postgres.psql('alter system reset default_transaction_read_only');
    postgres.psql('select pg_reload_conf()');
    expect((await readinessBecomes(server, 200, HANG_BOUND_MS)).body).toMatchObject({
      status: 'ready',
      database: 'up',
    });
    expect((await call(server, '/token', login(email), SUCCESS_BOUND_MS)).status).toBe(200);
    expect(server.alive()).toBe(true);
  });
});
