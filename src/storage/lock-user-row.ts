import { type Kysely, PostgresAdapter } from 'kysely';
import type { Schema } from './schema.js';

/**
 * Runs `work` in a transaction that holds `userId`'s row lock, so per-account caps counted inside
 * it (live authorization codes, passkeys) are exact: a concurrent counter for the same account
 * waits for this transaction to end and then counts what it inserted. Joins `db`'s transaction
 * when `db` already is one (the lock then lasts until that transaction ends).
 *
 * PostgreSQL: `SELECT … FOR NO KEY UPDATE` — it conflicts with itself but not with the
 * `FOR KEY SHARE` locks foreign-key inserts take, so sign-ins writing sessions for the account are
 * not held up. Under READ COMMITTED a count and an insert in one transaction are not enough on
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
      await trx.selectFrom('users').select('id').where('id', '=', userId).forNoKeyUpdate().execute();
    }
    return work(trx);
  };
  return db.isTransaction ? locked(db) : db.transaction().execute(locked);
}

/**
 * Locks, in id order, the rows of `userIds` and of every active super admin (PostgreSQL
 * `SELECT … FOR UPDATE`), so a concurrent change of any of them waits for this transaction and
 * then reads its result: two super admins demoting or deleting each other at once leave one in
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
  await trx
    .selectFrom('users')
    .select('id')
    .where((eb) =>
      eb.or([
        eb('id', 'in', [...userIds]),
        eb.and([eb('role', '=', 'super_admin'), eb('is_active', '=', 1)]),
      ]),
    )
    .orderBy('id')
    .forUpdate()
    .execute();
}
