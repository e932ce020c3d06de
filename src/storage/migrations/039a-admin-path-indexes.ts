import type { Kysely } from 'kysely';

/**
 * Indexes for three administrator paths that read a whole growing table (an audit of every
 * statement the suite runs, 2026-12-06):
 *
 * - `oauth_codes(client_id)` and `oauth_consents(client_id)`: removing a client cascades into both
 *   (the consents' key leads with `user_id`), and disabling one deletes its unexchanged codes; each
 *   was a scan of the table inside the change's write transaction (≈ 257 ms with 500 000 consents
 *   and 100 000 codes on SQLite, holding its one writer's lock, so every login waited).
 * - `users(created_at, id)`: `GET /users` pages in that order, and sorted every account for each
 *   page (≈ 150 ms per million accounts on SQLite, on the event loop). The page's total is still a
 *   count of every account (or of those a filter keeps), read from the smallest index.
 *
 * Built in the migration's transaction, like 038a.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('oauth_codes_client_idx').on('oauth_codes').column('client_id').execute();
  await db.schema.createIndex('oauth_consents_client_idx').on('oauth_consents').column('client_id').execute();
  await db.schema.createIndex('users_created_idx').on('users').columns(['created_at', 'id']).execute();
}

/** Drops the indexes: those paths read their whole tables again. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('users_created_idx').execute();
  await db.schema.dropIndex('oauth_consents_client_idx').execute();
  await db.schema.dropIndex('oauth_codes_client_idx').execute();
}
