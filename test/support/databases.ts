import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { type AppMigrations, migrateToLatest } from '../../src/storage/migrate.js';
import { type Database, openDatabase } from '../../src/storage/open-database.js';
import type { Schema } from '../../src/storage/schema.js';
import { createUserStore } from '../../src/storage/user-store.js';

/** A database a test suite owns: migrated, and dropped again by `dispose`. */
export interface TestDatabase {
  url: string;
  database: Database;
  dispose(): Promise<void>;
}

/** The engines storage suites run on: SQLite always, PostgreSQL whenever DATABASE_URL is set. */
export const engines: { name: 'sqlite' | 'postgres' }[] = process.env.DATABASE_URL?.startsWith('postgres')
  ? [{ name: 'sqlite' }, { name: 'postgres' }]
  : [{ name: 'sqlite' }];

/**
 * Creates a throwaway, migrated database: in-memory SQLite, or a fresh PostgreSQL database
 * (`gh_test_<random>`) beside DATABASE_URL's, so parallel suites never share rows.
 */
export async function createTestDatabaseUrl(
  engine: 'sqlite' | 'postgres',
): Promise<{ url: string; drop(): Promise<void> }> {
  if (engine === 'sqlite') return { url: 'sqlite::memory:', drop: async () => {} };
  const admin = process.env.DATABASE_URL;
  if (admin === undefined) throw new Error('DATABASE_URL is required for the PostgreSQL suites');
  const name = `gh_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

/** Opens and migrates a throwaway database of `engine`, with the core's and `apps`' migrations. */
export async function createTestDatabase(
  engine: 'sqlite' | 'postgres',
  apps: AppMigrations = {},
): Promise<TestDatabase> {
  const { url, drop } = await createTestDatabaseUrl(engine);
  const database = openDatabase(url);
  await migrateToLatest(database, apps);
  return {
    url,
    database,
    async dispose() {
      await database.close();
      await drop();
    },
  };
}

/**
 * Inserts a plain, active account (`<id>@example.com`, a random id unless given) through the user
 * store, for store tests whose rows need an account to belong to; returns its id.
 */
export async function addTestUser(db: Kysely<Schema>, id: string = randomUUID()): Promise<string> {
  await createUserStore(db).insertUser({
    id,
    email: `${id}@example.com`,
    emailKey: `${id}@example.com`,
    fullName: null,
    passwordHash: 'h',
    role: 'user',
    isActive: true,
    emailVerified: false,
    createdAt: 0,
    updatedAt: 0,
  });
  return id;
}
