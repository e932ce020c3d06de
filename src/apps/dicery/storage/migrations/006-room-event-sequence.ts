import { type Kysely, sql } from 'kysely';

/**
 * Per-room, gap-free event sequence numbers (issue 9, item 6).
 *
 * Before this, an event's id came from one global identity column: ids are drawn at insert time but
 * rows become visible at commit, so on PostgreSQL two concurrent appends could become visible as
 * 3 before 2, and a stream that had sent 3 skipped 2 for good. Global ids also told a player how
 * busy every other room was.
 *
 * Now `rooms.last_event_seq` is the room's counter. An append runs
 * `UPDATE rooms SET last_event_seq = last_event_seq + 1 … RETURNING` inside the same transaction
 * as the room change and the event insert: the UPDATE row-locks the room on PostgreSQL (SQLite
 * has a single writer), so sequence numbers of one room are handed out, and committed, one at a
 * time. Whoever can see `last_event_seq = n` can therefore see events 1..n of that room.
 *
 * Existing events are numbered 1..n per room in their old id order, which was their delivery order.
 * `room_events.id` stays as the row's internal key; it is no longer sent to anyone.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('rooms')
    .addColumn('last_event_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  // NOT NULL needs a default on SQLite's ADD COLUMN; every insert sets seq explicitly from now on.
  await db.schema
    .alterTable('room_events')
    .addColumn('seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  // ROW_NUMBER() in UPDATE … FROM: one pass over the log (a correlated count would be quadratic in
  // a busy room's events). The same statement runs on PostgreSQL and SQLite (3.33+ for UPDATE FROM).
  await sql`
    update room_events set seq = numbered.n
    from (
      select id, row_number() over (partition by room_code order by id) as n from room_events
    ) as numbered
    where room_events.id = numbered.id`.execute(db);
  await sql`
    update rooms set last_event_seq = coalesce(
      (select max(seq) from room_events where room_events.room_code = rooms.code), 0
    )`.execute(db);
  await db.schema
    .createIndex('room_events_room_seq_idx')
    .on('room_events')
    .columns(['room_code', 'seq'])
    .unique()
    .execute();
  // Every read now goes by (room_code, seq); the old index would only slow appends down.
  await db.schema.dropIndex('room_events_room_id_idx').execute();
}

/** Restores the global-id layout (the sequence numbers are dropped). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('room_events_room_id_idx')
    .on('room_events')
    .columns(['room_code', 'id'])
    .execute();
  await db.schema.dropIndex('room_events_room_seq_idx').execute();
  await db.schema.alterTable('room_events').dropColumn('seq').execute();
  await db.schema.alterTable('rooms').dropColumn('last_event_seq').execute();
}
