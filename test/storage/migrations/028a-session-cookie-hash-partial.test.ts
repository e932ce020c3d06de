import { type Kysely, Migrator, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { migrations } from '../../../src/storage/migrations/index.js';
import type { Database } from '../../../src/storage/open-database.js';
import { engines } from '../../support/databases.js';
import { databaseMigratedTo } from '../../support/old-schema.js';

type Raw = Kysely<Record<string, Record<string, unknown>>>;

const PREVIOUS_HEAD = '027a-session-user-live-index';
const MIGRATION = '028a-session-cookie-hash-partial';

const session = (id: string, cookieTokenHash: string | null, overrides: Record<string, unknown> = {}) => ({
  id,
  user_id: 'u1',
  transport: cookieTokenHash === null ? 'bearer' : 'cookie',
  scope: 'profile',
  created_at: 1_000,
  last_used_at: 2_000,
  expires_at: 9_000_000_000_000,
  revoked_at: null,
  user_agent: 'agent',
  ip: '192.0.2.1',
  cookie_token_hash: cookieTokenHash,
  auth_time: 1_000,
  amr: '["pwd"]',
  client_id: 'gatehouse',
  ...overrides,
});

/** How many index entries `cookie_token_hash` has (SQLite: b-tree entries; PostgreSQL: the planner's view). */
async function cookieIndexes(database: Database): Promise<string[]> {
  const query =
    database.dialect === 'sqlite'
      ? sql<{ def: string | null; name: string }>`select name, sql as def from sqlite_master
          where type = 'index' and tbl_name = 'sessions'`
      : sql<{ def: string | null; name: string }>`select indexname as name, indexdef as def from pg_indexes
          where tablename = 'sessions'`;
  const rows = (await query.execute(database.db)).rows;
  if (database.dialect === 'sqlite') {
    // A column's UNIQUE is an autoindex without SQL: name it by its column.
    const described: string[] = [];
    for (const row of rows) {
      const columns = await sql<{ name: string }>`select name from pragma_index_info(${row.name})`.execute(
        database.db,
      );
      if (columns.rows.some((column) => column.name === 'cookie_token_hash')) {
        described.push(row.def ?? `${row.name} (column constraint)`);
      }
    }
    return described;
  }
  return rows.filter((row) => row.def?.includes('cookie_token_hash')).map((row) => row.def ?? row.name);
}

describe.each(engines)(
  'migration 028a: the cookie hash unique over cookie sessions only ($name)',
  ({ name }) => {
    const cleanups: (() => Promise<void> | void)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    /** A database at 027a (a file, on SQLite), with sessions, their tokens and an app table of its own. */
    const populatedAtPreviousHead = async (): Promise<Database> => {
      const database = await databaseMigratedTo(name, PREVIOUS_HEAD, cleanups);
      const raw = database.db as unknown as Raw;
      await raw
        .insertInto('users')
        .values({
          id: 'u1',
          email: 'u1@example.test',
          email_key: 'u1',
          password_hash: 'x',
          created_at: 1,
          updated_at: 1,
        })
        .execute();
      await raw
        .insertInto('sessions')
        .values([
          session('bearer-1', null),
          session('bearer-2', null, { client_id: 'app', revoked_at: 5_000 }),
          session('cookie-1', 'hash-1'),
        ])
        .execute();
      await raw
        .insertInto('refresh_tokens')
        .values([
          {
            token_hash: 'r1',
            session_id: 'bearer-1',
            created_at: 1,
            expires_at: 9,
            spent_at: null,
            client_id: 'gatehouse',
          },
          {
            token_hash: 'r2',
            session_id: 'bearer-1',
            created_at: 2,
            expires_at: 9,
            spent_at: 3,
            successor: 'r1',
          },
        ])
        .execute();
      await raw
        .insertInto('access_tokens')
        .values({ token_hash: 'a1', session_id: 'cookie-1', scope: 'profile', created_at: 1, expires_at: 9 })
        .execute();
      // An embedding app's table whose foreign key reaches sessions through refresh_tokens: the
      // SQLite rebuild must keep its rows too (and must not cascade into it).
      await sql`create table app_token_notes (token_hash text not null references refresh_tokens (token_hash)
      on delete cascade, note text not null)`.execute(database.db);
      await sql`insert into app_token_notes values ('r1', 'kept')`.execute(database.db);
      cleanups.push(async () => {
        await sql`drop table if exists app_token_notes`.execute(database.db);
      });
      return database;
    };

    /** A test of SQLite's rebuild alone (PostgreSQL alters the table in place): not registered on PostgreSQL. */
    const sqliteOnly = (title: string, test: () => Promise<void>) => {
      if (name === 'sqlite') it(title, test);
    };

    const contents = async (database: Database) => {
      const raw = database.db as unknown as Raw;
      return {
        sessions: (await raw.selectFrom('sessions').selectAll().orderBy('id').execute()).map((row) => ({
          ...row,
          // bigint columns come back as strings from node-postgres.
          created_at: Number(row.created_at),
          last_used_at: Number(row.last_used_at),
          expires_at: Number(row.expires_at),
          revoked_at: row.revoked_at === null ? null : Number(row.revoked_at),
          auth_time: Number(row.auth_time),
        })),
        refresh: await raw
          .selectFrom('refresh_tokens')
          .select(['token_hash', 'session_id', 'successor'])
          .orderBy('token_hash')
          .execute(),
        access: await raw.selectFrom('access_tokens').select(['token_hash', 'session_id']).execute(),
        notes: (
          await sql<{ token_hash: string; note: string }>`select * from app_token_notes`.execute(database.db)
        ).rows,
      };
    };

    it('indexes cookie hashes only, still unique, and keeps every row of sessions and what depends on it', async () => {
      const database = await populatedAtPreviousHead();
      const before = await contents(database);
      expect(before.sessions).toHaveLength(3);
      expect((await migrateToLatest(database)).applied).toContain(MIGRATION);

      expect(await contents(database)).toEqual(before);
      const indexes = await cookieIndexes(database);
      expect(indexes).toHaveLength(1);
      expect(indexes[0]).toMatch(
        /unique index "?sessions_cookie_token_hash_idx"?.*where.*cookie_token_hash"? is not null/i,
      );

      const raw = database.db as unknown as Raw;
      // Still unique among cookie sessions; any number of bearer sessions without a hash.
      await expect(
        raw.insertInto('sessions').values(session('cookie-2', 'hash-1')).execute(),
      ).rejects.toThrow(/unique|duplicate/i);
      await raw
        .insertInto('sessions')
        .values([session('bearer-3', null), session('bearer-4', null)])
        .execute();
      if (name === 'sqlite') {
        const plan = await sql<{ detail: string }>`explain query plan
        select id from sessions where cookie_token_hash = ${'hash-1'}`.execute(database.db);
        expect(plan.rows.map((row) => row.detail).join('; ')).toMatch(/sessions_cookie_token_hash_idx/);
        // The other indexes came back with the new table.
        const names = await sql<{ name: string }>`select name from sqlite_master
        where type = 'index' and tbl_name = 'sessions' and sql is not null order by name`.execute(
          database.db,
        );
        // (Later migrations add their own: these are the ones 028a rebuilt.)
        expect(names.rows.map((row) => row.name)).toEqual(
          expect.arrayContaining([
            'sessions_cookie_token_hash_idx',
            'sessions_revoked_idx',
            'sessions_user_idx',
          ]),
        );
      }
      // The foreign keys still cascade from the new table: deleting a session ends its tokens,
      // and through them the app's rows.
      await raw.deleteFrom('sessions').where('id', '=', 'bearer-1').execute();
      expect((await contents(database)).refresh).toEqual([]);
      expect((await contents(database)).notes).toEqual([]);
      await raw.deleteFrom('users').where('id', '=', 'u1').execute();
      expect(await raw.selectFrom('sessions').select('id').execute()).toEqual([]);
      expect((await contents(database)).access).toEqual([]);
    });

    sqliteOnly(
      'keeps what an operator or an app added on SQLite: a view, a capitalised reference, triggers, an index',
      async () => {
        const database = await populatedAtPreviousHead();
        const run = (text: string) => sql.raw(text).execute(database.db);
        // Named as the app wrote it: pragma_foreign_key_list says `Sessions`.
        await run(
          `create table app_session_tags (sid text references Sessions (id) on delete set null, tag text)`,
        );
        await run(`insert into app_session_tags values ('cookie-1', 'kept')`);
        await run('create view live_sessions as select id from sessions where revoked_at is null');
        await run('create index app_sessions_ip_idx on sessions (ip)');
        await run('create table app_trigger_log (what text)');
        await run(
          `create trigger app_refresh_log after insert on refresh_tokens begin insert into app_trigger_log values ('insert'); end`,
        );
        await run(
          `create trigger app_session_log after delete on sessions begin insert into app_trigger_log values ('session gone'); end`,
        );
        cleanups.push(async () => {
          for (const statement of [
            'drop view if exists live_sessions',
            'drop table if exists app_session_tags',
            'drop table if exists app_trigger_log',
          ])
            await run(statement);
        });
        expect((await migrateToLatest(database)).applied).toContain(MIGRATION);
        expect(
          (await sql<{ tag: string; sid: string }>`select * from app_session_tags`.execute(database.db)).rows,
        ).toEqual([{ sid: 'cookie-1', tag: 'kept' }]);
        expect(
          (await sql<{ id: string }>`select id from live_sessions order by id`.execute(database.db)).rows,
        ).toEqual([{ id: 'bearer-1' }, { id: 'cookie-1' }]);
        // Moving the rows out and back fired no trigger, and every trigger and index is back.
        expect((await sql`select * from app_trigger_log`.execute(database.db)).rows).toEqual([]);
        const names = await sql<{ name: string }>`select name from sqlite_master
        where type in ('index', 'trigger') and name like 'app_%' order by name`.execute(database.db);
        expect(names.rows.map((row) => row.name)).toEqual([
          'app_refresh_log',
          'app_session_log',
          'app_sessions_ip_idx',
        ]);
        const raw = database.db as unknown as Raw;
        await raw
          .insertInto('refresh_tokens')
          .values({ token_hash: 'r3', session_id: 'cookie-1', created_at: 3, expires_at: 9 })
          .execute();
        await raw.deleteFrom('sessions').where('id', '=', 'bearer-2').execute();
        expect(
          (await sql<{ what: string }>`select what from app_trigger_log`.execute(database.db)).rows,
        ).toEqual([{ what: 'insert' }, { what: 'session gone' }]);
      },
    );

    sqliteOnly('refuses, with the reason, to rebuild a sessions table with columns of an app', async () => {
      const database = await populatedAtPreviousHead();
      await sql`alter table sessions add column app_note text`.execute(database.db);
      await expect(migrateToLatest(database)).rejects.toThrow(/Database migration failed/);
      const migrator = new Migrator({
        db: database.db,
        provider: { getMigrations: async () => migrations },
      });
      const { error } = await migrator.migrateToLatest();
      expect(String((error as Error | undefined)?.message)).toMatch(
        /sessions has columns Gatehouse did not create \(app_note\)/,
      );
      // Nothing changed: still at 027a, every row there.
      expect((await contents(database)).sessions).toHaveLength(3);
    });

    it('migrates down to the column constraint, keeping the rows, and up again', async () => {
      const database = await populatedAtPreviousHead();
      const before = await contents(database);
      await migrateToLatest(database);
      const migrator = new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } });
      expect((await migrator.migrateTo(PREVIOUS_HEAD)).error).toBeUndefined();
      expect(await contents(database)).toEqual(before);
      const indexes = await cookieIndexes(database);
      expect(indexes).toHaveLength(1);
      expect(indexes[0]).not.toMatch(/where/i);
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      expect(await contents(database)).toEqual(before);
      expect(await cookieIndexes(database)).toEqual([expect.stringMatching(/where/i)]);
    });
  },
);
