import type { Kysely } from 'kysely';
import type { DiceryTables } from './tables.js';

/** A live spectator (watch) link of a room; its secret is never stored, only its hash. */
export interface SpectatorLinkRecord {
  id: string;
  roomCode: string;
  /** Epoch ms. */
  createdAt: number;
}

/**
 * Storage of spectator links (issue 14, item 8). Part of every `RoomStore` (as `spectators`), so
 * it joins the same unit of work.
 */
export interface SpectatorLinkStore {
  /** Inserts a link with the SHA-256 (hex) of its secret. */
  insertLink(link: SpectatorLinkRecord & { tokenHash: string }): Promise<void>;
  /** How many live links room `code` has. */
  countLinks(code: string): Promise<number>;
  /** A page of the room's live links, newest first. */
  listLinks(code: string, limit: number, offset: number): Promise<SpectatorLinkRecord[]>;
  /** Ids of all live links of room `code` (at most `MAX_SPECTATOR_LINKS_PER_ROOM`). */
  listLinkIds(code: string): Promise<string[]>;
  /** The live link of room `code` whose secret hashes to `tokenHash`. */
  findLinkByHash(code: string, tokenHash: string): Promise<SpectatorLinkRecord | undefined>;
  /** Deletes link `id` of room `code`; false when the room has no such link (any more). */
  deleteLink(code: string, id: string): Promise<boolean>;
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
      const result = await db
        .deleteFrom('room_spectator_links')
        .where('room_code', '=', code)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
  };
}
