import { type Kysely, sql } from 'kysely';

/**
 * When a player first used the room after joining (red-team: one anonymous script filled a room
 * for `ROOM_SEAT_TTL`): `room_players.first_active_at`, epoch ms, NULL while they never have.
 *
 * A join with the cookie transport gives its player a seat valid 30 days, and a full room used to
 * free only a seat past its expiry: 100 joins whose cookies were thrown away kept a room full for a
 * month. Now a seated player who never came back (no seat resume or claim, no roll) is a ghost once
 * the join's room token can no longer be alive (`ROOM_TOKEN_MAX_TTL`), as a bearer player is; set
 * once, by the first such use, it is never cleared.
 *
 * Players present before this migration count as having come back (`first_active_at =
 * joined_at`): nothing tells whether they did, and a real player must never be displaced by an
 * upgrade. Nullable, no default: an `ADD COLUMN` that rewrites nothing, on both engines.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('room_players').addColumn('first_active_at', 'bigint').execute();
  await sql`update room_players set first_active_at = joined_at where left_at is null`.execute(db);
}

/** Drops the column. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('room_players').dropColumn('first_active_at').execute();
}
