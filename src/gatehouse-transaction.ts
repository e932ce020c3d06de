/**
 * Units of work, and how the core uses them (issue 9, item 5).
 *
 * - A change starts its transaction in the service that owns the rule (`UserAdminService`'s
 *   `withParties`), with `Database.transaction`; the stores it needs are built over that `trx`
 *   (`createAuditStore(trx)`, `createSessionStore(trx)`), so the change, its audit rows, and the
 *   sessions it ends commit together or not at all. SQL stays in `storage/` folders.
 * - Apps (Dicery) build their stores over `tx.appDatabase<TheirTables>()` the same way (a handle
 *   typed with their own tables only: the core's tables change through the core's operations), and
 *   publish with `tx.afterCommit`.
 * - Nothing but SQL runs inside: password hashing happens before, broadcasts (Redis, the in-memory
 *   buses) after the commit, and a broadcast that fails after a commit is reported, never turned
 *   into an error for a change that has happened (other instances catch up from the database).
 * - Apps get the same through {@link runGatehouseTransaction} (`gatehouse.transaction`): one
 *   transaction spanning their own writes and the core's, with after-commit callbacks.
 *
 * @module
 */
import type { Kysely, Transaction } from 'kysely';
import { type AuditLog, createAuditLog } from './audit/audit-log.js';
import { appTables } from './storage/app-tables.js';
import { createAuditRetentionStore } from './storage/audit-retention-store.js';
import { createAuditStore } from './storage/audit-store.js';
import { lockUserRow } from './storage/lock-user-row.js';
import type { Database } from './storage/open-database.js';
import type { Schema } from './storage/schema.js';

/**
 * One app-scoped unit of work (see {@link Gatehouse.transaction}): the app's own writes and the
 * core's writes commit together or not at all, and broadcasts wait for the commit.
 */
export interface GatehouseTransaction {
  /**
   * The transaction, typed with the app's own tables only (see `Gatehouse.appDatabase`):
   * `createMyStore(tx.appDatabase<MyTables>())`. The core's tables are not in its type (issue 16):
   * change them through the core's operations. Only use it (and the operations below) until
   * `work` returns: on SQLite the transaction holds the only connection, so a query through
   * `gatehouse.appDatabase()` inside `work` would wait for it forever.
   */
  appDatabase<Tables extends Record<keyof Tables, object>>(): Kysely<Tables>;
  /** The audit log, writing in this transaction. */
  readonly audit: Pick<AuditLog, 'record'>;
  /**
   * Holds account `userId`'s row lock until this transaction ends, so a per-account cap the app
   * counts and then inserts under it is exact: a concurrent transaction that locks the same
   * account waits for this one to commit, then counts what it wrote (Dicery's
   * `MAX_OPEN_ROOMS_PER_HOST`; the core's passkey and authorization-code caps use the same lock).
   * Call it before the count. PostgreSQL: `SELECT … FOR NO KEY UPDATE` on the account's row (it
   * does not hold up sign-ins, whose session inserts take only `FOR KEY SHARE`); under READ
   * COMMITTED a count and an insert alone let two transactions both count N − 1 and both insert.
   * SQLite: a no-op, since a transaction already runs alone on the one connection. An unknown
   * account locks nothing (and throws nothing).
   */
  lockAccount(userId: string): Promise<void>;
  /**
   * Runs `callback` after the transaction has committed (never after a rollback), in registration
   * order, before {@link Gatehouse.transaction} resolves. Put broadcasts, mail and any other
   * network call here, not inside the transaction. A callback that throws is reported (see
   * `onAfterCommitError`) and does not fail the committed transaction.
   */
  afterCommit(callback: () => void | Promise<void>): void;
}

/** Dependencies of {@link runGatehouseTransaction}; a `Gatehouse` satisfies them. */
export interface GatehouseTransactionDeps {
  database: Database;
  clock: () => number;
  /**
   * Reports an after-commit callback that threw (the data is committed; only the side effect
   * failed, e.g. a broadcast while Redis is down).
   * @default emits a process warning
   */
  onAfterCommitError?: (error: unknown) => void;
}

function warnAfterCommitError(error: unknown): void {
  process.emitWarning('An after-commit callback failed; the transaction stays committed', {
    code: 'GATEHOUSE_AFTER_COMMIT_FAILED',
    detail: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
}

/**
 * Runs `work` in one database transaction with transaction-bound core operations, then its
 * after-commit callbacks. Resolves with what `work` resolved with; rejects (having rolled back,
 * and run no callback) when `work` or the commit fails.
 */
export function runGatehouseTransaction<T>(
  deps: GatehouseTransactionDeps,
  work: (tx: GatehouseTransaction) => Promise<T>,
): Promise<T> {
  // The app's callback gets the app-scoped `tx` only, never the core's typed transaction.
  return runCoreTransaction(deps, (tx) => work(tx));
}

/**
 * {@link runGatehouseTransaction} for the core's own services (the account lifecycle): `work`
 * also gets the Kysely transaction typed with the core's tables, to build the core's stores over
 * it, so an app's account-deleting hooks (`tx`) and the core's writes share one transaction.
 * Internal: apps only ever see `tx` (issue 16).
 */
export async function runCoreTransaction<T>(
  deps: GatehouseTransactionDeps,
  work: (tx: GatehouseTransaction, trx: Transaction<Schema>) => Promise<T>,
): Promise<T> {
  const onError = deps.onAfterCommitError ?? warnAfterCommitError;
  const callbacks: (() => void | Promise<void>)[] = [];
  let open = true;
  const afterCommit = (callback: () => void | Promise<void>) => {
    if (!open) throw new Error('afterCommit called after the transaction ended');
    callbacks.push(callback);
  };
  let result: T;
  try {
    result = await deps.database.transaction(async (trx) => {
      const tx: GatehouseTransaction = {
        appDatabase: <Tables extends Record<keyof Tables, object>>() => appTables<Tables, Schema>(trx),
        audit: createAuditLog(createAuditStore(trx), deps.clock, createAuditRetentionStore(trx)),
        lockAccount: (userId) => lockUserRow(trx, userId, async () => {}),
        afterCommit,
      };
      return work(tx, trx);
    });
  } finally {
    open = false;
  }
  for (const callback of callbacks) {
    try {
      await callback();
    } catch (error) {
      onError(error);
    }
  }
  return result;
}
