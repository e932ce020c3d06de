import { DEFAULT_MIGRATION_TABLE, type Kysely, type Migration, Migrator, sql } from 'kysely';
import { ConfigError } from '../errors.js';
import { migrations } from './migrations/index.js';
import { buildOnlineIndexes, type OnlineIndexReport } from './online-indexes.js';
import { type Database, type OpenDatabaseOptions, openDatabase } from './open-database.js';

/** Result of {@link migrateToLatest}: the names applied by this call. */
export interface MigrationReport {
  /** Migrations run now, in order; an app's are named `<app>/<name>`. */
  applied: string[];
  /**
   * Migrations in the database's history that this release does not know: a newer release
   * migrated it, after every migration this one has (a rolling deploy, or a rollback). Empty
   * normally; the caller says so in a warning.
   */
  newer: string[];
  /** PostgreSQL's online index builds after the migrations (`online-indexes.ts`); absent on SQLite. */
  indexes?: OnlineIndexReport;
}

/**
 * Migrations of embedding apps, by app name (lower-case letters, digits and dashes, starting with
 * a letter): `{ dicery: { '001-tables': { up, down } } }`. Names within an app sort lexically, so
 * give them a numeric prefix.
 */
export type AppMigrations = Readonly<Record<string, Readonly<Record<string, Migration>>>>;

const APP_NAME = /^[a-z][a-z0-9-]{0,39}$/;

/**
 * Kysely's history table of one app. Each app keeps its own history, so its names can never
 * collide with the core's or another app's, and each history stays strictly ordered: the core can
 * add `007-…` after an app has migrated without Kysely refusing an "unordered" migration, which
 * one shared table would force us to allow (and so lose the order check for the core too).
 */
function appMigrationTable(app: string): string {
  return `gatehouse_app_migration_${app.replaceAll('-', '_')}`;
}

/** Fails fast, naming the app, on names that cannot become a table name. */
function checkAppMigrations(apps: AppMigrations): void {
  const problems = Object.keys(apps)
    .filter((app) => !APP_NAME.test(app))
    .map(
      (app) =>
        `migrations: app name ${JSON.stringify(app)} must be 1-40 lower-case letters, digits or dashes, starting with a letter`,
    );
  if (problems.length > 0) throw new ConfigError(problems);
}

/**
 * Migrations that were the core's and now belong to an app, with that app's name. Databases
 * migrated before the move have them in the core's history, where Kysely would refuse to start
 * ("previously executed migration is missing"), and the app's history lacks them, so the app would
 * run them again over existing tables. `adoptRetiredMigrations` moves the rows. Never remove
 * an entry: a database may skip any number of releases.
 */
export const RETIRED_CORE_MIGRATIONS: Readonly<Record<string, string>> = {
  '002-clothes': 'clothes',
  '005-rooms': 'dicery',
  '006-room-event-sequence': 'dicery',
};

/** A row of Kysely's history table (its own layout: `name` and an ISO `timestamp`). */
interface HistoryRow {
  name: string;
  timestamp: string;
}

async function adoptOnce<DB>(db: Kysely<DB>): Promise<string[]> {
  const tables = new Set(
    (await db.introspection.getTables({ withInternalKyselyTables: true })).map((table) => table.name),
  );
  if (!tables.has(DEFAULT_MIGRATION_TABLE)) return []; // a new database: nothing to adopt
  const retired = Object.keys(RETIRED_CORE_MIGRATIONS);
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<HistoryRow>`select name, timestamp from ${sql.table(DEFAULT_MIGRATION_TABLE)}
      where name in (${sql.join(retired)})`.execute(trx);
    for (const row of rows) {
      const app = RETIRED_CORE_MIGRATIONS[row.name];
      if (app === undefined) continue;
      const table = appMigrationTable(app);
      // Kysely's own layout for a history table, so its Migrator takes it over as it is.
      await trx.schema
        .createTable(table)
        .ifNotExists()
        .addColumn('name', 'varchar(255)', (column) => column.notNull().primaryKey())
        .addColumn('timestamp', 'varchar(255)', (column) => column.notNull())
        .execute();
      await sql`insert into ${sql.table(table)} (name, timestamp) values (${row.name}, ${row.timestamp})
        on conflict (name) do nothing`.execute(trx);
      await sql`delete from ${sql.table(DEFAULT_MIGRATION_TABLE)} where name = ${row.name}`.execute(trx);
    }
    return rows.map((row) => `${RETIRED_CORE_MIGRATIONS[row.name]}/${row.name}`);
  });
}

/**
 * Moves the history rows of {@link RETIRED_CORE_MIGRATIONS} from the core's history table to their
 * app's, in one transaction (a crash leaves either history, never both or neither). Idempotent.
 * Two instances upgrading at once on PostgreSQL may collide on `CREATE TABLE IF NOT EXISTS` (its
 * catalog check is not atomic); the loser retries once and then finds nothing left to move.
 */
export async function adoptRetiredMigrations<DB>(db: Kysely<DB>): Promise<string[]> {
  try {
    return await adoptOnce(db);
  } catch {
    return adoptOnce(db);
  }
}

/** Kysely's refusal of a history holding a name its migrations lack. */
const MISSING_MIGRATION = /previously executed migration .+ is missing/;

async function run<DB>(
  db: Kysely<DB>,
  migrator: Migrator,
  table: string,
  known: readonly string[],
  prefix: string,
): Promise<MigrationReport> {
  const named = (name: string) => (prefix === '' ? name : `${prefix}/${name}`);
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    if (error instanceof Error && MISSING_MIGRATION.test(error.message)) {
      // A newer release migrated this database. Kysely refuses to run with an unknown history
      // row, and a starting server retried that for ever, never ready, never gone (red-team
      // 2026-12-05 R2): a rollback, or an old instance restarting mid-deploy. Releases add to the
      // schema so that the one before keeps working (README, "Upgrading"), so when every
      // migration of ours has run, this release runs on the newer schema; else nothing can help
      // but the newer release: a setting-like failure that stops the start-up with its line.
      const { rows } = await sql<{ name: string }>`select name from ${sql.table(table)}`.execute(db);
      const applied = new Set(rows.map((row) => row.name));
      const newer = [...applied].filter((name) => !known.includes(name)).sort();
      const missing = known.filter((name) => !applied.has(name));
      if (missing.length === 0) return { applied: [], newer: newer.map(named) };
      throw new ConfigError([
        `the database was migrated by a newer release (${newer.map(named).join(', ')}) without this release's ${missing.map(named).join(', ')}: run that newer release, or restore a backup taken before it`,
      ]);
    }
    throw new Error(`Database migration failed${prefix === '' ? '' : ` (app ${prefix})`}`, { cause: error });
  }
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => named(r.migrationName));
  return { applied, newer: [] };
}

/**
 * The longest statement a PostgreSQL migration may run ({@link openMigrationDatabase}): a migration
 * rewrites whole tables (`024a` updates every session), which a busy installation cannot do within
 * the request path's `DATABASE_STATEMENT_TIMEOUT` (5 s by default).
 */
export const MIGRATION_STATEMENT_TIMEOUT_MS = 30 * 60_000;

/**
 * The longest a PostgreSQL migration waits for a lock ({@link openMigrationDatabase}). A DDL
 * statement waiting for its ACCESS EXCLUSIVE lock behind a long reader (a backup, a report) makes
 * every later request on that table queue behind it; failing after this long lets the readers go
 * on, and a starting server retries the migration (review 2026-12-04).
 */
export const MIGRATION_LOCK_TIMEOUT_MS = 10_000;

/**
 * The handle migrations run on: on PostgreSQL a pool of its own whose statements may take
 * {@link MIGRATION_STATEMENT_TIMEOUT_MS} (the server's pool cancels them after
 * `DATABASE_STATEMENT_TIMEOUT`, client-side too, which no `SET LOCAL` lifts), closed by the caller;
 * on SQLite `database` itself (an in-memory database exists only on its own connection). Before,
 * a migration that outlasted the statement timeout failed as "cannot reach the database", and a
 * starting server retried it forever, holding its locks each time (operator red-team 2026-12-04).
 */
export function openMigrationDatabase(
  url: string,
  database: Database,
  options: Pick<OpenDatabaseOptions, 'connectTimeoutMs' | 'onConnectionError' | 'onQuery'>,
): { database: Database; close: () => Promise<void> } {
  if (database.dialect !== 'postgres') return { database, close: async () => {} };
  const own = openDatabase(url, {
    ...options,
    statementTimeoutMs: MIGRATION_STATEMENT_TIMEOUT_MS,
    lockTimeoutMs: MIGRATION_LOCK_TIMEOUT_MS,
  });
  return { database: own, close: () => own.close() };
}

/**
 * Brings the schema to the latest migration: the core's first, then each app's (so an app's
 * tables may reference the core's, e.g. `users.id`). Safe to call on every start-up: applied
 * migrations are skipped, and Kysely takes a lock so two instances starting together do not race.
 * On PostgreSQL it then builds the online indexes ({@link buildOnlineIndexes}) the history calls
 * for, without blocking writes: on a large table, start-up waits for the build itself, but at
 * most 10 s for older transactions; a build that fails is in the report (`indexes.failed`).
 */
export async function migrateToLatest(
  database: Database,
  apps: AppMigrations = {},
): Promise<MigrationReport> {
  checkAppMigrations(apps);
  await adoptRetiredMigrations(database.db);
  const report = await run(
    database.db,
    new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } }),
    DEFAULT_MIGRATION_TABLE,
    Object.keys(migrations),
    '',
  );
  for (const [app, appMigrations] of Object.entries(apps)) {
    const table = appMigrationTable(app);
    const migrator = new Migrator({
      db: database.db,
      provider: { getMigrations: async () => ({ ...appMigrations }) },
      migrationTableName: table,
    });
    const own = await run(database.db, migrator, table, Object.keys(appMigrations), app);
    report.applied.push(...own.applied);
    report.newer.push(...own.newer);
  }
  // Outside the migrations' transaction, where a plain CREATE INDEX would block every write to its
  // table until the last migration committed (online-indexes.ts). A build that fails or waits too
  // long is reported, not thrown: queries work without the index.
  if (database.dialect === 'postgres') report.indexes = await buildOnlineIndexes(database.db);
  return report;
}
