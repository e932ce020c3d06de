import { type Kysely, sql } from 'kysely';

/**
 * Seats (issue 14, item 1): a player's long-lived, room-scoped, revocable credential.
 *
 * A seat is a 256-bit random secret held by the player's browser in an HttpOnly cookie; the
 * database keeps only its SHA-256 (`seat_hash`, unique), so a leaked table cannot be replayed.
 * From a seat the server mints short-lived room tokens (`ROOM_TOKEN_TTL` keeps its meaning), so
 * reopening the room link resumes the same player instead of making a second one.
 *
 * - `seat_expires_at`: the seat's own (sliding) expiry, `ROOM_SEAT_TTL` after its last use.
 * - `seat_generation`: bumped when the seat moves to another device (a claim code); room tokens
 *   carry the generation they were minted for, so the old device's tokens stop at once.
 * - `claim_hash`, `claim_expires_at`: the one pending claim code of the player (SHA-256 of it),
 *   single-use, short-lived; issuing a new one replaces the old, so each player holds at most one.
 * - `left_reason` gains `expired`: a player whose seat expired is removed (their name frees up)
 *   with a reason of its own, so expiry is never shown as a kick.
 *
 * Widening a CHECK constraint needs a table rebuild on SQLite (no `ALTER … CONSTRAINT`); the
 * same rebuild runs on PostgreSQL so both engines end with one schema. Nothing references
 * `room_players`, so the copy-drop-rename is safe inside the migration's transaction.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('room_players_v7')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('room_code', 'text', (c) => c.notNull().references('rooms.code').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('present_key', 'text')
    .addColumn('joined_at', 'bigint', (c) => c.notNull())
    .addColumn('left_at', 'bigint')
    .addColumn('left_reason', 'text')
    .addColumn('seat_hash', 'text')
    .addColumn('seat_expires_at', 'bigint')
    .addColumn('seat_generation', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('claim_hash', 'text')
    .addColumn('claim_expires_at', 'bigint')
    .addCheckConstraint(
      'room_players_v7_left_reason_check',
      sql`left_reason in ('left', 'kicked', 'expired')`,
    )
    .addCheckConstraint(
      'room_players_v7_presence_check',
      sql`(left_at is null and present_key = name_key) or (left_at is not null and present_key is null)`,
    )
    .execute();
  await sql`
    insert into room_players_v7 (id, room_code, name, name_key, present_key, joined_at, left_at, left_reason)
    select id, room_code, name, name_key, present_key, joined_at, left_at, left_reason from room_players`.execute(
    db,
  );
  await db.schema.dropTable('room_players').execute();
  await db.schema.alterTable('room_players_v7').renameTo('room_players').execute();
  await createPlayerIndexes(db);
  await db.schema
    .createIndex('room_players_seat_idx')
    .on('room_players')
    .column('seat_hash')
    .unique()
    .execute();
}

async function createPlayerIndexes(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('room_players_room_idx').on('room_players').column('room_code').execute();
  await db.schema
    .createIndex('room_players_present_name_idx')
    .on('room_players')
    .columns(['room_code', 'present_key'])
    .unique()
    .execute();
}

/** Drops the seat columns (and players who left with `expired`, which the old schema refuses). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('room_players_v6')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('room_code', 'text', (c) => c.notNull().references('rooms.code').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('present_key', 'text')
    .addColumn('joined_at', 'bigint', (c) => c.notNull())
    .addColumn('left_at', 'bigint')
    .addColumn('left_reason', 'text')
    .addCheckConstraint('room_players_left_reason_check', sql`left_reason in ('left', 'kicked')`)
    .addCheckConstraint(
      'room_players_presence_check',
      sql`(left_at is null and present_key = name_key) or (left_at is not null and present_key is null)`,
    )
    .execute();
  await sql`
    insert into room_players_v6 (id, room_code, name, name_key, present_key, joined_at, left_at, left_reason)
    select id, room_code, name, name_key, present_key, joined_at, left_at,
      case when left_reason = 'expired' then 'left' else left_reason end
    from room_players`.execute(db);
  await db.schema.dropTable('room_players').execute();
  await db.schema.alterTable('room_players_v6').renameTo('room_players').execute();
  await createPlayerIndexes(db);
}
