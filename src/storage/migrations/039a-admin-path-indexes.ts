import type { Kysely } from 'kysely';
import { isPostgres } from './dialect.js';

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
 * Online indexes on PostgreSQL, built concurrently after the migrations' transaction, like 038a's;
 * this migration builds them on SQLite only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (isPostgres(db)) return;
  await db.schema.createIndex('oauth_codes_client_idx').on('oauth_codes').column('client_id').execute();
  await db.schema.createIndex('oauth_consents_client_idx').on('oauth_consents').column('client_id').execute();
  await db.schema.createIndex('users_created_idx').on('users').columns(['created_at', 'id']).execute();
}

/** Drops the indexes: those paths read their whole tables again (`if exists`: as 038a's). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('users_created_idx').ifExists().execute();
  await db.schema.dropIndex('oauth_consents_client_idx').ifExists().execute();
  await db.schema.dropIndex('oauth_codes_client_idx').ifExists().execute();
}
