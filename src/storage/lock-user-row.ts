import { type Kysely, PostgresAdapter, sql } from 'kysely';
import type { Schema } from './schema.js';

/** Who else may hold an account's gate ({@link enterAccountGate}) beside a transaction. */
export type AccountGateMode = 'shared' | 'exclusive';

/** The text whose 64-bit hash (`hashtextextended(label, 0)`) keys account `userId`'s gate. */
export function accountGateLabel(userId: string): string {
  return `gatehouse.account:${userId}`;
}

/**
 * Takes, on PostgreSQL, the transaction-scoped advisory lock that queues the transactions locking
 * account `userId`'s row: `shared` before a `FOR KEY SHARE` or `FOR NO KEY UPDATE`, `exclusive`
 * before a `FOR UPDATE`. Released when the transaction ends; a no-op on SQLite.
 *
 * Why: row locks have no fair queue. PostgreSQL grants `FOR KEY SHARE` (and `FOR NO KEY UPDATE`)
 * beside the shares already held without waiting behind a `FOR UPDATE` that waits for them
 * (heapam.c `heap_lock_tuple`: no sleep when the lockers' modes do not conflict). So overlapping
 * sign-ins or refreshes, which a thief holding one refresh token can keep going, kept "log out
 * everywhere", a password change, a disconnect or an admin's disable waiting until
 * `statement_timeout`, and the victim could not end the thief's session. Heavyweight locks do
 * queue: a request that conflicts with one already waiting waits behind it (lock.c, `waitMask`).
 * With this gate taken first, a revocation waits only for the shares held when it arrived; a
 * sign-in or refresh arriving after it waits for it, and then reads what it changed.
 *
 * The key is a 64-bit hash of the account id under a label of its own; a collision with another
 * account or an app's own advisory lock only makes one transaction wait for the other.
 */
export function enterAccountGate(db: Kysely<Schema>, userId: string, mode: AccountGateMode): Promise<void> {
  return takeTransactionLock(db, accountGateLabel(userId), mode);
}

/**
 * PostgreSQL: the transaction-scoped advisory lock keyed by a 64-bit hash of `label`
 * (`hashtextextended(label, 0)`), in `mode`, held until the transaction ends; a no-op on SQLite,
 * where a transaction runs alone on the one connection. Labels start `gatehouse.`, so the core's
 * locks keep out of each other's way (and, but for a 2⁻⁶⁴ collision, an app's).
 */
export async function takeTransactionLock(
  db: Kysely<Schema>,
  label: string,
  mode: AccountGateMode,
): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  const key = sql`hashtextextended(${label}, 0)`;
  await (mode === 'shared'
    ? sql`select pg_advisory_xact_lock_shared(${key})`
    : sql`select pg_advisory_xact_lock(${key})`
  ).execute(db);
}

/**
 * Runs `work` in a transaction that holds `userId`'s row lock, so per-account caps counted inside
 * it (live authorization codes, passkeys) are exact: a concurrent counter for the same account
 * waits for this transaction to end and then counts what it inserted. Joins `db`'s transaction
 * when `db` already is one (the lock then lasts until that transaction ends).
 *
 * PostgreSQL: the account's gate shared ({@link enterAccountGate}), then `SELECT … FOR NO KEY
 * UPDATE` — it conflicts with itself but not with the `FOR KEY SHARE` locks foreign-key inserts
 * take, so sign-ins writing sessions for the account are not held up. Under READ COMMITTED a count and an insert in one transaction are not enough on
 * their own: two transactions both count N − 1 and both insert. SQLite: a transaction runs on the
 * one connection with nothing interleaved (and a second process's write fails with SQLITE_BUSY),
 * so the transaction alone makes the count and the insert atomic.
 */
export async function lockUserRow<T>(
  db: Kysely<Schema>,
  userId: string,
  work: (trx: Kysely<Schema>) => Promise<T>,
): Promise<T> {
  const locked = async (trx: Kysely<Schema>) => {
    if (trx.getExecutor().adapter instanceof PostgresAdapter) {
      await enterAccountGate(trx, userId, 'shared');
      await trx.selectFrom('users').select('id').where('id', '=', userId).forNoKeyUpdate().execute();
    }
    return work(trx);
  };
  return db.isTransaction ? locked(db) : db.transaction().execute(locked);
}

/**
 * Locks, in id order, the rows of `userIds` and of every active super admin (PostgreSQL: their
 * gates exclusive, {@link enterAccountGate}, then `SELECT … FOR UPDATE`), so a concurrent change
 * of any of them waits for this transaction and then reads its result: two super admins demoting or deleting each other at once leave one in
 * place, and a change judged on an actor's role cannot commit after that role was taken away. Id
 * order means two such transactions never deadlock each other. SQLite: a transaction runs on the
 * one connection with nothing interleaved, and a second process writing the same file makes it
 * fail with SQLITE_BUSY rather than commit on stale reads, so nothing is taken.
 */
export async function lockAccountsAndSuperAdmins(
  trx: Kysely<Schema>,
  userIds: readonly string[],
): Promise<void> {
  if (!(trx.getExecutor().adapter instanceof PostgresAdapter)) return;
  const parties = trx
    .selectFrom('users')
    .select('id')
    .where((eb) =>
      eb.or([
        eb('id', 'in', [...userIds]),
        eb.and([eb('role', '=', 'super_admin'), eb('is_active', '=', 1)]),
      ]),
    )
    .orderBy('id');
  // Gates first, in one order (code units) for every transaction that takes several. Read again
  // once they are held: a promotion that committed while this waited for a gate adds a super
  // admin, whose row must not be locked without its gate either (a stream of its shares would
  // keep this waiting). Once every super admin's gate is held no promotion can commit (it needs
  // them too), so the second read settles it; a gate taken out of order there may deadlock with
  // another such transaction, which PostgreSQL breaks (503 TRANSACTION_CONFLICT).
  const gated = new Set<string>();
  for (;;) {
    const missing = (await parties.execute()).map((row) => row.id).filter((id) => !gated.has(id));
    if (missing.length === 0) break;
    for (const id of missing.sort()) {
      await enterAccountGate(trx, id, 'exclusive');
      gated.add(id);
    }
  }
  await parties.forUpdate().execute();
}
