import { type Kysely, Migrator, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { migrations } from '../../../src/storage/migrations/index.js';
import type { Database } from '../../../src/storage/open-database.js';
import { engines } from '../../support/databases.js';
import { databaseMigratedTo } from '../../support/old-schema.js';

type Raw = Kysely<Record<string, Record<string, unknown>>>;

const PREVIOUS_HEAD = '026a-several-account-links';

const session = (id: string, overrides: Record<string, unknown> = {}) => ({
  id,
  user_id: 'u1',
  transport: 'bearer',
  scope: 'profile',
  created_at: 1_000,
  last_used_at: 2_000,
  expires_at: 9_000_000_000_000,
  revoked_at: null,
  client_id: 'gatehouse',
  ...overrides,
});

/** `sessions_user_idx`'s definition (SQL text on SQLite, `indexdef` on PostgreSQL). */
async function userIndex(database: Database): Promise<string | undefined> {
  const query =
    database.dialect === 'sqlite'
      ? sql<{ def: string }>`select sql as def from sqlite_master where name = 'sessions_user_idx'`
      : sql<{ def: string }>`select indexdef as def from pg_indexes where indexname = 'sessions_user_idx'`;
  return (await query.execute(database.db)).rows[0]?.def;
}

describe.each(engines)('migration 027a: a covering index for the session caps ($name)', ({ name }) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A database migrated to 026a (a file, on SQLite), with two accounts' sessions in it. */
  const populatedAtPreviousHead = async (): Promise<Database> => {
    const database = await databaseMigratedTo(name, PREVIOUS_HEAD, cleanups);
    const raw = database.db as unknown as Raw;
    for (const id of ['u1', 'u2']) {
      await raw
        .insertInto('users')
        .values({
          id,
          email: `${id}@example.test`,
          email_key: id,
          password_hash: 'x',
          created_at: 1,
          updated_at: 1,
        })
        .execute();
    }
    await raw
      .insertInto('sessions')
      .values([
        session('live-1'),
        session('live-2', { client_id: 'app' }),
        session('revoked', { revoked_at: 5_000 }),
        session('expired', { expires_at: 3_000 }),
        session('other', { user_id: 'u2' }),
      ])
      .execute();
    return database;
  };

  /** The session caps' count, as the store runs it. */
  const countLive = async (database: Database) =>
    (
      await sql<{ account: number | string; client: number | string }>`select count(*) as account,
        count(*) filter (where client_id = 'app') as client from sessions
        where user_id = 'u1' and revoked_at is null and expires_at > 4000`.execute(database.db)
    ).rows.map((row) => ({ account: Number(row.account), client: Number(row.client) }));

  it('indexes what the count reads, keeps every row and counts the same', async () => {
    const database = await populatedAtPreviousHead();
    const before = await countLive(database);
    expect(before).toEqual([{ account: 2, client: 1 }]);
    expect((await migrateToLatest(database)).applied).toContain('027a-session-user-live-index');
    expect(await userIndex(database)).toMatch(
      /\(\W*user_id\W*,\W*revoked_at\W*,\W*expires_at\W*,\W*client_id\W*\)/,
    );
    expect(await countLive(database)).toEqual(before);
    const raw = database.db as unknown as Raw;
    expect(await raw.selectFrom('sessions').select('id').orderBy('id').execute()).toHaveLength(5);
    if (name === 'sqlite') {
      // The count no longer reads the table's rows: one range of the index.
      // The store's statement (session-store.ts countLiveSessions): both counts, the client's by FILTER.
      const plan = await sql<{ detail: string }>`explain query plan select count(*) as account,
        count(*) filter (where client_id = 'app') as client from sessions
        where user_id = 'u1' and revoked_at is null and expires_at > 0`.execute(database.db);
      expect(plan.rows.map((row) => row.detail).join('; ')).toMatch(/COVERING INDEX sessions_user_idx/);
    }
    // The leading user_id still serves the account's deletion (the cascade).
    await raw.deleteFrom('users').where('id', '=', 'u1').execute();
    expect(await raw.selectFrom('sessions').select('id').execute()).toEqual([{ id: 'other' }]);
  });

  it('migrates down to the index on user_id alone and up again', async () => {
    const database = await populatedAtPreviousHead();
    await migrateToLatest(database);
    const migrator = new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } });
    expect((await migrator.migrateTo(PREVIOUS_HEAD)).error).toBeUndefined();
    expect(await userIndex(database)).toMatch(/\(\W*user_id\W*\)/);
    expect(await countLive(database)).toEqual([{ account: 2, client: 1 }]);
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    expect(await userIndex(database)).toMatch(/client_id/);
  });
});
