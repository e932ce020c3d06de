import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { postToken } from '../support/accounts.js';
import { run } from '../support/run-cli.js';
import { type ServerProcess, startServerProcess } from '../support/server-process.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

const PASSWORD = 'correct horse battery';
const STATEMENT_TIMEOUT_MS = 3000;

const tokenRequest = (email: string): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD }).toString(),
});

const registration = (email: string): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ email, password: PASSWORD }),
});

/** One request's answer and how long it took. */
async function timed(url: string, init: RequestInit = {}) {
  const started = performance.now();
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(STATEMENT_TIMEOUT_MS * 4) });
  const body = (await response.json()) as Record<string, unknown>;
  return { status: response.status, headers: response.headers, body, ms: performance.now() - started };
}

/**
 * The SQLite file shared with another process, as an operator shares it: `gatehouse` commands
 * (migrate, create-user, import-users, clients) or a `sqlite3` shell writing while the server
 * serves. Here the test process itself holds the write lock (`BEGIN IMMEDIATE` on its own
 * connection), so it knows exactly when the lock is taken and released.
 */
describe('a second process writing the SQLite file (real server process)', { timeout: 120_000 }, () => {
  let dataDir: string;
  let server: ServerProcess;
  let email: string;
  let other: SQLite.Database;

  beforeAll(async () => {
    dataDir = tempDir('gh-sqlite-writer-');
    server = await startServerProcess({
      DATA_DIR: dataDir,
      SECRET_KEY: 'sqlite-fault-secret-sqlite-fault-secret-0123',
      DATABASE_STATEMENT_TIMEOUT: `${STATEMENT_TIMEOUT_MS}ms`,
      // One account signs in throughout: on a slow machine the CLI test's login loop alone passed
      // the default 60 successful logins per window, and later logins got 429 (a limit, not a fault).
      LOGIN_MAX_SUCCESSES_PER_ACCOUNT: '1000000',
    });
    await server.waitFor(/Gatehouse is ready/);
    email = `writer.${process.pid}@example.com`;
    expect((await timed(`${server.url}/auth/register`, registration(email))).status).toBe(201);
    other = new SQLite(join(dataDir, 'gatehouse.db'));
  });

  afterAll(async () => {
    if (other?.inTransaction) other.exec('rollback');
    other?.close();
    if (server?.alive()) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  /** Health checks sent every 100 ms while `during` runs: their slowest answer, in ms. */
  async function slowestHealthCheck(during: Promise<unknown>): Promise<number> {
    let done = false;
    let slowest = 0;
    const probes = (async () => {
      while (!done) {
        const health = await timed(`${server.url}/healthz`);
        expect(health.status).toBe(200);
        slowest = Math.max(slowest, health.ms);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await during.finally(() => {
      done = true;
    });
    await probes;
    return slowest;
  }

  it('past the statement timeout: 503 with Retry-After, and the server answers other requests meanwhile', async () => {
    other.exec('begin immediate');
    let login: Awaited<ReturnType<typeof timed>> | undefined;
    let registered: Awaited<ReturnType<typeof timed>> | undefined;
    try {
      const waiting = Promise.all([
        timed(`${server.url}/token`, tokenRequest(email)).then((answer) => {
          login = answer;
        }),
        timed(`${server.url}/auth/register`, registration(`second.${email}`)).then((answer) => {
          registered = answer;
        }),
      ]);
      // SQLite's busy_timeout slept inside the synchronous call, so the whole event loop stopped
      // for the timeout once per waiting statement: /healthz took the timeout or longer.
      expect(await slowestHealthCheck(waiting)).toBeLessThan(STATEMENT_TIMEOUT_MS / 2);
    } finally {
      other.exec('rollback');
    }
    if (login === undefined || registered === undefined) throw new Error('unanswered');
    expect(login.status).toBe(503);
    expect(login.body).toMatchObject({ error: 'temporarily_unavailable', code: 'DATABASE_UNAVAILABLE' });
    expect(Number(login.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(registered.status).toBe(503);
    expect(registered.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(registered.body).toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
    // They waited for the lock (the bound), rather than failing at once.
    expect(login.ms).toBeGreaterThanOrEqual(STATEMENT_TIMEOUT_MS - 100);
    // The same requests succeed once the lock is gone.
    expect((await timed(`${server.url}/token`, tokenRequest(email))).status).toBe(200);
    expect((await timed(`${server.url}/auth/register`, registration(`second.${email}`))).status).toBe(201);
  });

  it('a lock released within the timeout: the waiting requests go through', async () => {
    other.exec('begin immediate');
    const release = setTimeout(() => other.exec('commit'), STATEMENT_TIMEOUT_MS / 3);
    try {
      const [login, registered] = await Promise.all([
        timed(`${server.url}/token`, tokenRequest(email)),
        timed(`${server.url}/auth/register`, registration(`third.${email}`)),
      ]);
      expect(login.status).toBe(200);
      expect(registered.status).toBe(201);
    } finally {
      clearTimeout(release);
      if (other.inTransaction) other.exec('rollback');
    }
  });

  it('gatehouse create-user and migrate on the same file while sign-ins run: nothing fails', async () => {
    const env = {
      DATA_DIR: dataDir,
      SECRET_KEY: 'sqlite-fault-secret-sqlite-fault-secret-0123',
      DATABASE_STATEMENT_TIMEOUT: `${STATEMENT_TIMEOUT_MS}ms`,
    };
    let signingIn = true;
    const statuses: number[] = [];
    const logins = (async () => {
      while (signingIn) {
        const batch = await Promise.all(
          [1, 2, 3].map(() => timed(`${server.url}/token`, tokenRequest(email))),
        );
        statuses.push(...batch.map((answer) => answer.status));
      }
    })();
    try {
      const [created, migrated] = await Promise.all([
        run(['create-user', '--email', `cli.${email}`], env, `${PASSWORD}\n`),
        run(['migrate'], env),
      ]);
      expect(created.stderr).toBe('');
      expect(created.code).toBe(0);
      expect(migrated.stderr).toBe('');
      expect(migrated.code).toBe(0);
    } finally {
      signingIn = false;
      await logins;
    }
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set([200]));
    expect((await timed(`${server.url}/token`, tokenRequest(`cli.${email}`))).status).toBe(200);
  });
});

/**
 * A full disk, made real inside SQLite: `max_page_count` at the file's current size, so the next
 * write that needs a page fails with SQLITE_FULL ("database or disk is full"), exactly as on a
 * full file system (tried by hand on a 3 MiB tmpfs: 500 INTERNAL_ERROR before the fix).
 */
describe('the SQLite disk full (SQLITE_FULL)', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildTestServer({
      databaseUrl: `sqlite:${join(tempDir('gh-sqlite-full-'), 'full.db')}`,
      // Registrations fill the file here; their limit is not under test.
      registrationsPerHour: 1000,
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  const db = () => gatehouseCore(app.gatehouse).database.db;
  const register = (email: string) =>
    app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } });

  it('answers 503 DATABASE_UNAVAILABLE with Retry-After, keeps serving, and recovers when space returns', async () => {
    expect((await register('before.full@example.com')).statusCode).toBe(201);
    const { rows } = await sql<{ page_count: number }>`pragma page_count`.execute(db());
    const pages = Number(rows[0]?.page_count);
    await sql.raw(`pragma max_page_count = ${pages}`).execute(db());
    try {
      // Enough accounts to need a new page whatever free room the last page had.
      let full: Awaited<ReturnType<typeof register>> | undefined;
      for (let i = 0; i < 200 && full === undefined; i += 1) {
        const answer = await register(`during${i}.full@example.com`);
        if (answer.statusCode !== 201) full = answer;
      }
      if (full === undefined) throw new Error('the file never filled');
      expect(full.statusCode).toBe(503);
      expect(full.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(full.json()).toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
      expect(Number(full.headers['retry-after'])).toBeGreaterThan(0);
      // Ops review 2026-12s O2: readiness said ready throughout (`select 1` never touches the file).
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'not ready', database: 'full' });
    } finally {
      await sql.raw('pragma max_page_count = 1073741823').execute(db());
    }
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toMatchObject({ database: 'up' });
    expect((await register('after.full@example.com')).statusCode).toBe(201);
  });

  // Ops review 2026-12s O2: a sign-in's transaction (session, refresh token, audit row) met the full
  // file, SQLite rolled it back by itself, and our ROLLBACK then failed with "cannot rollback - no
  // transaction is active", which replaced SQLITE_FULL: every sign-in answered 500.
  it('answers a sign-in 503 too: the transaction SQLite rolled back itself is not rolled back again', async () => {
    await register('signs.in.full@example.com');
    const signIn = () =>
      postToken(app, { grant_type: 'password', username: 'signs.in.full@example.com', password: PASSWORD });
    expect((await signIn()).statusCode).toBe(200);
    const { rows } = await sql<{ page_count: number }>`pragma page_count`.execute(db());
    await sql.raw(`pragma max_page_count = ${Number(rows[0]?.page_count)}`).execute(db());
    let refused: Awaited<ReturnType<typeof signIn>> | undefined;
    try {
      for (let i = 0; i < 50 && refused === undefined; i += 1) {
        const answer = await signIn();
        if (answer.statusCode !== 200) refused = answer;
      }
    } finally {
      await sql.raw('pragma max_page_count = 1073741823').execute(db());
    }
    if (refused === undefined) throw new Error('the file never filled');
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({ error: 'temporarily_unavailable', code: 'DATABASE_UNAVAILABLE' });
    expect((await signIn()).statusCode).toBe(200);
  });
});

/**
 * The SQLite file renamed or deleted under the running server (a careless restore, a clean-up
 * script). SQLite keeps the open file: before the third part of the fault review `/readyz` said
 * ready and sign-ups answered 201 into a deleted file, lost when the process stopped.
 */
describe('the SQLite file moved or deleted while open', () => {
  let app: FastifyInstance;
  let file: string;

  beforeAll(async () => {
    file = join(tempDir('gh-sqlite-moved-'), 'gatehouse.db');
    app = await buildTestServer({ databaseUrl: `sqlite:${file}` });
  });
  afterAll(async () => {
    await app?.close();
  });

  const readyz = async () => {
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    return { status: response.statusCode, body: response.json() as Record<string, unknown> };
  };

  it('says not ready (database moved) while the path names another file or none, and ready once it is back', async () => {
    expect(await readyz()).toMatchObject({ status: 200, body: { database: 'up' } });
    renameSync(file, `${file}.old`);
    expect(await readyz()).toEqual({
      status: 503,
      body: { status: 'not ready', database: 'moved', redis: 'disabled' },
    });
    // A new file at the path (what the next start would open) is not the one this process writes.
    writeFileSync(file, '');
    expect((await readyz()).body).toMatchObject({ database: 'moved' });
    renameSync(`${file}.old`, file);
    expect(await readyz()).toMatchObject({ status: 200, body: { database: 'up' } });
    unlinkSync(file);
    expect((await readyz()).body).toMatchObject({ status: 'not ready', database: 'moved' });
  });
});
