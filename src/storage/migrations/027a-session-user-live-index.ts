import type { Kysely } from 'kysely';

/**
 * Issue 10, item 5: a sign-in counts its account's live sessions from the index alone.
 *
 * Every sign-in counts the account's live sessions, and its client's (the session caps,
 * `MAX_SESSIONS_PER_ACCOUNT`): `user_id = ? and revoked_at is null and expires_at > ?`, with a
 * `client_id` filter. Through `sessions_user_idx (user_id)` alone that read every one of the
 * account's session rows, each on its own table page (session ids are random), so a login's cost
 * grew with the account's sessions, up to the cap's 100 page reads. The index now carries the
 * columns the count reads, in the order it filters them, so the count is one range of one
 * index page (SQLite: a covering index; PostgreSQL: an index-only scan once the heap's pages are
 * all-visible, and an index range either way).
 *
 * The leading `user_id` still serves everything the old index did: the foreign key's cascade when
 * an account is deleted, listing and revoking an account's sessions. The cost moves to revocation:
 * setting `revoked_at` moves the entry within the account's range (one more page a revocation
 * writes, none more per login). `expires_at` is fixed at the session's start, so a refresh moves
 * nothing.
 *
 * Built under the old index's name after it is dropped, in the migration's transaction: on
 * PostgreSQL this blocks writes to `sessions` while the index builds (as 021a did); a very large
 * table wants a maintenance window.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('sessions_user_idx').execute();
  await db.schema
    .createIndex('sessions_user_idx')
    .on('sessions')
    .columns(['user_id', 'revoked_at', 'expires_at', 'client_id'])
    .execute();
}

/** Puts back the index on `user_id` alone. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('sessions_user_idx').execute();
  await db.schema.createIndex('sessions_user_idx').on('sessions').column('user_id').execute();
}
