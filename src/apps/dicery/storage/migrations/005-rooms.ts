import { type Kysely, sql } from 'kysely';
import { isPostgres } from '../../../../index.js';

/**
 * Dicery rooms, their players and the per-room event log that SSE streams resume from.
 *
 * `room_players.present_key` holds the lower-cased name while the player is present and NULL once
 * they leave or are kicked. The unique index on `(room_code, present_key)` then makes "one present
 * player per name per room" a database guarantee that holds under concurrent joins on every
 * instance, while letting a name be reused after its holder has gone: SQLite and PostgreSQL both
 * treat NULLs as distinct in unique indexes, and neither needs partial-index syntax for this.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rooms')
    .addColumn('code', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('host_user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('open'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('closed_at', 'bigint')
    .addCheckConstraint('rooms_state_check', sql`state in ('open', 'closed')`)
    .execute();
  await db.schema.createIndex('rooms_host_idx').on('rooms').column('host_user_id').execute();

  await db.schema
    .createTable('room_players')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('room_code', 'text', (c) => c.notNull().references('rooms.code').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('present_key', 'text')
    .addColumn('joined_at', 'bigint', (c) => c.notNull())
    .addColumn('left_at', 'bigint')
    .addColumn('left_reason', 'text')
    .addCheckConstraint('room_players_left_reason_check', sql`left_reason in ('left', 'kicked')`)
    // A player is present exactly when present_key is set; keep the two views from drifting apart.
    .addCheckConstraint(
      'room_players_presence_check',
      sql`(left_at is null and present_key = name_key) or (left_at is not null and present_key is null)`,
    )
    .execute();
  await db.schema.createIndex('room_players_room_idx').on('room_players').column('room_code').execute();
  await db.schema
    .createIndex('room_players_present_name_idx')
    .on('room_players')
    .columns(['room_code', 'present_key'])
    .unique()
    .execute();

  // Event ids must only grow, because SSE clients resume with `id > Last-Event-ID`. SQLite's
  // AUTOINCREMENT never reuses an id (even after the newest row is deleted); PostgreSQL's identity
  // column is the standard equivalent of `serial`. Neither syntax exists on the other engine.
  const postgres = isPostgres(db);
  await db.schema
    .createTable('room_events')
    .addColumn('id', postgres ? 'bigint' : 'integer', (c) =>
      postgres ? c.primaryKey().generatedAlwaysAsIdentity() : c.primaryKey().autoIncrement(),
    )
    .addColumn('room_code', 'text', (c) => c.notNull().references('rooms.code').onDelete('cascade'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('room_events_room_id_idx')
    .on('room_events')
    .columns(['room_code', 'id'])
    .execute();
}

/** Drops what {@link up} created. */
export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['room_events', 'room_players', 'rooms']) {
    await db.schema.dropTable(table).execute();
  }
}
