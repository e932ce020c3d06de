import type { Kysely, QueryExecutor, QueryResult, SqliteDatabase } from 'kysely';

/**
 * Runs one statement of fixed SQL on SQLite's connection, synchronously, and answers its result;
 * or answers undefined when it may not run that way now, and the caller goes through Kysely.
 */
export type DirectStatementRunner = (
  sql: string,
  parameters: readonly unknown[],
) => QueryResult<unknown> | undefined;

// One runner per executor: the database's own, and each transaction's (createSqliteTransaction).
// Weakly held, so a finished transaction's entry goes with its executor.
const runners = new WeakMap<QueryExecutor, DirectStatementRunner>();

/** Lets {@link runDirectStatement} run statements of `executor` through `runner`. */
export function registerDirectStatements(executor: QueryExecutor, runner: DirectStatementRunner): void {
  runners.set(executor, runner);
}

/**
 * Runs `sql` with `parameters` on `db`'s SQLite connection directly, when `db` (a database from
 * `openDatabase` or one of its transactions) has a runner and it may run now; else undefined,
 * and the caller runs the statement through `db.executeQuery` as usual (always so on PostgreSQL).
 *
 * Why: Kysely's executor takes each statement through about a dozen `async` layers (executor,
 * connection provider, runtime driver, the busy-waiting driver, the one-connection mutex, the
 * connection, result plugins, three releases), each a promise and a microtask, around a
 * better-sqlite3 call that is synchronous anyway. A password login runs six statements through
 * it (issue 10, ninth round).
 */
export function runDirectStatement<Row>(
  db: Pick<Kysely<unknown>, 'getExecutor'>,
  sql: string,
  parameters: readonly unknown[],
): QueryResult<Row> | undefined {
  return runners.get(db.getExecutor())?.(sql, parameters) as QueryResult<Row> | undefined;
}

/** What {@link createDirectStatementRunner} runs statements with and checks before each. */
export interface DirectStatementOptions {
  /** The connection's statements (the same prepared-statement cache the dialect uses). */
  statements: Pick<SqliteDatabase, 'prepare'>;
  /**
   * Whether the statement may run directly now: false makes the runner answer undefined (the
   * connection is held by someone else, the database is closed, the transaction is over).
   */
  mayRun(): boolean;
  /** Whether `error` is one the Kysely path would retry (SQLITE_BUSY outside a transaction). */
  retried(error: unknown): boolean;
  /** Kysely's query log, as `openDatabase`'s `onQuery` sets it: told every statement that ran. */
  onQuery?: ((sql: string) => void) | undefined;
}

/**
 * A {@link DirectStatementRunner} that does what Kysely's SQLite connection does with a statement
 * (`SqliteConnection.executeQuery`: `all` for a statement that returns rows, else `run`, and the
 * same result shape), without the layers around it. A statement that fails with an error the
 * Kysely path would retry (a busy lock) answers undefined: SQLite ran none of it, so running it
 * again through Kysely is the retry. Every other error is thrown as Kysely's path throws it.
 */
export function createDirectStatementRunner(options: DirectStatementOptions): DirectStatementRunner {
  const { statements, mayRun, retried, onQuery } = options;
  return (sql, parameters) => {
    if (!mayRun()) return undefined;
    const statement = statements.prepare(sql);
    let result: QueryResult<unknown>;
    try {
      if (statement.reader) {
        result = { rows: statement.all(parameters) };
      } else {
        const { changes, lastInsertRowid } = statement.run(parameters);
        result = { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
      }
    } catch (error) {
      if (retried(error)) return undefined;
      // Kysely's log reports failed statements too.
      onQuery?.(sql);
      throw error;
    }
    onQuery?.(sql);
    return result;
  };
}
