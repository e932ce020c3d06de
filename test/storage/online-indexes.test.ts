import { Migrator, sql } from 'kysely';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { migrateToLatest, openMigrationDatabase } from '../../src/storage/migrate.js';
import { migrations } from '../../src/storage/migrations/index.js';
import { buildOnlineIndexes, ONLINE_INDEXES } from '../../src/storage/online-indexes.js';
import { type Database, openDatabase } from '../../src/storage/open-database.js';
import { engines } from '../support/databases.js';
import { type Cleanup, databaseMigratedTo, migrationsBefore } from '../support/old-schema.js';

const { previous } = migrationsBefore('038a-audit-party-indexes');

/** One audit row, as a login writes it ($1: the account). */
const AUDIT_ROW = `insert into audit_events (event, actor_id, target_id, ip, user_agent, details, created_at)
  values ('login_succeeded', $1, $1, '203.0.113.7', 'agent', null, 1000)`;

/** Each online index's validity in `database`'s catalog (absent: not there). */
async function validity(database: Database): Promise<Record<string, boolean>> {
  const { rows } = await sql<{ name: string; valid: boolean }>`select c.relname as name, i.indisvalid as valid
    from pg_index i join pg_class c on c.oid = i.indexrelid
    where c.relname in (${sql.join(ONLINE_INDEXES.map((index) => index.name))})`.execute(database.db);
  return Object.fromEntries(rows.map((row) => [row.name, row.valid]));
}

/** The URL of `database`'s PostgreSQL database. */
async function urlOf(database: Database): Promise<string> {
  const { rows } = await sql<{ name: string }>`select current_database() as name`.execute(database.db);
  const url = new URL(process.env.DATABASE_URL ?? '');
  url.pathname = `/${rows[0]?.name}`;
  return url.toString();
}

/** A connection of its own to `database`'s PostgreSQL database, closed by `cleanups`. */
async function ownConnection(database: Database, cleanups: Cleanup[]): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: await urlOf(database) });
  await client.connect();
  cleanups.push(() => client.end());
  return client;
}

/** Resolves once a statement starting with `prefix` waits for a lock in `database`. */
async function waitingStatement(database: Database, prefix: string): Promise<number> {
  for (let tries = 0; tries < 500; tries += 1) {
    const { rows } = await sql<{ pid: number }>`select pid from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and query ilike ${`${prefix}%`}`.execute(
      database.db,
    );
    if (rows[0] !== undefined) return rows[0].pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no statement starting with ${prefix} waited for a lock`);
}

describe.runIf(engines.some((engine) => engine.name === 'postgres'))(
  'online indexes: built concurrently after the migrations (PostgreSQL)',
  () => {
    const cleanups: Cleanup[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it('lets logins write audit rows while the audit indexes build behind a long transaction', async () => {
      const database = await databaseMigratedTo('postgres', previous, cleanups);
      // A transaction that has written to the audit log and not ended (a slow request, a report).
      const longTransaction = await ownConnection(database, cleanups);
      await longTransaction.query('begin');
      await longTransaction.query(AUDIT_ROW, ['u1']);
      const migrating = migrateToLatest(database);
      // The build waits for that transaction: a plain CREATE INDEX would wait with a SHARE lock
      // queued, and every later insert would queue behind it.
      await waitingStatement(database, 'create index concurrently');
      const login = await ownConnection(database, cleanups);
      await login.query("set lock_timeout = '2s'");
      await login.query(AUDIT_ROW, ['u2']);
      await longTransaction.query('commit');
      await migrating;
      expect(await validity(database)).toEqual(
        Object.fromEntries(ONLINE_INDEXES.map((index) => [index.name, true])),
      );
      // Idempotent: with every index valid, a second start-up builds nothing and waits for no one.
      await longTransaction.query('begin');
      await longTransaction.query(AUDIT_ROW, ['u3']);
      await migrateToLatest(database);
      await longTransaction.query('commit');
    });

    it('rebuilds an index an interrupted build left invalid', async () => {
      const database = await databaseMigratedTo('postgres', previous, cleanups);
      const longTransaction = await ownConnection(database, cleanups);
      await longTransaction.query('begin');
      await longTransaction.query(AUDIT_ROW, ['u1']);
      // A build cancelled while it waits (a deploy that gave up, a lost connection) stays in the
      // catalog, invalid: IF NOT EXISTS alone would keep it for ever.
      const builder = await ownConnection(database, cleanups);
      const interrupted = builder
        .query('create index concurrently audit_events_actor_idx on audit_events (actor_id)')
        .catch((error: Error) => error);
      const pid = await waitingStatement(database, 'create index concurrently');
      await sql`select pg_cancel_backend(${pid})`.execute(database.db);
      expect(String(await interrupted)).toMatch(/cancel/);
      await longTransaction.query('commit');
      expect((await validity(database)).audit_events_actor_idx).toBe(false);

      await migrateToLatest(database);
      expect((await validity(database)).audit_events_actor_idx).toBe(true);
      // One index of that name: the invalid one was dropped, not shadowed.
      const { rows } = await sql<{ count: number }>`select count(*)::int as count from pg_class
        where relname = 'audit_events_actor_idx'`.execute(database.db);
      expect(rows[0]?.count).toBe(1);
    });

    it('lets a second instance start while the first builds, and never drops its build', async () => {
      const database = await databaseMigratedTo('postgres', previous, cleanups);
      const other = openDatabase(await urlOf(database));
      cleanups.push(() => other.close());
      const longTransaction = await ownConnection(database, cleanups);
      await longTransaction.query('begin');
      await longTransaction.query(AUDIT_ROW, ['u1']);
      const first = migrateToLatest(database);
      await waitingStatement(database, 'create index concurrently');
      // The first instance's build is in the catalog, invalid until it ends: the second instance
      // neither waits for it (a deadlock: the build waits for the waiter's snapshot) nor drops it.
      await migrateToLatest(other);
      await longTransaction.query('commit');
      await first;
      expect(await validity(database)).toEqual(
        Object.fromEntries(ONLINE_INDEXES.map((index) => [index.name, true])),
      );
    });

    // Review 2026-12-06 O1: a concurrent build waits for every older snapshot, read-only ones too
    // (what pg_dump holds for a whole backup). With a 30-minute wait, an upgraded server stayed
    // unready for the length of the dump; a plain CREATE INDEX never waited for readers.
    it('starts after at most 10 s behind a long read-only snapshot, reports the index, and builds it next time', async () => {
      const database = await databaseMigratedTo('postgres', previous, cleanups);
      const dump = await ownConnection(database, cleanups);
      await dump.query('begin isolation level repeatable read read only');
      await dump.query('select count(*) from audit_events');
      const migration = openMigrationDatabase(await urlOf(database), database, {});
      cleanups.push(() => migration.close());
      const started = Date.now();
      const report = await migrateToLatest(migration.database);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(report.applied).toContain('038a-audit-party-indexes');
      expect(report.indexes?.failed).toMatchObject({
        index: 'audit_events_actor_idx',
        reason: /lock timeout/,
      });
      await dump.query('commit');
      // The next start-up drops the interrupted build's invalid leftover and builds them all.
      expect((await migrateToLatest(migration.database)).indexes).toEqual({
        built: ONLINE_INDEXES.map((index) => index.name),
        busy: false,
      });
      expect(await validity(database)).toEqual(
        Object.fromEntries(ONLINE_INDEXES.map((index) => [index.name, true])),
      );
    }, 40_000);

    // Review 2026-12-06 O2: only a table's owner may index it. A serving role with DML grants
    // started on a migrated database before; a build left to do must not stop it (exit 78).
    it('starts a role that does not own the tables, reporting the index it could not build', async () => {
      const database = await databaseMigratedTo('postgres', previous, cleanups);
      const url = await urlOf(database);
      const owner = await ownConnection(database, cleanups);
      const role = `gh_app_${Math.random().toString(16).slice(2, 8)}`;
      await owner.query(`create role ${role} login`);
      cleanups.push(async () => {
        const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await admin.connect();
        await admin.query(`drop role if exists ${role}`).catch(() => {});
        await admin.end();
      });
      cleanups.push(() => owner.query(`drop owned by ${role}`).then(() => {}));
      // The owner migrates; its index build never ran (skipped while another session built, or killed).
      const migrator = new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } });
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      await owner.query(`grant create, usage on schema public to ${role}`);
      await owner.query(`grant select, insert, update, delete on all tables in schema public to ${role}`);
      const asApp = new URL(url);
      asApp.username = role;
      const serving = openDatabase(asApp.toString());
      cleanups.push(() => serving.close());
      const report = await migrateToLatest(serving);
      expect(report.indexes?.failed).toMatchObject({ reason: /must be owner/ });
    });

    it('builds nothing a migration in the history does not call for', async () => {
      const database = await databaseMigratedTo('postgres', previous, cleanups);
      expect(await buildOnlineIndexes(database.db)).toEqual({ built: [], busy: false });
      expect(await validity(database)).toEqual({});
    });
  },
);
