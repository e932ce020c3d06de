import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Kysely, type Migration, Migrator } from 'kysely';
import { expect } from 'vitest';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { migrations } from '../../src/storage/migrations/index.js';
import { type Database, openDatabase } from '../../src/storage/open-database.js';
import { createTestDatabaseUrl } from './databases.js';

/** Untyped rows: a database at an old schema, which the typed `Schema` (the latest) does not describe. */
export type RawDatabase = Kysely<Record<string, Record<string, unknown>>>;

/**
 * Runs `test` on a throwaway, unmigrated database of `engine`, closed and dropped afterwards
 * whether `test` passed or not.
 */
export async function withTestDatabase(
  engine: 'sqlite' | 'postgres',
  test: (database: Database) => Promise<void>,
): Promise<void> {
  const { url, drop } = await createTestDatabaseUrl(engine);
  const database = openDatabase(url);
  try {
    await test(database);
  } finally {
    await database.close();
    await drop();
  }
}

/**
 * Runs exactly `migrations` on `database` (Kysely's Migrator, the core's history table), as an
 * installation that has not upgraded yet ran them; returns an untyped handle to seed and read it.
 */
export async function migrateOnly(
  database: Database,
  migrations: Record<string, Migration>,
): Promise<RawDatabase> {
  const old = new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } });
  expect((await old.migrateToLatest()).error).toBeUndefined();
  return database.db as unknown as RawDatabase;
}

/** Inserts an ordinary account `id` (`<id>@example.com`) with the `users` columns of 001-accounts. */
export async function insertOldUser(raw: RawDatabase, id: string): Promise<void> {
  await raw
    .insertInto('users')
    .values({
      id,
      email: `${id}@example.com`,
      email_key: `${id}@example.com`,
      full_name: null,
      password_hash: 'x',
      role: 'user',
      is_active: 1,
      created_at: 1,
      updated_at: 1,
    })
    .execute();
}

/** Something a test undoes after it, latest first. */
export type Cleanup = () => Promise<void> | void;

/**
 * A database of `engine` migrated to the core migration `migration` and no further, for a test
 * of the migration after it: on SQLite a file (WAL, as in production: an in-memory database
 * would hide the rebuilds' file-level behaviour), on PostgreSQL a database of its own. Its close
 * and removal are pushed on `cleanups`.
 */
export async function databaseMigratedTo(
  engine: 'sqlite' | 'postgres',
  migration: string,
  cleanups: Cleanup[],
): Promise<Database> {
  let url: string;
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), `gatehouse-${migration}-`));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    url = `sqlite:${join(dir, 'db.sqlite')}`;
  } else {
    const created = await createTestDatabaseUrl('postgres');
    cleanups.push(created.drop);
    url = created.url;
  }
  const database = openDatabase(url);
  cleanups.push(() => database.close());
  const migrator = new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } });
  const { error } = await migrator.migrateTo(migration);
  if (error !== undefined) throw new Error(`migrating to ${migration} failed`, { cause: error });
  return database;
}

/**
 * The core's migrations that sort before `name`, as an installation upgrading to it has run them
 * (`before`, for {@link migrateOnly}), and the last of them (`previous`, where migrating down
 * from `name` lands).
 */
export function migrationsBefore(name: string): { before: Record<string, Migration>; previous: string } {
  const before = Object.fromEntries(Object.entries(migrations).filter(([other]) => other < name));
  return { before, previous: Object.keys(before).sort().at(-1) ?? '' };
}

/**
 * Migrates `database` down to `previous` and checks `whileDown` there, then up to the latest
 * again: a migration's `down` and a second `up` over the rows the test left.
 */
export async function migrateDownAndUp(
  database: Database,
  previous: string,
  whileDown: () => Promise<void>,
): Promise<void> {
  const migrator = new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } });
  expect((await migrator.migrateTo(previous)).error).toBeUndefined();
  await whileDown();
  // Up again as a server starts: on PostgreSQL that includes the online indexes (online-indexes.ts).
  await migrateToLatest(database);
}

/** The column names of `table` in `database` as it stands (introspected). */
export async function columnsOf(database: Database, table: string): Promise<string[] | undefined> {
  const tables = await database.db.introspection.getTables();
  return tables.find((found) => found.name === table)?.columns.map((column) => column.name);
}
