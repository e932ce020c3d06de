import type { Kysely } from 'kysely';

/**
 * Spectators of watch links, one row each (the issue 14 follow-up: one link given to fifty people
 * used to be one credential, so they shared one read budget and one heavy viewer starved the rest).
 *
 * - `room_spectator_sessions`: one row per exchange of a watch link (`POST /rooms/{code}/watch`):
 *   the spectator's own credential, whose SHA-256 `token_hash` is all the server keeps (the secret
 *   is in the watch cookie or the spectator's bearer token). Read budgets and stream caps count per
 *   row. Bounded per link (`MAX_SPECTATORS_PER_WATCH_LINK`: opening the link beyond it ends the
 *   oldest), expired rows are dropped when the link is next opened, and rows go with their link
 *   (revoked) and their room (foreign keys, `on delete cascade`). "Stop watching" deletes the row.
 * - `room_spectator_links.last_opened_at`: set by every exchange, in its transaction; the UPDATE is
 *   also what row-locks the link on PostgreSQL, so parallel exchanges trim to the cap one at a time
 *   and an exchange racing a revocation finds the link gone.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('room_spectator_links').addColumn('last_opened_at', 'bigint').execute();
  await db.schema
    .createTable('room_spectator_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('link_id', 'text', (c) =>
      c.notNull().references('room_spectator_links.id').onDelete('cascade'),
    )
    .addColumn('room_code', 'text', (c) => c.notNull().references('rooms.code').onDelete('cascade'))
    .addColumn('token_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('room_spectator_sessions_hash_idx')
    .on('room_spectator_sessions')
    .column('token_hash')
    .unique()
    .execute();
  await db.schema
    .createIndex('room_spectator_sessions_link_idx')
    .on('room_spectator_sessions')
    .columns(['link_id', 'created_at'])
    .execute();
}

/** Drops what {@link up} created. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('room_spectator_sessions').execute();
  await db.schema.alterTable('room_spectator_links').dropColumn('last_opened_at').execute();
}
