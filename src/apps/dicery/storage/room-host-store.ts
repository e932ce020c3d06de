import type { Kysely, Selectable } from 'kysely';
import type { DiceryTables, RoomBansTable } from './tables.js';

/** A ban of a room: nobody joins under `name` again, and the kicked player's browser stays refused. */
export interface RoomBanRecord {
  id: string;
  roomCode: string;
  name: string;
  nameKey: string;
  /** The kicked player whose seat stays refused, or null for a ban without a seat. */
  playerId: string | null;
  /** Epoch ms. */
  createdAt: number;
}

/** A hosted room as the host's list shows it. */
export interface HostedRoomRow {
  code: string;
  name: string;
  state: 'open' | 'closed';
  locked: boolean;
  createdAt: number;
  closedAt: number | null;
  lastActivityAt: number;
}

/**
 * Storage of the host tools (issue 14, item 3): bans, lock, rename, host hand-over, the host's
 * room list and the idle sweep. Part of every `RoomStore`, so it joins the same unit of work.
 */
export interface RoomHostStore {
  /** Inserts a ban unless the name is already banned in the room (then false). */
  insertBan(ban: RoomBanRecord): Promise<boolean>;
  /** The ban of `nameKey` in room `code`, if any. */
  findBan(code: string, nameKey: string): Promise<RoomBanRecord | undefined>;
  /** How many bans room `code` holds. */
  countBans(code: string): Promise<number>;
  /** A page of the room's bans, newest first. */
  listBans(code: string, limit: number, offset: number): Promise<RoomBanRecord[]>;
  /**
   * Deletes a ban and forgets the banned player's seat hash (so that browser may join afresh);
   * the removed ban, or undefined when room `code` has no ban `id`.
   */
  deleteBan(code: string, id: string): Promise<RoomBanRecord | undefined>;
  /** Sets an open room's lock and name; false when it is unknown or closed. */
  updateRoom(code: string, changes: { locked?: boolean; name?: string }): Promise<boolean>;
  /** Stores the room's one pending hand-over code (replacing any earlier one). */
  setTransferCode(code: string, transferHash: string, expiresAt: number): Promise<boolean>;
  /**
   * Makes `newHostUserId` the host of open room `code` if `transferHash` is its pending,
   * unexpired code, and spends the code, in one conditional UPDATE (single use under races).
   */
  takeOverRoom(code: string, transferHash: string, newHostUserId: string, now: number): Promise<boolean>;
  /** A page of the rooms `hostUserId` hosts (open and closed), newest first. */
  listHostedRooms(hostUserId: string, limit: number, offset: number): Promise<HostedRoomRow[]>;
  /** How many rooms `hostUserId` hosts (open and closed). */
  countHostedRooms(hostUserId: string): Promise<number>;
  /** Codes of at most `limit` open rooms whose last activity is older than `before` (epoch ms). */
  listIdleRooms(before: number, limit: number): Promise<string[]>;
  /**
   * Codes of at most `limit` rooms closed before `before` (epoch ms) and not yet emptied, the
   * oldest first.
   */
  listClosedRooms(before: number, limit: number): Promise<string[]>;
  /**
   * Codes of the rooms `hostUserId` hosts that are not emptied yet (`purged_at` null), open or
   * closed (`rooms_host_idx`).
   */
  listHostedRoomCodes(hostUserId: string): Promise<string[]>;
  /**
   * The lowest sequence number among room `code`'s events and log entries, or undefined when it
   * has none: where {@link deleteRoomEventRange}'s ranges start, so a room emptied up to there is
   * not walked again from 1.
   */
  firstEventSeq(code: string): Promise<number | undefined>;
  /**
   * Deletes room `code`'s events and log entries numbered after `afterSeq` up to `upToSeq`: a range
   * of their `(room_code, seq)` keys, so a run of these walks the room once. (A `LIMIT` over what
   * is left instead re-reads, inside one transaction, every row the earlier statements deleted.)
   * Returns the rows deleted.
   */
  deleteRoomEventRange(code: string, afterSeq: number, upToSeq: number): Promise<number>;
  /** Deletes room `code`'s row; what it still holds goes with it (foreign keys, `on delete cascade`). */
  deleteRoom(code: string): Promise<boolean>;
  /**
   * Deletes the rows of at most `limit` emptied rooms (`purged_at` set) that `hostUserId` hosts;
   * returns how many. A host's account deletion runs it until none is left: left to the account
   * row's cascade, 200 000 of them outran PostgreSQL's statement timeout (each row fires the
   * cascade's checks of seven tables), so the account could never be deleted.
   */
  deleteEmptiedHostedRooms(hostUserId: string, limit: number): Promise<number>;
  /**
   * Deletes up to `maxRows` of closed room `code`'s rows (log entries, events, bans, players,
   * watch links and spectators), each table in statements of its own; once none is left, marks the
   * room emptied (`purged_at`). Its row stays, so the code is never reused. `done` is true when the
   * room is emptied (or is not a closed room). Rows another instance deletes at the same time
   * are never taken for "none left": emptiness is read before the mark.
   */
  purgeClosedRoom(code: string, maxRows: number, now: number): Promise<{ deleted: number; done: boolean }>;
}

/** What a room holds besides its own row, with each table's key for chunked deletes. */
const PURGED_TABLES = [
  { table: 'room_log_entries', key: 'seq' },
  { table: 'room_events', key: 'seq' },
  { table: 'room_bans', key: 'id' },
  { table: 'room_spectator_sessions', key: 'id' },
  { table: 'room_spectator_links', key: 'id' },
  { table: 'room_players', key: 'id' },
] as const;

function toBan(row: Selectable<RoomBansTable>): RoomBanRecord {
  return {
    id: row.id,
    roomCode: row.room_code,
    name: row.name,
    nameKey: row.name_key,
    playerId: row.player_id,
    createdAt: Number(row.created_at),
  };
}

/** PostgreSQL returns count(*) as a bigint string; SQLite as a number. */
const countOf = (row: { count: number | string | bigint }) => Number(row.count);

/** A {@link RoomHostStore} over Kysely (SQLite and PostgreSQL alike). */
export function createRoomHostStore(db: Kysely<DiceryTables>): RoomHostStore {
  return {
    async insertBan(ban) {
      // ON CONFLICT DO NOTHING, not a caught violation: it must not abort an enclosing PostgreSQL transaction.
      const result = await db
        .insertInto('room_bans')
        .values({
          id: ban.id,
          room_code: ban.roomCode,
          name: ban.name,
          name_key: ban.nameKey,
          player_id: ban.playerId,
          created_at: ban.createdAt,
        })
        .onConflict((oc) => oc.columns(['room_code', 'name_key']).doNothing())
        .executeTakeFirst();
      return result.numInsertedOrUpdatedRows !== 0n;
    },
    async findBan(code, nameKey) {
      const row = await db
        .selectFrom('room_bans')
        .selectAll()
        .where('room_code', '=', code)
        .where('name_key', '=', nameKey)
        .executeTakeFirst();
      return row && toBan(row);
    },
    async countBans(code) {
      const row = await db
        .selectFrom('room_bans')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
        .where('room_code', '=', code)
        .executeTakeFirstOrThrow();
      return countOf(row);
    },
    async listBans(code, limit, offset) {
      const rows = await db
        .selectFrom('room_bans')
        .selectAll()
        .where('room_code', '=', code)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(limit)
        .offset(offset)
        .execute();
      return rows.map(toBan);
    },
    async deleteBan(code, id) {
      const row = await db
        .selectFrom('room_bans')
        .selectAll()
        .where('room_code', '=', code)
        .where('id', '=', id)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const deleted = await db
        .deleteFrom('room_bans')
        .where('room_code', '=', code)
        .where('id', '=', id)
        .executeTakeFirst();
      // A concurrent lift already removed it: only one of them reports the removal.
      if (Number(deleted.numDeletedRows) === 0) return undefined;
      if (row.player_id !== null) {
        // Only a gone player's seat: the seat of someone present is never touched here.
        await db
          .updateTable('room_players')
          .set({ seat_hash: null, seat_expires_at: null })
          .where('id', '=', row.player_id)
          .where('left_at', 'is not', null)
          .execute();
      }
      return toBan(row);
    },
    async updateRoom(code, changes) {
      const set: { locked?: number; name?: string } = {};
      if (changes.locked !== undefined) set.locked = changes.locked ? 1 : 0;
      if (changes.name !== undefined) set.name = changes.name;
      if (Object.keys(set).length === 0) return true;
      const result = await db
        .updateTable('rooms')
        .set(set)
        .where('code', '=', code)
        .where('state', '=', 'open')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async setTransferCode(code, transferHash, expiresAt) {
      const result = await db
        .updateTable('rooms')
        .set({ transfer_hash: transferHash, transfer_expires_at: expiresAt })
        .where('code', '=', code)
        .where('state', '=', 'open')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async takeOverRoom(code, transferHash, newHostUserId, now) {
      const result = await db
        .updateTable('rooms')
        .set({ host_user_id: newHostUserId, transfer_hash: null, transfer_expires_at: null })
        .where('code', '=', code)
        .where('state', '=', 'open')
        .where('transfer_hash', '=', transferHash)
        .where('transfer_expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async listHostedRooms(hostUserId, limit, offset) {
      const rows = await db
        .selectFrom('rooms')
        .select(['code', 'name', 'state', 'locked', 'created_at', 'closed_at', 'last_activity_at'])
        .where('host_user_id', '=', hostUserId)
        .orderBy('created_at', 'desc')
        .orderBy('code')
        .limit(limit)
        .offset(offset)
        .execute();
      return rows.map((row) => ({
        code: row.code,
        name: row.name,
        state: row.state === 'open' ? 'open' : 'closed',
        locked: Number(row.locked) === 1,
        createdAt: Number(row.created_at),
        closedAt: row.closed_at === null ? null : Number(row.closed_at),
        lastActivityAt: Number(row.last_activity_at ?? row.created_at),
      }));
    },
    async countHostedRooms(hostUserId) {
      const row = await db
        .selectFrom('rooms')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
        .where('host_user_id', '=', hostUserId)
        .executeTakeFirstOrThrow();
      return countOf(row);
    },
    async listHostedRoomCodes(hostUserId) {
      const rows = await db
        .selectFrom('rooms')
        .select('code')
        .where('host_user_id', '=', hostUserId)
        .where('purged_at', 'is', null)
        .execute();
      return rows.map((row) => row.code);
    },
    async firstEventSeq(code) {
      let first: number | undefined;
      for (const table of ['room_log_entries', 'room_events'] as const) {
        // Ordered and limited rather than min(): one step into the (room_code, seq) index on both engines.
        const row = await db
          .selectFrom(table)
          .select('seq')
          .where('room_code', '=', code)
          .orderBy('seq')
          .limit(1)
          .executeTakeFirst();
        if (row !== undefined && (first === undefined || Number(row.seq) < first)) first = Number(row.seq);
      }
      return first;
    },
    async deleteRoomEventRange(code, afterSeq, upToSeq) {
      let deleted = 0;
      for (const table of ['room_log_entries', 'room_events'] as const) {
        const result = await db
          .deleteFrom(table)
          .where('room_code', '=', code)
          .where('seq', '>', afterSeq)
          .where('seq', '<=', upToSeq)
          .executeTakeFirst();
        deleted += Number(result.numDeletedRows);
      }
      return deleted;
    },
    async deleteRoom(code) {
      const result = await db.deleteFrom('rooms').where('code', '=', code).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async deleteEmptiedHostedRooms(hostUserId, limit) {
      const result = await db
        .deleteFrom('rooms')
        .where('code', 'in', (eb) =>
          eb
            .selectFrom('rooms')
            .select('code')
            .where('host_user_id', '=', hostUserId)
            .where('purged_at', 'is not', null)
            .limit(limit),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
    async listClosedRooms(before, limit) {
      const rows = await db
        .selectFrom('rooms')
        .select('code')
        .where('state', '=', 'closed')
        .where('purged_at', 'is', null)
        .where('closed_at', '<', before)
        // purged_at is null throughout: ordered by it too so PostgreSQL reads the index in order
        // (it does not take `IS NULL` for an equality when ordering) instead of sorting the backlog.
        .orderBy('purged_at')
        .orderBy('closed_at')
        .limit(limit)
        .execute();
      return rows.map((row) => row.code);
    },
    async purgeClosedRoom(code, maxRows, now) {
      const room = await db
        .selectFrom('rooms')
        .select(['state', 'purged_at'])
        .where('code', '=', code)
        .executeTakeFirst();
      // Only a closed room: one is never opened again, and its code is never reused (the row stays).
      if (room === undefined || room.state !== 'closed' || room.purged_at != null) {
        return { deleted: 0, done: true };
      }
      let deleted = 0;
      // Log entries name no player by key and spectators their link: any order works, this one
      // takes the large tables first.
      for (const { table, key } of PURGED_TABLES) {
        const left = maxRows - deleted;
        if (left <= 0) return { deleted, done: false };
        const result = await db
          .deleteFrom(table)
          .where('room_code', '=', code)
          .where(key, 'in', (eb) =>
            eb.selectFrom(table).select(key).where('room_code', '=', code).orderBy(key).limit(left),
          )
          .executeTakeFirst();
        deleted += Number(result.numDeletedRows);
      }
      if (deleted >= maxRows) return { deleted, done: false };
      // Read, not inferred from the counts: another instance's delete of the same rows, still
      // uncommitted (then perhaps rolled back), counts as none here.
      for (const { table } of PURGED_TABLES) {
        const any = await db
          .selectFrom(table)
          .select('room_code')
          .where('room_code', '=', code)
          .limit(1)
          .execute();
        if (any.length > 0) return { deleted, done: false };
      }
      await db
        .updateTable('rooms')
        .set({ purged_at: now })
        .where('code', '=', code)
        .where('state', '=', 'closed')
        .execute();
      return { deleted, done: true };
    },
    async listIdleRooms(before, limit) {
      const rows = await db
        .selectFrom('rooms')
        .select('code')
        .where('state', '=', 'open')
        .where('last_activity_at', '<', before)
        .orderBy('last_activity_at')
        .limit(limit)
        .execute();
      return rows.map((row) => row.code);
    },
  };
}
