import type { Kysely } from 'kysely';

/**
 * Closed-room retention (red-team 2026-12g D6): `ROOM_CLOSED_RETENTION` after a room closed, the
 * sweep deletes what it holds (events, log entries, players, bans) in bounded chunks and then
 * marks it `purged_at`. The room's own row stays (a few hundred bytes): its code is never drawn
 * again, so no old link, export or signed log can be mistaken for a new room's, and no delete
 * can reach an open room holding the same code.
 *
 * - `rooms.purged_at`: epoch ms, null until emptied. Nullable, no default: an `ADD COLUMN` that
 *   rewrites nothing, on both engines.
 * - `rooms_retention_idx` on `(state, purged_at, closed_at)`: the sweep's listing (closed, not yet
 *   emptied, oldest first) is one index range, however many rooms were emptied before.
 * - `room_spectator_sessions_room_idx`: closing a room deletes its spectators by room code, which
 *   scanned the whole table.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('rooms').addColumn('purged_at', 'bigint').execute();
  await db.schema
    .createIndex('rooms_retention_idx')
    .on('rooms')
    .columns(['state', 'purged_at', 'closed_at'])
    .execute();
  await db.schema
    .createIndex('room_spectator_sessions_room_idx')
    .on('room_spectator_sessions')
    .column('room_code')
    .execute();
}

/** Drops the indexes and the column. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('room_spectator_sessions_room_idx').execute();
  await db.schema.dropIndex('rooms_retention_idx').execute();
  await db.schema.alterTable('rooms').dropColumn('purged_at').execute();
}
