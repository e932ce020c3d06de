import { type Kysely, sql } from 'kysely';
import type { DiceryTables } from './tables.js';

/** A live spectator (watch) link of a room; its secret is never stored, only its hash. */
export interface SpectatorLinkRecord {
  id: string;
  roomCode: string;
  /** Epoch ms. */
  createdAt: number;
}

/** A spectator of a watch link (one exchange of it); their secret is never stored, only its hash. */
export interface SpectatorSessionRecord {
  id: string;
  linkId: string;
  roomCode: string;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms; the session counts for nothing from then on. */
  expiresAt: number;
}

/**
 * Storage of spectator links (issue 14, item 8) and of their spectators (migration 011a). Part of
 * every `RoomStore` (as `spectators`), so it joins the same unit of work.
 */
export interface SpectatorLinkStore {
  /** Inserts a link with the SHA-256 (hex) of its secret. */
  insertLink(link: SpectatorLinkRecord & { tokenHash: string }): Promise<void>;
  /** How many live links room `code` has. */
  countLinks(code: string): Promise<number>;
  /** A page of the room's live links, newest first. */
  listLinks(code: string, limit: number, offset: number): Promise<SpectatorLinkRecord[]>;
  /** Ids of all live links of room `code` (at most `MAX_WATCH_LINKS_PER_ROOM`). */
  listLinkIds(code: string): Promise<string[]>;
  /** The live link of room `code` whose secret hashes to `tokenHash`. */
  findLinkByHash(code: string, tokenHash: string): Promise<SpectatorLinkRecord | undefined>;
  /** Deletes link `id` of room `code`, and its spectators; false when the room has no such link (any more). */
  deleteLink(code: string, id: string): Promise<boolean>;
  /**
   * Records that link `id` of room `code` was opened at `now`; false when it is gone (revoked).
   * Inside a transaction, the UPDATE holds the link's row lock (PostgreSQL) until it ends, so the
   * spectators of one link are added and trimmed one exchange at a time.
   */
  touchLink(code: string, id: string, now: number): Promise<boolean>;
  /**
   * Inserts a spectator with the SHA-256 (hex) of their secret and the client network it was
   * opened from (IPv4 address or IPv6 /48).
   */
  insertSession(session: SpectatorSessionRecord & { tokenHash: string; network: string }): Promise<void>;
  /**
   * Deletes link `linkId`'s expired spectators, then, while more than `keep` are left, the oldest
   * spectator of the network holding the most: the requester's (the network opening the link now,
   * whose new spectator is `sessionId`) when it holds as many as any and another besides the new
   * one, else the one whose oldest is oldest among the largest. The requester's new spectator goes
   * last of its network. Returns how many went. Call it under the link's lock
   * ({@link SpectatorLinkStore.touchLink}).
   */
  trimSessions(
    linkId: string,
    keep: number,
    now: number,
    requester?: { network: string; sessionId: string },
  ): Promise<number>;
  /** The unexpired spectator of room `code` whose secret hashes to `tokenHash`, if their link is live. */
  findSessionByHash(
    code: string,
    tokenHash: string,
    now: number,
  ): Promise<SpectatorSessionRecord | undefined>;
  /** Deletes the spectator of room `code` whose secret hashes to `tokenHash`; false when there was none. */
  deleteSessionByHash(code: string, tokenHash: string): Promise<boolean>;
  /** Which of `ids` are unexpired spectators of room `code` (stream re-checks ask about their own only). */
  liveSessionIds(code: string, ids: readonly string[], now: number): Promise<string[]>;
}

/** PostgreSQL returns count(*) as a bigint string; SQLite as a number. */
const countOf = (row: { count: number | string | bigint }) => Number(row.count);

const toLink = (row: {
  id: string;
  room_code: string;
  created_at: number | string;
}): SpectatorLinkRecord => ({
  id: row.id,
  roomCode: row.room_code,
  createdAt: Number(row.created_at),
});

/** A {@link SpectatorLinkStore} over Kysely (SQLite and PostgreSQL alike). */
export function createSpectatorLinkStore(db: Kysely<DiceryTables>): SpectatorLinkStore {
  return {
    async insertLink(link) {
      await db
        .insertInto('room_spectator_links')
        .values({
          id: link.id,
          room_code: link.roomCode,
          token_hash: link.tokenHash,
          created_at: link.createdAt,
        })
        .execute();
    },
    async countLinks(code) {
      const row = await db
        .selectFrom('room_spectator_links')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
        .where('room_code', '=', code)
        .executeTakeFirstOrThrow();
      return countOf(row);
    },
    async listLinks(code, limit, offset) {
      const rows = await db
        .selectFrom('room_spectator_links')
        .select(['id', 'room_code', 'created_at'])
        .where('room_code', '=', code)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(limit)
        .offset(offset)
        .execute();
      return rows.map(toLink);
    },
    async listLinkIds(code) {
      const rows = await db
        .selectFrom('room_spectator_links')
        .select('id')
        .where('room_code', '=', code)
        .execute();
      return rows.map((row) => row.id);
    },
    async findLinkByHash(code, tokenHash) {
      const row = await db
        .selectFrom('room_spectator_links')
        .select(['id', 'room_code', 'created_at'])
        .where('token_hash', '=', tokenHash)
        .where('room_code', '=', code)
        .executeTakeFirst();
      return row && toLink(row);
    },
    async deleteLink(code, id) {
      // The foreign key cascades too; deleting them here first does not depend on it.
      await db
        .deleteFrom('room_spectator_sessions')
        .where('room_code', '=', code)
        .where('link_id', '=', id)
        .execute();
      const result = await db
        .deleteFrom('room_spectator_links')
        .where('room_code', '=', code)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async touchLink(code, id, now) {
      const result = await db
        .updateTable('room_spectator_links')
        .set({ last_opened_at: now })
        .where('room_code', '=', code)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async insertSession(session) {
      await db
        .insertInto('room_spectator_sessions')
        .values({
          id: session.id,
          link_id: session.linkId,
          room_code: session.roomCode,
          token_hash: session.tokenHash,
          created_at: session.createdAt,
          expires_at: session.expiresAt,
          network: session.network,
        })
        .execute();
    },
    async trimSessions(linkId, keep, now, requester) {
      const expired = await db
        .deleteFrom('room_spectator_sessions')
        .where('link_id', '=', linkId)
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      const { count } = await db
        .selectFrom('room_spectator_sessions')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
        .where('link_id', '=', linkId)
        .executeTakeFirstOrThrow();
      // One over the cap when every exchange trims under the link's lock; more only when an
      // operator lowered the cap (then at most 1000 per exchange, as a batch).
      const extra = Math.min(Number(count) - keep, 1000);
      // Rows from before migration 013a have no network: together, as one.
      const network = sql<string>`coalesce(network, '')`;
      const spectatorsOf = async (of: string) =>
        Number(
          (
            await db
              .selectFrom('room_spectator_sessions')
              .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
              .where('link_id', '=', linkId)
              .where(network, '=', of)
              .executeTakeFirstOrThrow()
          ).count,
        );
      for (let i = 0; i < extra; i++) {
        // The network holding the most gives way first, its oldest spectator: someone opening a
        // shared link again and again ends their own spectators, not the rest of the audience
        // (red-team 2026-12g D5). Ties: the network whose oldest spectator is oldest.
        const largest = await db
          .selectFrom('room_spectator_sessions')
          .select(network.as('network'))
          .where('link_id', '=', linkId)
          .groupBy(network)
          .orderBy((eb) => eb.fn.countAll(), 'desc')
          .orderBy((eb) => eb.fn.min('created_at'), 'asc')
          .limit(1)
          .executeTakeFirst();
        if (largest === undefined) break;
        // A tie with the requester's network is the requester's loss when it has an older
        // spectator to give: opening the link again ends its own. A network opening it for the
        // first time into a full link of single viewers ends the oldest of them (a link is shared
        // with an audience that comes and goes, and its rows outlive closed tabs by 30 days).
        let victim = largest.network;
        if (requester !== undefined && requester.network !== largest.network) {
          const mine = await spectatorsOf(requester.network);
          if (mine >= 2 && mine >= (await spectatorsOf(largest.network))) victim = requester.network;
        }
        // Several spectators opened in one millisecond tie on created_at: the new one never goes
        // before an older one of its network.
        const newest = sql<number>`case when id = ${requester?.sessionId ?? ''} then 1 else 0 end`;
        const oldest = await db
          .selectFrom('room_spectator_sessions')
          .select('id')
          .where('link_id', '=', linkId)
          .where(network, '=', victim)
          .orderBy(newest)
          .orderBy('created_at')
          .orderBy('id')
          .limit(1)
          .executeTakeFirst();
        if (oldest === undefined) break;
        await db.deleteFrom('room_spectator_sessions').where('id', '=', oldest.id).execute();
      }
      return Number(expired.numDeletedRows) + Math.max(extra, 0);
    },
    async findSessionByHash(code, tokenHash, now) {
      const row = await db
        .selectFrom('room_spectator_sessions')
        .select(['id', 'link_id', 'room_code', 'created_at', 'expires_at'])
        .where('token_hash', '=', tokenHash)
        .where('room_code', '=', code)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return (
        row && {
          id: row.id,
          linkId: row.link_id,
          roomCode: row.room_code,
          createdAt: Number(row.created_at),
          expiresAt: Number(row.expires_at),
        }
      );
    },
    async deleteSessionByHash(code, tokenHash) {
      const result = await db
        .deleteFrom('room_spectator_sessions')
        .where('token_hash', '=', tokenHash)
        .where('room_code', '=', code)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async liveSessionIds(code, ids, now) {
      if (ids.length === 0) return [];
      const rows = await db
        .selectFrom('room_spectator_sessions')
        .select('id')
        .where('room_code', '=', code)
        .where('id', 'in', [...ids])
        .where('expires_at', '>', now)
        .execute();
      return rows.map((row) => row.id);
    },
  };
}
