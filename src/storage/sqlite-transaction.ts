import { type DatabaseConnection, type Dialect, type Driver, type Kysely, Transaction } from 'kysely';
import { isBusy } from './sqlite-busy-wait.js';
import {
  createDirectStatementRunner,
  type DirectStatementOptions,
  registerDirectStatements,
} from './sqlite-direct-statements.js';

/** A dialect that hands out the driver it created (see `BusyWaitingSqliteDialect`). */
export interface DialectWithDriver extends Dialect {
  /** The driver the `Kysely` instance runs on, once it has been created. */
  readonly driver: Driver | undefined;
}

// What BusyWaitingDriver.beginTransaction and Kysely's SqliteDriver.commitTransaction send.
const BEGIN = 'begin immediate';
const COMMIT = 'commit';
const NO_PARAMETERS: readonly unknown[] = [];

/**
 * Lets the transaction's precompiled statements skip Kysely's executor
 * (`sqlite-direct-statements.ts`): the connection's statement cache and the query log.
 */
export type SqliteTransactionDirect = Pick<DirectStatementOptions, 'statements' | 'onQuery'>;

/** Runs `work` in one transaction: see {@link createSqliteTransaction}. */
export type SqliteTransactionRunner<DB> = <T>(work: (trx: Transaction<DB>) => Promise<T>) => Promise<T>;

/**
 * `Database.transaction` for SQLite, on the driver directly: what `db.transaction().execute(work)`
 * does, without the parts a one-connection, synchronous engine does not need.
 *
 * Kysely's transaction builder wraps every statement inside the transaction in an executor that
 * asserts the transaction is still open (a new executor and a new closure per statement) over a
 * `SingleConnectionProvider` that queues statements behind a promise chain. On a login (three
 * inserts between `begin immediate` and `commit`) that plumbing was about a quarter of the bytes a
 * login allocates (issue 10, seventh round). Here one guard per transaction does the assertion,
 * and statements go straight to the connection: better-sqlite3 runs each one synchronously when it
 * is called, so two statements of one transaction can never interleave. (A stream inside the
 * transaction could, and better-sqlite3 would refuse the second statement with "connection is
 * busy": an error, never a wrong result. Nothing in Gatehouse streams inside a transaction.)
 *
 * Unchanged from Kysely's: the connection is taken through the database's own executor (its
 * one-connection mutex, its lazy initialisation, its query log), so a statement outside the
 * transaction waits for it to end; `begin`, `commit` and `rollback` are the driver's (`BEGIN
 * IMMEDIATE`, see `sqlite-busy-wait.ts`); a failure after `begin`, the commit's included, rolls
 * back and rethrows; and a statement through `trx` once `work` has returned throws, as Kysely's
 * "Transaction is already committed" does, instead of running outside (or inside a later)
 * transaction.
 *
 * With `direct`, the precompiled statements `work` runs through `trx` go straight to the statement
 * (`runDirectStatement`) while the transaction is open, and through the guard above once it is not.
 * A busy lock inside the transaction is thrown, not retried, as on Kysely's path (`BEGIN
 * IMMEDIATE` took the lock first). `begin immediate` and `commit` go straight to their statements
 * too; a busy `begin` then takes the driver's path, which waits for the lock and retries.
 */
export function createSqliteTransaction<DB>(
  db: Kysely<DB>,
  dialect: DialectWithDriver,
  direct?: SqliteTransactionDirect,
): SqliteTransactionRunner<DB> {
  const executor = db.getExecutor();
  const config = { dialect };
  // The transaction's own control statements, on the connection this transaction holds.
  const always = () => true;
  const control =
    direct === undefined
      ? undefined
      : {
          begin: createDirectStatementRunner({ ...direct, mayRun: always, retried: isBusy }),
          commit: createDirectStatementRunner({ ...direct, mayRun: always, retried: () => false }),
        };
  return async (work) =>
    executor.provideConnection(async (connection) => {
      const driver = dialect.driver;
      if (driver === undefined) throw new Error('createSqliteTransaction: the dialect has no driver yet');
      let open = true;
      const guarded = {
        provideConnection<R>(consumer: (connection: DatabaseConnection) => Promise<R>): Promise<R> {
          if (!open) return Promise.reject(new Error('Transaction is already committed or rolled back'));
          return consumer(connection);
        },
      };
      const trxExecutor = executor.withConnectionProvider(guarded);
      const trx = new Transaction<DB>({ config, dialect, driver, executor: trxExecutor });
      if (direct !== undefined) {
        registerDirectStatements(
          trxExecutor,
          createDirectStatementRunner({ ...direct, mayRun: () => open, retried: () => false }),
        );
      }
      let begun = false;
      try {
        if (control?.begin(BEGIN, NO_PARAMETERS) === undefined) await driver.beginTransaction(connection, {});
        begun = true;
        const result = await work(trx);
        open = false;
        if (control?.commit(COMMIT, NO_PARAMETERS) === undefined) await driver.commitTransaction(connection);
        return result;
      } catch (error) {
        open = false;
        if (begun) await driver.rollbackTransaction(connection);
        throw error;
      }
    });
}
