import type { Kysely } from 'kysely';

/**
 * The client network each spectator exchanged the watch link from: `room_spectator_sessions.network`
 * (an IPv4 address or an IPv6 /48, as `addressBucket(ip, 48)` names it).
 *
 * A link holds at most `MAX_SPECTATORS_PER_WATCH_LINK` spectators, and opening it beyond used to
 * end the oldest, whoever they were: anyone holding a shared link could end every other viewer
 * with a hundred exchanges (red-team 2026-12g D5). Now the exchange ends the oldest spectator of
 * the network holding the most, so a holder of the link ends their own spectators first.
 *
 * Rows from before it have none (NULL): counted together as one network, the first to give way.
 * Nullable, no default: an `ADD COLUMN` that rewrites nothing, on both engines.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('room_spectator_sessions').addColumn('network', 'text').execute();
}

/** Drops the column. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('room_spectator_sessions').dropColumn('network').execute();
}
