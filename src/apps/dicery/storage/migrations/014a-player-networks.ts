import type { Kysely } from 'kysely';

/**
 * The client network each player joined from: `room_players.network` (an IPv4 address or an IPv6
 * /48, as `addressBucket(ip, 48)` names it), for `MAX_PLAYERS_PER_ROOM_PER_NETWORK`.
 *
 * Joining needs only the room code, and a player who came back once stays present until their
 * seat expires (30 days, renewed by every resume): anyone with the code could keep a room full
 * from one address, the host's only answer a kick, which is a ban, one at a time (red-team
 * 2026-12g D4). Now one network holds at most its share of a room's players.
 *
 * Players from before it have none (NULL): counted for no network, so an upgrade refuses no one.
 * Only present players need it: it is cleared when a player leaves (or is removed, or expires) and
 * when the room closes; a player who stays present keeps it until then.
 * Nullable, no default: an `ADD COLUMN` that rewrites nothing, on both engines.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('room_players').addColumn('network', 'text').execute();
}

/** Drops the column. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('room_players').dropColumn('network').execute();
}
