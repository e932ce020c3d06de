import { type Kysely, Migrator, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { migrations } from '../../../src/storage/migrations/index.js';
import { type Database, isUniqueViolation } from '../../../src/storage/open-database.js';
import { createSessionStore } from '../../../src/storage/session-store.js';
import { engines } from '../../support/databases.js';
import { databaseMigratedTo } from '../../support/old-schema.js';

type Raw = Kysely<Record<string, Record<string, unknown>>>;

const PREVIOUS_HEAD = '020a-oauth-client-controls';

const session = (id: string, overrides: Record<string, unknown> = {}) => ({
  id,
  user_id: 'u1',
  transport: 'bearer',
  scope: 'profile',
  created_at: 1_000,
  last_used_at: 2_000,
  expires_at: 9_000_000_000_000,
  revoked_at: null,
  user_agent: 'agent',
  ip: '192.0.2.1',
  cookie_token_hash: null,
  auth_time: 1_000,
  amr: 'pwd',
  ...overrides,
});

/** Index names of `sessions` with their definitions (SQL text on SQLite, `indexdef` on PostgreSQL). */
async function sessionIndexes(database: Database): Promise<Record<string, string | null>> {
  const rows =
    database.dialect === 'sqlite'
      ? (
          await sql<{ name: string; sql: string | null }>`select name, sql from sqlite_master
            where type = 'index' and tbl_name = 'sessions'`.execute(database.db)
        ).rows
      : (
          await sql<{ name: string; sql: string }>`select indexname as name, indexdef as sql from pg_indexes
            where tablename = 'sessions'`.execute(database.db)
        ).rows;
  return Object.fromEntries(rows.map((row) => [row.name, row.sql]));
}

describe.each(engines)('migration 021a: partial revoked-session index ($name)', ({ name }) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A database migrated to 020a (a file, on SQLite: WAL, as in production), with rows in it. */
  const populatedAtPreviousHead = async (): Promise<Database> => {
    const database = await databaseMigratedTo(name, PREVIOUS_HEAD, cleanups);
    const raw = database.db as unknown as Raw;
    for (const id of ['u1', 'u2']) {
      await raw
        .insertInto('users')
        .values({
          id,
          email: `${id}@example.test`,
          email_key: `${id}@example.test`,
          password_hash: 'x',
          created_at: 1,
          updated_at: 1,
        })
        .execute();
    }
    await raw
      .insertInto('sessions')
      .values([
        session('bearer-1'),
        session('bearer-2', { user_id: 'u2', user_agent: null, ip: null, auth_time: null, amr: null }),
        session('cookie-1', { transport: 'cookie', cookie_token_hash: 'hash-1' }),
        session('revoked-1', { revoked_at: 5_000, expires_at: 8_000_000_000_000 }),
      ])
      .execute();
    await raw
      .insertInto('refresh_tokens')
      .values([
        {
          token_hash: 'r1',
          session_id: 'bearer-1',
          created_at: 1,
          expires_at: 2,
          spent_at: null,
          client_id: 'c',
        },
        {
          token_hash: 'r2',
          session_id: 'bearer-2',
          created_at: 1,
          expires_at: 2,
          spent_at: 3,
          client_id: null,
        },
      ])
      .execute();
    await raw
      .insertInto('access_tokens')
      .values({ token_hash: 'a1', session_id: 'bearer-2', scope: 'profile', created_at: 1, expires_at: 2 })
      .execute();
    return database;
  };

  it('keeps every row and reference, and makes the revoked index partial', async () => {
    const database = await populatedAtPreviousHead();
    const raw = database.db as unknown as Raw;
    const before = {
      sessions: await raw.selectFrom('sessions').selectAll().orderBy('id').execute(),
      refresh: await raw.selectFrom('refresh_tokens').selectAll().orderBy('token_hash').execute(),
      access: await raw.selectFrom('access_tokens').selectAll().execute(),
    };
    expect(before.sessions).toHaveLength(4);

    expect((await migrateToLatest(database)).applied).toContain('021a-session-revoked-index');

    // Every row with every value it had; columns later migrations add (024a's client_id) may join.
    expect(await raw.selectFrom('sessions').selectAll().orderBy('id').execute()).toMatchObject(
      before.sessions,
    );
    expect(await raw.selectFrom('refresh_tokens').selectAll().orderBy('token_hash').execute()).toMatchObject(
      before.refresh,
    );
    expect(await raw.selectFrom('access_tokens').selectAll().execute()).toMatchObject(before.access);

    const indexes = await sessionIndexes(database);
    expect(indexes.sessions_revoked_idx).toMatch(/where.*revoked_at.* is not null/i);
    expect(indexes.sessions_user_idx).toBeDefined();
  });

  it('still enforces the cookie hash unique, the user reference and the cascades', async () => {
    const database = await populatedAtPreviousHead();
    await migrateToLatest(database);
    const raw = database.db as unknown as Raw;
    const duplicate = await raw
      .insertInto('sessions')
      .values(session('cookie-2', { transport: 'cookie', cookie_token_hash: 'hash-1' }))
      .execute()
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(isUniqueViolation(duplicate)).toBe(true);
    // Bearer sessions have no cookie hash: any number of NULLs.
    await raw
      .insertInto('sessions')
      .values([session('bearer-3'), session('bearer-4')])
      .execute();
    await expect(
      raw
        .insertInto('sessions')
        .values(session('orphan', { user_id: 'nobody' }))
        .execute(),
    ).rejects.toThrow(/foreign key/i);
    await raw.deleteFrom('users').where('id', '=', 'u2').execute();
    expect(await raw.selectFrom('sessions').select('id').where('user_id', '=', 'u2').execute()).toEqual([]);
    expect(await raw.selectFrom('refresh_tokens').select('token_hash').execute()).toEqual([
      { token_hash: 'r1' },
    ]);
    expect(await raw.selectFrom('access_tokens').select('token_hash').execute()).toEqual([]);
  });

  it("serves the revocation list from the partial index and a user's sessions from sessions_user_idx", async () => {
    const database = await populatedAtPreviousHead();
    await migrateToLatest(database);
    const store = createSessionStore(database.db);
    expect((await store.findSessionByCookieHash('hash-1'))?.id).toBe('cookie-1');
    expect(await store.listRevokedSince(0, 6_000)).toEqual([
      { id: 'revoked-1', expiresAt: 8_000_000_000_000, revokedAt: 5_000 },
    ]);
    if (name !== 'sqlite') return;
    const plan = async (query: string) =>
      (await sql.raw<{ detail: string }>(`explain query plan ${query}`).execute(database.db)).rows
        .map((row) => row.detail)
        .join('; ');
    // Before 021a SQLite answered a user's live sessions (listLiveSessions, revokeUserSessions) from
    // sessions_revoked_idx's `revoked_at is null` range: every live session of every user.
    const userSessions = `select * from sessions where user_id = 'u1' and revoked_at is null and expires_at > 0`;
    expect(await plan(userSessions)).toMatch(/sessions_user_idx/);
    expect(
      await plan(`update sessions set revoked_at = 1 where user_id = 'u1' and revoked_at is null`),
    ).toMatch(/sessions_user_idx/);
    expect(await plan('select id from sessions where revoked_at > 0 and expires_at > 0')).toMatch(
      /sessions_revoked_idx/,
    );
  });

  it('migrates down to the previous schema and up again', async () => {
    const database = await populatedAtPreviousHead();
    await migrateToLatest(database);
    const migrator = new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } });
    expect((await migrator.migrateTo(PREVIOUS_HEAD)).error).toBeUndefined();
    expect((await sessionIndexes(database)).sessions_revoked_idx).not.toMatch(/where/i);
    const raw = database.db as unknown as Raw;
    expect(await raw.selectFrom('sessions').select('id').orderBy('id').execute()).toHaveLength(4);
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    expect((await sessionIndexes(database)).sessions_revoked_idx).toMatch(/where/i);
  });
});
