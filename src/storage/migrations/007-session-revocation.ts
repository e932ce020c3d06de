import type { Kysely } from 'kysely';

/**
 * Refresh grace (issue 9): a spent refresh token keeps its successor, encrypted, so a client that
 * retries a refresh whose response was lost gets the same successor back. The column is cleared
 * on the session's next rotation and by the hourly sweep.
 *
 * No index is added for the incremental revocation reload (`revoked_at > watermark`): migration
 * 001's `sessions_revoked_idx` on `(revoked_at, expires_at)` already serves that range scan.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('refresh_tokens').addColumn('successor', 'text').execute();
}

/** Drops what {@link up} added. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('refresh_tokens').dropColumn('successor').execute();
}
