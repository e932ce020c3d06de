import type { SqliteDatabase, SqliteStatement } from 'kysely';
import { BoundedMap } from '../lib/bounded-map.js';

/** Distinct SQL texts kept prepared per SQLite connection (about 3× the queries the code has). */
export const SQLITE_STATEMENT_CACHE_SIZE = 512;

/** What {@link withStatementCache} needs of a better-sqlite3 `Database`. */
export interface PreparingDatabase {
  prepare(sql: string): SqliteStatement;
  close(): void;
}

/**
 * The database handed to Kysely's `SqliteDialect`, preparing each distinct SQL text once.
 * Kysely's SQLite driver calls `prepare` for every query, and SQLite parses and plans the text
 * each time: on a login (7 statements) that was ≈ 7 % of the event loop's time (issue 10).
 *
 * Reusing a statement is safe here because Kysely runs one query at a time on its single SQLite
 * connection (a mutex; a stream holds it until it ends), so a cached statement is never asked to
 * run while it is still iterating; and SQLite re-prepares a statement by itself when a migration
 * changes the schema under it. Kysely sends values as parameters, so the SQL texts come from the
 * code, not from requests; `size` bounds the cache anyway (oldest first out; an evicted statement
 * is prepared again on its next use and the old one is freed by the garbage collector).
 */
export function withStatementCache(
  database: PreparingDatabase,
  size = SQLITE_STATEMENT_CACHE_SIZE,
): SqliteDatabase {
  const statements = new BoundedMap<string, SqliteStatement>(size);
  return {
    prepare(sql) {
      let statement = statements.get(sql);
      if (statement === undefined) {
        statement = database.prepare(sql);
        statements.set(sql, statement);
      }
      return statement;
    },
    close() {
      statements.clear();
      database.close();
    },
  };
}
