import type { Kysely } from 'kysely';

/**
 * Spectator (watch) links (issue 14, item 8): read-only capabilities a room's host hands out.
 *
 * - `room_spectator_links`: one row per live link. `token_hash` is the SHA-256 of the link's
 *   256-bit secret, which only the link (and the spectator's HttpOnly cookie) holds. Revoking a
 *   link deletes its row, so a revoked secret matches nothing. Bounded per room
 *   (`MAX_SPECTATOR_LINKS_PER_ROOM`, counted under the room's row lock), created by the host
 *   alone, and deleted with the room.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('room_spectator_links')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('room_code', 'text', (c) => c.notNull().references('rooms.code').onDelete('cascade'))
    .addColumn('token_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('room_spectator_links_hash_idx')
    .on('room_spectator_links')
    .column('token_hash')
    .unique()
    .execute();
  await db.schema
    .createIndex('room_spectator_links_room_idx')
    .on('room_spectator_links')
    .column('room_code')
    .execute();
}

/** Drops what {@link up} created. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('room_spectator_links').execute();
}
