import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type Transaction } from 'kysely';
import pg from 'pg';
import type { Schema } from './schema.js';

/** Which SQL engine a {@link Database} talks to. */
export type DialectName = 'sqlite' | 'postgres';

/** An open database: the typed query builder plus what callers need to know about it. */
export interface Database {
  /** Typed Kysely instance. */
  db: Kysely<Schema>;
  /** The engine behind it. */
  dialect: DialectName;
  /**
   * Runs `work` as one unit of work: it commits when `work` resolves and rolls back when it
   * throws. Build stores over the `trx` it receives (`createRoomStore(trx)`) so every write of one
   * change commits together. Keep password hashing, Redis and network calls out of `work`: a
   * transaction holds locks (and, on SQLite, the only connection) until it ends.
   */
  transaction<T>(work: (trx: Transaction<Schema>) => Promise<T>): Promise<T>;
  /** Closes every connection. */
  close(): Promise<void>;
}

const INT8_OID = 20;

/**
 * Opens `sqlite:<path>`, `sqlite::memory:` or `postgres://…`. SQLite runs in WAL mode with
 * foreign keys on; PostgreSQL returns `bigint` columns as numbers (our epoch-ms timestamps fit).
 */
export function openDatabase(url: string): Database {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path !== ':memory:') {
      // The database holds password hashes and session data: owner-only folder and file (0700/0600,
      // whatever the umask). SQLite gives the -wal and -shm files the main file's mode.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      closeSync(openSync(path, 'a', 0o600));
    }
    const sqlite = new SQLite(path);
    // WAL lets readers proceed while one writer commits; busy_timeout waits instead of failing.
    if (path !== ':memory:') sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('synchronous = NORMAL');
    const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) });
    return {
      db,
      dialect: 'sqlite',
      transaction: (work) => db.transaction().execute(work),
      close: () => db.destroy(),
    };
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as never,
    },
  });
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    transaction: (work) => db.transaction().execute(work),
    close: () => db.destroy(),
  };
}

/** True when `error` is a unique-constraint violation on either engine. */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error)) return false;
  const code = (error as { code: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
