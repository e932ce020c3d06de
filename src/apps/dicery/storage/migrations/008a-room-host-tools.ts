import { type Kysely, sql } from 'kysely';

/**
 * Host tools (issue 14, item 3): bans, locking, host hand-over, idle expiry.
 *
 * - `rooms.locked`: 1 while the host refuses new players (present players keep playing, seats
 *   resume and claim codes still work: a lock is about strangers, not about the table).
 * - `rooms.last_activity_at`: epoch ms of the room's newest event (set by every append, in the
 *   same UPDATE that numbers it) or its creation; the idle sweeper closes rooms whose value is
 *   older than `ROOM_IDLE_TTL`. Indexed with `state` so the sweep is an index range scan.
 * - `rooms.transfer_hash`, `rooms.transfer_expires_at`: the one pending host hand-over code of the
 *   room (SHA-256 of it), single-use and short-lived; issuing another replaces it.
 * - `room_bans`: kick = ban. A ban holds the name key (nobody joins under that name again) and
 *   the kicked player's id (whose seat row keeps the seat hash, so that browser stays refused).
 *   Lifting a ban deletes the row and forgets that seat. Unique per (room, name key). Bounded by
 *   the room's kicks, which only its host makes, and capped per room (`MAX_BANS_PER_ROOM`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('rooms')
    .addColumn('locked', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('rooms').addColumn('last_activity_at', 'bigint').execute();
  await db.schema.alterTable('rooms').addColumn('transfer_hash', 'text').execute();
  await db.schema.alterTable('rooms').addColumn('transfer_expires_at', 'bigint').execute();
  await sql`update rooms set last_activity_at = coalesce(
      (select max(created_at) from room_events where room_events.room_code = rooms.code), created_at)`.execute(
    db,
  );
  await db.schema.createIndex('rooms_idle_idx').on('rooms').columns(['state', 'last_activity_at']).execute();
  await db.schema
    .createTable('room_bans')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('room_code', 'text', (c) => c.notNull().references('rooms.code').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('player_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('room_bans_name_idx')
    .on('room_bans')
    .columns(['room_code', 'name_key'])
    .unique()
    .execute();
}

/** Drops the bans and the room columns. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('room_bans').execute();
  await db.schema.dropIndex('rooms_idle_idx').execute();
  for (const column of ['transfer_expires_at', 'transfer_hash', 'last_activity_at', 'locked']) {
    await db.schema.alterTable('rooms').dropColumn(column).execute();
  }
}
