import { type Kysely, sql } from 'kysely';

/**
 * `sessions_client_live_idx`: the live sessions of one OAuth client, found without reading the
 * whole table. Removing or disabling a client ends its sessions in batches inside the transaction
 * that holds the client's row (`OAuthGrantStore.sessionsOfClient`, without an account); each batch
 * scanned every session of every account before.
 *
 * Partial, over what such a look-up can match: unrevoked sessions of clients other than the
 * first-party `gatehouse` (cookie sessions and plain password grants), which a registered client
 * can never be. So a browser or password sign-in, most sign-ins, writes no entry to it; an app's
 * code exchange writes one, and its revocation removes it. The query repeats the predicate
 * literally (SQLite uses a partial index only when the query's terms imply its own).
 *
 * Built in the migration's transaction: on PostgreSQL this blocks writes to `sessions` while the
 * index builds (as 027a did); a very large table wants a maintenance window.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('sessions_client_live_idx')
    .on('sessions')
    .column('client_id')
    .where(sql<boolean>`revoked_at is null and client_id <> 'gatehouse'`)
    .execute();
}

/** Drops the index: a client's removal then scans the sessions table again. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('sessions_client_live_idx').execute();
}
