import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import {
  Kysely,
  type KyselyConfig,
  type PostgresCursor,
  PostgresDialect,
  type PostgresPool,
  type PostgresPoolClient,
  type PostgresQueryResult,
  type Transaction,
} from 'kysely';
import type pg from 'pg';
import {
  type ConnectionBreaker,
  createConnectionBreaker,
  DatabaseUnreachableError,
} from './connection-breaker.js';
import { SharedLookupSocket } from './postgres-socket.js';
import type { Schema } from './schema.js';
import { BusyWaitingSqliteDialect, isBusy } from './sqlite-busy-wait.js';
import { createDirectStatementRunner, registerDirectStatements } from './sqlite-direct-statements.js';
import { withStatementCache } from './sqlite-statement-cache.js';
import { createSqliteTransaction } from './sqlite-transaction.js';

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
   * throws. Build stores over the `trx` it receives (`createSessionStore(trx)`) so every write of one
   * change commits together. Keep password hashing, Redis and network calls out of `work`: a
   * transaction holds locks (and, on SQLite, the only connection) until it ends.
   */
  transaction<T>(work: (trx: Transaction<Schema>) => Promise<T>): Promise<T>;
  /** Closes every connection. */
  close(): Promise<void>;
  /** How the connections are used right now (metrics). */
  poolStats(): DatabasePoolStats;
  /**
   * SQLite on a file: true once its path no longer names the file this process has open (deleted,
   * renamed, or replaced by a restore while running). Every write since then, and every write
   * after, lives only in that open file, which the next start will not read. Absent otherwise.
   */
  fileMoved?(): boolean;
  /**
   * SQLite on a file: true while a write that needs a new page cannot succeed: the file system
   * holding the file has less than {@link SQLITE_MIN_FREE_BYTES} left, or the file is at
   * `max_page_count`. `select 1` never touches the file, so readiness could not see a full disk,
   * where every sign-in fails (ops review 2026-12s O2). Absent otherwise.
   */
  diskFull?(): Promise<boolean>;
}

/**
 * Free space under which an SQLite file counts as full for readiness: a write transaction appends
 * a few pages to the WAL, and a checkpoint may need room for as many again.
 */
export const SQLITE_MIN_FREE_BYTES = 1024 * 1024;

/**
 * Connection use of a {@link Database}. SQLite has one connection: it counts as in use while a
 * transaction holds it (statements outside one finish synchronously, so they never show).
 */
export interface DatabasePoolStats {
  /** Most connections the pool opens (10 for PostgreSQL, 1 for SQLite). */
  max: number;
  /** Connections open now. */
  open: number;
  /** Open connections not checked out. */
  idle: number;
  /** Callers waiting for a connection (PostgreSQL; always 0 for SQLite). */
  waiting: number;
  /**
   * PostgreSQL: true while calls fail at once because the server stopped answering (see
   * `connection-breaker.ts`). Absent for SQLite.
   */
  unreachable?: boolean;
}

const INT8_OID = 20;

/** Connections in the PostgreSQL pool. */
const POSTGRES_POOL_SIZE = 10;

const require = createRequire(import.meta.url);

/**
 * Loads node-postgres on first use: a server on SQLite never pays for its modules (issue 10,
 * footprint). A synchronous require (pg is CommonJS) keeps {@link openDatabase} synchronous.
 */
function loadPg(): typeof pg {
  return require('pg') as typeof pg;
}

/** Timeouts and fault reporting of {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /**
   * Milliseconds to wait for a PostgreSQL connection (new, or free in the pool) before the call
   * fails. @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * Milliseconds a statement may run: PostgreSQL `statement_timeout` (plus a client-side
   * `query_timeout` 1 s later for a server that does not answer at all); on SQLite, the longest
   * wait for another process's lock, between tries on a timer (never blocking the event loop).
   * @default 5000
   */
  statementTimeoutMs?: number;
  /**
   * PostgreSQL `lock_timeout`: milliseconds a statement may wait for a lock before it fails.
   * @default none (the statement timeout bounds the wait)
   */
  lockTimeoutMs?: number;
  /**
   * Told about connection errors that no query is waiting for (a terminated or lost pool
   * connection). The pool drops such a connection and opens a new one on demand; without a
   * listener, Node would turn the `error` event into a process exit. @default ignore
   */
  onConnectionError?: (error: Error) => void;
  /**
   * PostgreSQL: told when calls start failing fast because the server stopped answering
   * (`reachable` false, with the failure that showed it) and when a probe reaches it again.
   * @default ignore
   */
  onReachabilityChange?: (reachable: boolean, error?: Error) => void;
  /**
   * Told the SQL text of every statement once it has run (Kysely's query log), transaction
   * control (`begin`, `commit`, `rollback`) included. @default none (no logging cost)
   */
  onQuery?: (sql: string) => void;
}

/**
 * Opens `sqlite:<path>`, `sqlite::memory:` or `postgres://…`. SQLite runs in WAL mode with
 * foreign keys on; PostgreSQL returns `bigint` columns as numbers (our epoch-ms timestamps fit).
 * Every call is bounded in time (see {@link OpenDatabaseOptions}); a call that times out or finds
 * the server gone rejects with an error that {@link isDatabaseUnavailable} recognizes.
 */
export function openDatabase(url: string, options: OpenDatabaseOptions = {}): Database {
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const statementTimeoutMs = options.statementTimeoutMs ?? 5000;
  const onConnectionError = options.onConnectionError ?? (() => {});
  const { onQuery } = options;
  const log: KyselyConfig['log'] = onQuery === undefined ? undefined : (event) => onQuery(event.query.sql);
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path !== ':memory:') {
      // The database holds password hashes and session data: owner-only folder and file (0700/0600,
      // whatever the umask). SQLite gives the -wal and -shm files the main file's mode.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      closeSync(openSync(path, 'a', 0o600));
    }
    const sqlite = new SQLite(path);
    // WAL lets readers proceed while one writer commits.
    if (path !== ':memory:') sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('foreign_keys = ON');
    // No synchronous wait for another process's lock: SQLite would sleep inside the call and stall
    // the whole event loop. The dialect waits between tries instead, up to the statement timeout,
    // then fails with SQLITE_BUSY (a 503); see sqlite-busy-wait.ts.
    sqlite.pragma('busy_timeout = 0');
    sqlite.pragma('synchronous = NORMAL');
    const statements = withStatementCache(sqlite);
    const dialect = new BusyWaitingSqliteDialect(
      { database: statements },
      { timeoutMs: statementTimeoutMs, inTransaction: () => sqlite.inTransaction },
    );
    const db = new Kysely<Schema>({ dialect, ...(log === undefined ? {} : { log }) });
    // Precompiled statements (a login's look-ups) run on the connection directly while nobody holds
    // it; a busy lock sends them through Kysely's path, which waits and retries (see
    // sqlite-direct-statements.ts). `db` has no plugins, whose result transforms this would skip.
    registerDirectStatements(
      db.getExecutor(),
      createDirectStatementRunner({
        statements,
        mayRun: () => dialect.connectionFree,
        retried: (error) => isBusy(error) && !sqlite.inTransaction,
        onQuery,
      }),
    );
    // The file's identity when opened: SQLite keeps writing to that inode whatever the path later
    // names (fault review, third part: a deleted file went on answering 201 to sign-ups).
    const opened = path === ':memory:' ? undefined : statSync(path);
    return {
      db,
      dialect: 'sqlite',
      ...(opened === undefined
        ? {}
        : {
            fileMoved: () => {
              const now = statSync(path, { throwIfNoEntry: false });
              return now === undefined || now.ino !== opened.ino || now.dev !== opened.dev;
            },
            diskFull: async () => {
              const pages = Number(sqlite.pragma('page_count', { simple: true }));
              const maxPages = Number(sqlite.pragma('max_page_count', { simple: true }));
              if (pages >= maxPages) return true;
              const space = await statfs(dirname(path));
              // What this process may use: root also has the blocks reserved for it.
              const blocks = process.getuid?.() === 0 ? space.bfree : space.bavail;
              return blocks * space.bsize < SQLITE_MIN_FREE_BYTES;
            },
          }),
      transaction: createSqliteTransaction(db, dialect, { statements, onQuery }),
      close: () => db.destroy(),
      // In use while anything holds the one connection (a transaction, a statement waiting out
      // another process's lock), not only inside a transaction; waiting: who queues for it (ops
      // review 2026-12s O5: requests queued behind a lock showed as an idle pool).
      poolStats: () => ({
        max: 1,
        open: 1,
        idle: dialect.connectionFree ? 1 : 0,
        waiting: dialect.connectionsWaiting,
      }),
    };
  }
  const pgModule = loadPg();
  const connectionOptions = {
    connectionString: url,
    max: POSTGRES_POOL_SIZE,
    // Issue 9: nothing may wait forever on the database. Connecting (or waiting for a free pooled
    // connection) is bounded; the server cancels a long statement; the client gives up 1 s later
    // when the server does not answer at all (SIGSTOP, partition), which statement_timeout alone
    // cannot catch; and a transaction left idle cannot hold its locks for more than 2× that.
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + 1000,
    idle_in_transaction_session_timeout: statementTimeoutMs * 2,
    ...(options.lockTimeoutMs === undefined ? {} : { lock_timeout: options.lockTimeoutMs }),
    // TCP keepalive notices a peer that vanished without a FIN (a dead host, a dropped NAT entry)
    // on an idle pooled connection; probing after 10 s idle instead of the OS default of 2 h.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A stalled resolver costs one outstanding look-up of the host name, not one per connect
    // attempt queued on libuv's thread pool ahead of every other look-up (postgres-socket.ts).
    stream: () => new SharedLookupSocket(),
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (value: string) => Number(value)
          : pgModule.types.getTypeParser(oid, format)) as never,
    },
  } satisfies pg.PoolConfig;
  const pool = new pgModule.Pool(connectionOptions);
  // An idle pooled connection that dies (pg_terminate_backend, server restart) is reported here and
  // removed by the pool; one that dies while checked out (between two queries of a transaction)
  // emits on the client, which has no pool listener then. Unhandled, either would exit the process.
  // An idle one's error reaches both listeners (the pool re-emits its idle clients' errors): told
  // once, by the error's identity (before, every terminated idle connection was logged twice).
  const reported = new WeakSet<Error>();
  const report = (error: Error) => {
    if (reported.has(error)) return;
    reported.add(error);
    onConnectionError(error);
  };
  pool.on('error', report);
  pool.on('connect', (client) => {
    client.on('error', report);
  });
  const probe = createProbe(() => new pgModule.Client(connectionOptions));
  const breaker = createConnectionBreaker({
    retryMs: UNREACHABLE_PROBE_INTERVAL_MS,
    probe: probe.run,
    ...(options.onReachabilityChange === undefined ? {} : { onChange: options.onReachabilityChange }),
  });
  const db = new Kysely<Schema>({
    dialect: new PostgresDialect({ pool: discardBrokenConnections(pool, breaker) }),
    ...(log === undefined ? {} : { log }),
  });
  return {
    db,
    dialect: 'postgres',
    transaction: (work) => db.transaction().execute(work),
    close: () => {
      breaker.dispose();
      probe.abort();
      return db.destroy();
    },
    poolStats: () => ({
      max: POSTGRES_POOL_SIZE,
      open: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      unreachable: breaker.unreachable,
    }),
  };
}

/**
 * Milliseconds between the moment PostgreSQL stopped answering and the breaker's first probe, and
 * between probes: how long calls fail fast before the server is asked again, so at most this much
 * (plus the probe's round trip) is added to an outage once the server is back. A probe is one
 * connect and `select 1`, one at a time: a few connect attempts a second per instance while the
 * server is away.
 */
export const UNREACHABLE_PROBE_INTERVAL_MS = 250;

/** pg-pool's error for a wait for a free pooled connection that timed out: the pool was busy. */
const POOL_WAIT_TIMEOUT = 'timeout exceeded when trying to connect';

/** True when the server sent `error` (it has a SQLSTATE): the server is reachable. */
function answeredByServer(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'severity' in error;
}

/**
 * A failed connect that shows the server did not answer: refused, unreachable, timed out. Not a
 * wait for a busy pool's free connection (that is load, not an outage), not the pool closing, and
 * not an error the server sent.
 */
function connectGotNoAnswer(error: unknown): error is Error {
  return (
    error instanceof Error &&
    !answeredByServer(error) &&
    error.message !== POOL_WAIT_TIMEOUT &&
    !error.message.startsWith('Cannot use a pool after calling end') &&
    isDatabaseUnavailable(error)
  );
}

/**
 * The breaker's probe: a connection of its own (never one of the pool's, which may be the frozen
 * ones, and never a pool slot) that connects and asks `select 1`, bounded by the connect timeout
 * and the client-side query timeout. The server counts as reached when it answered, and also on
 * any failure that is not a lost, refused or timed-out connection (a TLS or authentication error
 * after a restart): calls then go through and fail with that error, where an operator sees it,
 * instead of "not answering" for as long as it lasts. `abort` ends a probe under way (the pool is
 * closing: shutdown must not wait up to a connect timeout for it).
 */
function createProbe(newClient: () => pg.Client): { run(): Promise<boolean>; abort(): void } {
  let current: pg.Client | undefined;
  const destroy = (client: pg.Client) => {
    // pg's end() on a connection the server never answered waits for it; the socket goes at once.
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  };
  return {
    async run() {
      const client = newClient();
      current = client;
      // A probe connection lost later must not become an unhandled 'error' (a process exit).
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('select 1');
        return true;
      } catch (error) {
        return answeredByServer(error) || !isDatabaseUnavailable(error);
      } finally {
        if (current === client) current = undefined;
        destroy(client);
      }
    },
    abort() {
      if (current !== undefined) destroy(current);
      current = undefined;
    },
  };
}

/**
 * Hands Kysely the pool's connections, but throws away (instead of pooling again) any connection
 * whose query failed without an answer from the server: a client-side `query_timeout` leaves the
 * statement outstanding on that connection, so every later query on it would queue behind an
 * answer that may never come (a partition, a frozen server). Discarding it at once also makes the
 * ROLLBACK that follows fail fast, so a transaction is bounded by one timeout, not two.
 *
 * A connect or query that got no answer at all also opens `breaker`: later checkouts fail at once
 * until the server answers again, instead of each waiting its own timeout (red-team 2026-12h F4).
 */
function discardBrokenConnections(pool: pg.Pool, breaker: ConnectionBreaker): PostgresPool {
  return {
    connect: async () => {
      breaker.check();
      try {
        return new GuardedClient(await pool.connect(), breaker);
      } catch (error) {
        if (connectGotNoAnswer(error)) breaker.noAnswer(error);
        throw error;
      }
    },
    end: () => pool.end(),
  };
}

/** pg's error for a query the server did not answer within the client-side `query_timeout`. */
const QUERY_READ_TIMEOUT = 'Query read timeout';

class GuardedClient implements PostgresPoolClient {
  #client: pg.PoolClient;
  #breaker: ConnectionBreaker;
  #broken: Error | undefined;

  constructor(client: pg.PoolClient, breaker: ConnectionBreaker) {
    this.#client = client;
    this.#breaker = breaker;
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(
    sqlOrCursor: string | PostgresCursor<R>,
    parameters: ReadonlyArray<unknown> = [],
  ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    // openDatabase never configures Kysely's streaming cursor, so Kysely never passes one.
    if (typeof sqlOrCursor !== 'string') throw new Error('cursors are not enabled on this pool');
    return this.#run<R>(sqlOrCursor, parameters);
  }

  async #run<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
    if (this.#broken !== undefined) throw this.#broken;
    try {
      const result = await this.#client.query(sql, [...parameters]);
      this.#breaker.answered();
      return {
        // pg reports the command tag as a string; Kysely only compares it with these literals.
        command: result.command as PostgresQueryResult<R>['command'],
        rowCount: result.rowCount ?? 0,
        rows: result.rows,
      };
    } catch (error) {
      // A SQLSTATE means the server answered: the connection itself is fine.
      const answered = answeredByServer(error);
      if (answered) this.#breaker.answered();
      else if (error instanceof Error && isDatabaseUnavailable(error)) {
        this.#broken = error;
        // pg's release(error) destroys the connection instead of returning it to the pool.
        this.#client.release(error);
        // The server said nothing for statement_timeout + 1 s: frozen or cut off. (A connection that
        // died mid-query does not count: pg_terminate_backend ends one, not the server.)
        if (error.message === QUERY_READ_TIMEOUT) this.#breaker.noAnswer(error);
      }
      throw error;
    }
  }

  release(): void {
    if (this.#broken === undefined) this.#client.release();
  }
}

/**
 * PostgreSQL SQLSTATEs that mean "the database cannot serve this now", not "this request is
 * wrong": class 08 (connection exception), 57014 (query_canceled: statement_timeout), 57P01–57P05
 * (admin/crash shutdown, cannot connect now, idle session timeout), class 53 (insufficient
 * resources: disk full, out of memory, too many connections), class 58 (system error: I/O),
 * 25P03 (idle_in_transaction_session_timeout) and 25006 (read_only_sql_transaction: after a
 * failover the address reached a standby, or the server was put in read-only mode). See
 * PostgreSQL's "Error Codes" appendix.
 */
const PG_UNAVAILABLE = /^(08...|57014|57P0[1-5]|53...|58...|25P03|25006)$/;

/**
 * SQLite result codes (better-sqlite3 puts the name, extended or not, in `code`) that mean the
 * file cannot be written now, not that the request is wrong: another process's lock past the
 * statement timeout (BUSY), a full disk (FULL), an I/O error (IOERR: ENOSPC on the WAL, EIO), and a
 * file or file system that became read-only (READONLY). Each passes when the operator frees space
 * or the lock, with no restart (`test/faults/sqlite-file-faults.test.ts`). SQLITE_CORRUPT is left
 * out: it does not pass by itself.
 */
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|FULL|IOERR|READONLY)(_[A-Z_]+)?$/;

/** Messages node-postgres and better-sqlite3 use for a lost, refused or timed-out connection. */
const UNAVAILABLE_MESSAGES =
  /timeout exceeded when trying to connect|^timeout expired$|Query read timeout|Connection terminated|connection timeout|Client has encountered a connection error|Client was closed|Cannot use a pool after calling end|The database connection is not open|driver has already been destroyed/i;

/** Node socket error codes of a server that is down, unreachable or gone mid-call. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // A PostgreSQL reached over its Unix socket (`?host=/var/run/postgresql`) that is stopped or
  // restarting: the socket file is gone, so connect() fails with ENOENT, not ECONNREFUSED.
  'ENOENT',
]);

/**
 * True when `error` (or any error in its `cause` chain) says the database is unavailable or did
 * not answer in time, on either engine: the caller should answer "try again later" (503), not
 * "something is wrong with this request" (500). On SQLite that includes another writer holding
 * the lock past the statement timeout, a full disk and a file that became read-only.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth += 1) {
    if (current instanceof DatabaseUnreachableError) return true;
    const code = 'code' in current ? (current as { code: unknown }).code : undefined;
    if (typeof code === 'string') {
      if (PG_UNAVAILABLE.test(code) || NETWORK_CODES.has(code)) return true;
      if (SQLITE_UNAVAILABLE.test(code)) return true;
    }
    if (current instanceof Error && UNAVAILABLE_MESSAGES.test(current.message)) return true;
    // AggregateError (several addresses refused, e.g. ::1 and 127.0.0.1) wraps the socket errors.
    if (current instanceof AggregateError && current.errors.some((inner) => isDatabaseUnavailable(inner))) {
      return true;
    }
    current = 'cause' in current ? (current as { cause: unknown }).cause : undefined;
  }
  return false;
}

/**
 * PostgreSQL SQLSTATEs of a transaction the server ended because it conflicted with another:
 * 40P01 (deadlock_detected: each waited for a row lock the other held) and 40001
 * (serialization_failure: under READ COMMITTED, what a `SELECT … FOR UPDATE` or a row lock raises
 * when a concurrent change makes it unsatisfiable, and a standby's recovery conflict). The server
 * rolled the whole transaction back, and the same request run again can succeed.
 */
const PG_CONFLICT = /^(40P01|40001)$/;

/**
 * True when `error` (or any error in its `cause` chain) is a transaction that PostgreSQL ended
 * because it conflicted with a concurrent one (a deadlock or a serialization failure): not a
 * bug in the request, and not an outage; the adapter answers 503 TRANSACTION_CONFLICT with
 * `Retry-After`. Every transaction takes the user row first (ARCHITECTURE.md, "Lock order"), so
 * Gatehouse's own transactions should not deadlock each other; this is what remains (an app's
 * transactions, an operator's session, a lock order yet unknown). SQLite never raises these.
 */
export function isTransactionConflict(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth += 1) {
    const code = 'code' in current ? (current as { code: unknown }).code : undefined;
    if (typeof code === 'string' && PG_CONFLICT.test(code)) return true;
    current = 'cause' in current ? (current as { cause: unknown }).cause : undefined;
  }
  return false;
}

/** True when `error` is a unique-constraint violation on either engine. */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error)) return false;
  const code = (error as { code: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * True when `error`, or an error it was caused by, is a foreign-key violation on either engine: a
 * row names one that is gone (deleted by a concurrent request after it was read).
 */
export function isForeignKeyViolation(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth += 1) {
    const code = 'code' in current ? (current as { code: unknown }).code : undefined;
    if (code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return true;
    current = 'cause' in current ? (current as { cause: unknown }).cause : undefined;
  }
  return false;
}
