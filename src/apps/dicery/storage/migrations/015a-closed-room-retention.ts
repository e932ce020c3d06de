import type { Kysely } from 'kysely';

/**
 * An index for the retention sweep (red-team 2026-12g D6): closed rooms are deleted, with their
 * events, log, players and watch links, `ROOM_CLOSED_RETENTION` after they closed, and the sweep
 * finds them by `(state, closed_at)`. An index only: nothing is rewritten, on both engines.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('rooms_closed_idx').on('rooms').columns(['state', 'closed_at']).execute();
}

/** Drops the index. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('rooms_closed_idx').execute();
}
