import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  SqliteAdapter,
  SqliteDialect,
  type SqliteDialectConfig,
  type TransactionSettings,
} from 'kysely';

/** How {@link BusyWaitingSqliteDialect} waits for another process's lock. */
export interface SqliteBusyWait {
  /** Longest wait for the lock per statement (or per `BEGIN IMMEDIATE`), in ms. */
  timeoutMs: number;
  /** Whether the connection is inside a transaction now (better-sqlite3's `inTransaction`). */
  inTransaction(): boolean;
}

/** First pause after a busy answer, in ms; it doubles up to {@link MAX_PAUSE_MS}. */
const FIRST_PAUSE_MS = 2;
/** Longest pause between two tries: a released lock is taken within this. */
const MAX_PAUSE_MS = 50;

/** SQLITE_BUSY and its extended codes (better-sqlite3 puts the name in `code`). */
export function isBusy(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error)) return false;
  const { code } = error as { code: unknown };
  return typeof code === 'string' && (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_'));
}

/**
 * Kysely's SQLite dialect, waiting for another process's lock (a second `gatehouse` command, a
 * backup, an operator's `sqlite3` shell) without blocking the event loop.
 *
 * better-sqlite3 is synchronous: SQLite's own `busy_timeout` sleeps inside the call, so while
 * another process held the write lock every request of the server, `/healthz` and event-stream
 * heartbeats included, stalled for up to `DATABASE_STATEMENT_TIMEOUT` per waiting statement, one
 * after another (measured: `/healthz` 4.9 s with the default 5 s). So `busy_timeout` is 0 and the
 * wait happens here, between tries, on a timer (`test/faults/sqlite-second-writer.test.ts`).
 *
 * Retrying is safe only where a busy answer left nothing behind: a statement outside a
 * transaction (SQLite ran none of it), and `BEGIN`. Transactions therefore start with
 * `BEGIN IMMEDIATE` (SQLite's "Transaction" page): the write lock is taken, or waited for, before
 * the transaction's first read, so no statement inside it can meet a busy lock. A deferred
 * transaction that read before another process wrote could only fail at its first write
 * (SQLITE_BUSY_SNAPSHOT, no wait would help). A busy answer inside a transaction is not retried.
 * Within the process, Kysely's one-connection mutex already serializes transactions.
 *
 * Migrations run in one such transaction too ({@link TransactionalDdlSqliteAdapter}).
 */
export class BusyWaitingSqliteDialect extends SqliteDialect {
  readonly #wait: SqliteBusyWait;
  #driver: BusyWaitingDriver | undefined;

  constructor(config: SqliteDialectConfig, wait: SqliteBusyWait) {
    super(config);
    this.#wait = wait;
  }

  /** The driver Kysely created (it calls {@link createDriver} once), for `createSqliteTransaction`. */
  get driver(): Driver | undefined {
    return this.#driver;
  }

  /**
   * True while nobody holds the one connection (no transaction, no statement, no stream in
   * progress through Kysely) and the database is not destroyed: a statement run on it now, outside
   * Kysely, runs alone and outside any transaction (`sqlite-direct-statements.ts`).
   */
  get connectionFree(): boolean {
    return this.#driver?.connectionFree === true;
  }

  /** Holders waiting for the one connection (a transaction or statement holds it): the pool gauge's `waiting`. */
  get connectionsWaiting(): number {
    return this.#driver?.waiting ?? 0;
  }

  override createDriver(): BusyWaitingDriver {
    this.#driver = new BusyWaitingDriver(super.createDriver(), this.#wait);
    return this.#driver;
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

/**
 * Kysely's SQLite adapter, but saying what SQLite does: DDL is transactional ("all changes
 * within a single transaction occur completely or not at all", SQLite's "Atomic Commit" page).
 * Kysely's adapter says no, so its Migrator ran SQLite migrations statement by statement with a
 * no-op lock (it assumes one connection): two processes migrating a fresh file at once (`gatehouse
 * migrate` beside a starting server, two servers) both ran the same migration and one failed
 * ("table users already exists", "duplicate column name"), and a process dying inside a
 * migration left it half applied and unrecorded, so every later start failed. Now the Migrator
 * runs each history's pending migrations and their history rows in one `BEGIN IMMEDIATE`
 * transaction: a second migrator waits for the first and then finds nothing to run
 * (`test/cli-migrate.test.ts`). No migration may rely on `PRAGMA foreign_keys`, which SQLite
 * ignores inside a transaction.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class BusyWaitingDriver implements Driver {
  readonly #inner: Driver;
  readonly #wait: SqliteBusyWait;
  #connection: BusyWaitingConnection | undefined;
  // Kysely's SQLite driver lends its one connection to one holder at a time (its mutex): set from
  // the moment a holder has it until it gives it back.
  #held = false;
  #destroyed = false;
  #waiting = 0;

  constructor(inner: Driver, wait: SqliteBusyWait) {
    this.#inner = inner;
    this.#wait = wait;
  }

  init(): Promise<void> {
    return this.#inner.init();
  }

  /** See {@link BusyWaitingSqliteDialect.connectionFree}. */
  get connectionFree(): boolean {
    return !this.#held && !this.#destroyed;
  }

  /** See {@link BusyWaitingSqliteDialect.connectionsWaiting}. */
  get waiting(): number {
    return this.#waiting;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    this.#waiting += 1;
    let connection: DatabaseConnection;
    try {
      connection = await this.#inner.acquireConnection();
    } finally {
      this.#waiting -= 1;
    }
    this.#held = true;
    // SQLite's driver hands out its one connection every time: wrap it once.
    if (this.#connection?.inner !== connection) {
      this.#connection = new BusyWaitingConnection(connection, this.#wait);
    }
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection, _settings: TransactionSettings): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#inner.commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    // SQLite ends a transaction by itself on some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM:
    // "the transaction might be rolled back automatically", sqlite.org/lang_transaction.html). A
    // ROLLBACK then fails with "cannot rollback - no transaction is active", and that error replaced
    // the one that ended it: on a full disk every sign-in answered 500 instead of 503 (ops review
    // 2026-12s O2).
    if (!this.#wait.inTransaction()) return Promise.resolve();
    return this.#inner.rollbackTransaction(connection);
  }

  async savepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await this.#inner.savepoint?.(connection, name, compileQuery);
  }

  async rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await this.#inner.rollbackToSavepoint?.(connection, name, compileQuery);
  }

  async releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await this.#inner.releaseSavepoint?.(connection, name, compileQuery);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    this.#held = false;
    return this.#inner.releaseConnection(
      connection instanceof BusyWaitingConnection ? connection.inner : connection,
    );
  }

  destroy(): Promise<void> {
    this.#destroyed = true;
    return this.#inner.destroy();
  }
}

class BusyWaitingConnection implements DatabaseConnection {
  readonly inner: DatabaseConnection;
  readonly #wait: SqliteBusyWait;

  constructor(inner: DatabaseConnection, wait: SqliteBusyWait) {
    this.inner = inner;
    this.#wait = wait;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    // A monotonic clock: a wall clock stepped back an hour while a statement waited made it wait
    // (and hold its request) for the hour, whatever the statement timeout.
    const deadline = performance.now() + this.#wait.timeoutMs;
    for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(MAX_PAUSE_MS, pause * 2)) {
      try {
        return await this.inner.executeQuery<R>(compiledQuery);
      } catch (error) {
        const left = deadline - performance.now();
        // Past the bound the busy error goes up as it is: isDatabaseUnavailable makes it a 503.
        if (!isBusy(error) || this.#wait.inTransaction() || left <= 0) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
      }
    }
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(compiledQuery, chunkSize);
  }
}
