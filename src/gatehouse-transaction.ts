/**
 * Units of work, and how the core uses them (issue 9, item 5).
 *
 * - A change starts its transaction in the service that owns the rule (`RoomService`'s `change`,
 *   `UserAdminService`'s `withParties`), with `Database.transaction`; the stores it needs are
 *   built over that `trx` (`createRoomStore(trx)`, `createAuditStore(trx)`,
 *   `createSessionStore(trx)`), so the change, its room event or audit rows, and the sessions it
 *   ends commit together or not at all. SQL stays in `src/storage`.
 * - Nothing but SQL runs inside: password hashing happens before, broadcasts (Redis, the in-memory
 *   buses) after the commit, and a broadcast that fails after a commit is reported, never turned
 *   into an error for a change that has happened (other instances catch up from the database).
 * - Apps get the same through {@link runGatehouseTransaction} (`gatehouse.transaction`): one
 *   transaction spanning their own writes and the core's, with after-commit callbacks.
 *
 * @module
 */
import type { Transaction } from 'kysely';
import { type AuditLog, createAuditLog } from './audit/audit-log.js';
import type { RoomBus, RoomEvent } from './rooms/room-bus.js';
import { createRoomService, type RoomService } from './rooms/room-service.js';
import { createAuditRetentionStore } from './storage/audit-retention-store.js';
import { createAuditStore } from './storage/audit-store.js';
import type { Database } from './storage/open-database.js';
import { createRoomStore } from './storage/room-store.js';
import type { Schema } from './storage/schema.js';

/**
 * One app-scoped unit of work (see {@link Gatehouse.transaction}): the app's own writes and the
 * core's writes commit together or not at all, and broadcasts wait for the commit.
 */
export interface GatehouseTransaction {
  /**
   * The Kysely transaction. For the app's own tables, widen its type with
   * `tx.db.withTables<MyTables>()`. Only use this (and the operations below) until `work`
   * returns: on SQLite the transaction holds the only connection, so a query through the
   * core's usual handles would wait for it forever.
   */
  readonly db: Transaction<Schema>;
  /**
   * Dicery room operations writing in this transaction. Their events take the room's next sequence
   * numbers here and are published only after the commit. A room operation that throws has
   * written nothing, so the app may catch the error and carry on.
   */
  readonly rooms: RoomService;
  /** The audit log, writing in this transaction. */
  readonly audit: Pick<AuditLog, 'record'>;
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
  roomBus: RoomBus;
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
 * A {@link RoomBus} whose `publish` only queues the event until the commit: room operations
 * running inside an app's transaction must not announce what may still roll back.
 */
function deferPublishing(bus: RoomBus, afterCommit: (callback: () => Promise<void>) => void): RoomBus {
  return {
    async publish(event: RoomEvent) {
      afterCommit(() => bus.publish(event));
    },
    subscribe: (roomCode, handler) => bus.subscribe(roomCode, handler),
    subscriberCount: (roomCode) => bus.subscriberCount(roomCode),
    onResync: (handler) => bus.onResync(handler),
    // Not this wrapper's to close: the bus belongs to the Gatehouse.
    close: async () => {},
  };
}

/**
 * Runs `work` in one database transaction with transaction-bound core operations, then its
 * after-commit callbacks. Resolves with what `work` resolved with; rejects (having rolled back,
 * and run no callback) when `work` or the commit fails.
 */
export async function runGatehouseTransaction<T>(
  deps: GatehouseTransactionDeps,
  work: (tx: GatehouseTransaction) => Promise<T>,
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
      const roomStore = createRoomStore(trx);
      const tx: GatehouseTransaction = {
        db: trx,
        rooms: createRoomService({
          rooms: roomStore,
          // Already inside the app's transaction: a room change joins it rather than nesting.
          transaction: (roomWork) => roomWork(roomStore),
          bus: deferPublishing(deps.roomBus, afterCommit),
          clock: deps.clock,
        }),
        audit: createAuditLog(createAuditStore(trx), deps.clock, createAuditRetentionStore(trx)),
        afterCommit,
      };
      return work(tx);
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
