import type { Kysely } from 'kysely';

/**
 * Issue 10, item 5: `sessions_revoked_idx` stops taking an entry for every login.
 *
 * The index `(revoked_at, expires_at)` serves only the revocation list's `revoked_at > ? and
 * expires_at > ?`, which implies `revoked_at is not null`; a new session is never revoked, so the
 * index now holds revoked sessions only (`where revoked_at is not null`), and a login writes one
 * b-tree page fewer (SQLite's WAL; one index entry fewer on PostgreSQL). It also stops SQLite's
 * planner from answering a user's live sessions (`user_id = ? and revoked_at is null`: listing
 * them, revoking them all) from that index's NULL range, i.e. every live session of every user;
 * those queries now use `sessions_user_idx`.
 *
 * Not done here: making the `cookie_token_hash` UNIQUE partial as well (bearer sessions put a NULL
 * into it). On SQLite that needs a table rebuild of `sessions`, and migrations now run inside one
 * transaction with foreign keys on, where dropping the old table would cascade to the refresh and
 * access tokens (bench/README.md, seventh round). Done since by 028a, which copies them aside.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('sessions_revoked_idx').execute();
  await db.schema
    .createIndex('sessions_revoked_idx')
    .on('sessions')
    .columns(['revoked_at', 'expires_at'])
    .where((eb) => eb('revoked_at', 'is not', null))
    .execute();
}

/** Puts back the index over every session. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('sessions_revoked_idx').execute();
  await db.schema
    .createIndex('sessions_revoked_idx')
    .on('sessions')
    .columns(['revoked_at', 'expires_at'])
    .execute();
}
