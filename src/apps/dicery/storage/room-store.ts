import { type Kysely, PostgresAdapter, type Selectable, sql } from 'kysely';
import { isForeignKeyViolation, isUniqueViolation } from '../../../index.js';
import { createRoomHostStore, type RoomHostStore } from './room-host-store.js';
import { createRoomLogStore, type RoomLogStore } from './room-log-store.js';
import { createSpectatorLinkStore, type SpectatorLinkStore } from './spectator-link-store.js';
import type { DiceryTables, RoomEventsTable, RoomPlayersTable, RoomsTable } from './tables.js';

/** Whether a room still accepts players and rolls. Closing is final. */
export type RoomState = 'open' | 'closed';

/**
 * Why a player is no longer in a room: they left, the host removed them, or their seat expired
 * unused (`ROOM_SEAT_TTL`), which is never shown as a removal.
 */
export type PlayerLeftReason = 'left' | 'kicked' | 'expired';

/** A stored Dicery room. */
export interface RoomRecord {
  /** The join code, already normalized (upper case, unambiguous alphabet). */
  code: string;
  /** Display name chosen by the host, already validated. */
  name: string;
  /** The signed-in user who created the room and alone may kick players or close it. */
  hostUserId: string;
  state: RoomState;
  /** Epoch milliseconds. */
  createdAt: number;
  /** Epoch milliseconds, or null while open. */
  closedAt: number | null;
  /**
   * Sequence number of the room's newest event, 0 before the first. Whoever reads `n` here can
   * read events 1..n of the room (see {@link RoomStore.appendEvent}).
   */
  lastEventSeq: number;
  /** True while the host refuses new players (`ROOM_LOCKED`); present players keep playing. */
  locked: boolean;
  /** Epoch ms of the newest event (or creation): the idle sweeper closes rooms left alone too long. */
  lastActivityAt: number;
}

/** A stored player: an account-less participant of one room. */
export interface PlayerRecord {
  id: string;
  roomCode: string;
  /** Display name, already validated and normalized. */
  name: string;
  /** Case-folded `name`; unique per room among present players. */
  nameKey: string;
  /** Epoch milliseconds. */
  joinedAt: number;
  /** Epoch milliseconds, or null while present. */
  leftAt: number | null;
  /** Why the player is gone, or null while present. */
  leftReason: PlayerLeftReason | null;
  /** When the player's seat expires (epoch ms), or null for a player without a seat (bearer joins). */
  seatExpiresAt: number | null;
  /** Generation of the seat; room tokens minted for an older one are refused. */
  seatGeneration: number;
  /**
   * When the player first used the room after joining (a seat resume or claim, a roll), epoch ms;
   * null while they never have. A seated player who never did is a ghost once the join's room
   * token cannot be alive any more (see `RoomService.joinSeated`).
   */
  firstActiveAt: number | null;
  /**
   * The client network the player joined from (IPv4 address or IPv6 /48), for
   * `MAX_PLAYERS_PER_ROOM_PER_NETWORK`; null for players from before migration 014a.
   */
  network: string | null;
}

/** A row of the room event log, with its payload still serialized. */
export interface StoredRoomEvent {
  /**
   * The event's sequence number within its room: 1, 2, 3… with no gap and no repeat. It is the
   * id clients see (SSE `id:`, `Last-Event-ID`), so it says nothing about other rooms.
   */
  id: number;
  roomCode: string;
  type: string;
  /** JSON text exactly as appended. */
  data: string;
  /** Epoch milliseconds. */
  createdAt: number;
}

/** A room to insert; it starts open. */
export interface NewRoom {
  code: string;
  name: string;
  hostUserId: string;
  /** Epoch milliseconds. */
  createdAt: number;
}

/** A player to insert; it starts present. */
export interface NewPlayer {
  /** Random, unguessable id (it becomes the room token's `sub`). */
  id: string;
  roomCode: string;
  name: string;
  nameKey: string;
  /** Epoch milliseconds. */
  joinedAt: number;
  /** SHA-256 (hex) of the new seat's secret; none for a player without a seat (bearer joins). */
  seatHash?: string | null;
  /** When that seat expires, epoch ms (none without a seat). */
  seatExpiresAt?: number | null;
  /** The client network the player joins from (IPv4 address or IPv6 /48). */
  network?: string | null;
}

/** Result of {@link RoomStore.insertRoom}; `code_taken` means "draw another code and retry". */
export type InsertRoomResult = { ok: true; room: RoomRecord } | { ok: false; reason: 'code_taken' };

/**
 * Result of {@link RoomStore.insertPlayer}. `name_taken`: a present player of the room already
 * has this name key. `room_not_open`: the room does not exist or is closed.
 */
export type InsertPlayerResult =
  | { ok: true; player: PlayerRecord }
  | { ok: false; reason: 'name_taken' | 'room_not_open' };

/**
 * Persistence of Dicery rooms, their players and their event log.
 *
 * Build one over a transaction (`createRoomStore(trx)`) to make a room change and its event one
 * unit of work; inside such a transaction use only that store (on SQLite the transaction holds
 * the only connection, so a query through another store would wait for it forever).
 */
export interface RoomStore extends RoomHostStore {
  /**
   * Inserts an open room; a code already in use is a `code_taken` value, not an exception (and,
   * being `ON CONFLICT DO NOTHING`, it does not abort an enclosing PostgreSQL transaction).
   */
  insertRoom(room: NewRoom): Promise<InsertRoomResult>;
  /** The room with this (normalized) code, open or closed. */
  findRoom(code: string): Promise<RoomRecord | undefined>;
  /**
   * {@link RoomStore.findRoom}, row-locked until the enclosing transaction ends: on PostgreSQL
   * `SELECT … FOR NO KEY UPDATE`, the mode {@link RoomStore.appendEvent}'s UPDATE takes, so a change
   * that appends later never strengthens it (an upgrade can deadlock) and inserts naming the room
   * (their foreign key's `KEY SHARE`) are not held up. On SQLite a plain read: the write transaction
   * (`BEGIN IMMEDIATE`) already shuts every other writer out. Outside a transaction it locks nothing.
   */
  lockRoom(code: string): Promise<RoomRecord | undefined>;
  /**
   * Closes an open room, and deletes its watch links and spectators (useless once it is closed);
   * false when it is unknown or already closed.
   */
  closeRoom(code: string, now: number): Promise<boolean>;
  /** How many rooms the host has open (an index scan over `rooms_host_idx`). */
  countOpenRooms(hostUserId: string): Promise<number>;
  /** Codes of the rooms the host has open (at most `MAX_OPEN_ROOMS_PER_HOST`). */
  listOpenRoomCodes(hostUserId: string): Promise<string[]>;
  /**
   * Inserts a present player, atomically checking that the room is open and that no present
   * player of the room has the same name key (enforced by a unique index, so concurrent joins on
   * any number of instances cannot both win).
   */
  insertPlayer(player: NewPlayer): Promise<InsertPlayerResult>;
  /** The player with this id, present or gone. */
  findPlayer(id: string): Promise<PlayerRecord | undefined>;
  /**
   * Players of a room who have not left, in join order: a range of the `(room_code, present_key)`
   * index, so its cost follows the players present, never those who ever joined.
   */
  listPresentPlayers(code: string): Promise<PlayerRecord[]>;
  /**
   * Marks a present player gone and frees their name; false when unknown or already gone. A
   * pending claim code dies with it; the seat hash is kept after `kicked` (so that browser stays
   * refused) and cleared otherwise (a player who left or expired may join afresh).
   */
  markPlayerGone(id: string, reason: PlayerLeftReason, now: number): Promise<boolean>;
  /** The player of room `code` whose seat hashes to `seatHash`, present or gone. */
  findPlayerBySeat(code: string, seatHash: string): Promise<PlayerRecord | undefined>;
  /** Slides a present player's seat expiry forward; false when the player is gone. */
  renewSeat(id: string, expiresAt: number): Promise<boolean>;
  /**
   * Records a present player's first use of the room after the join (`firstActiveAt`), unless one
   * is recorded already: a player who ever came back is never taken for a ghost.
   */
  markPlayerActive(id: string, now: number): Promise<void>;
  /**
   * Stores the one pending claim code of a present player (replacing any earlier one); false when
   * the player is gone.
   */
  setClaimCode(id: string, claimHash: string, expiresAt: number): Promise<boolean>;
  /** The present player of room `code` whose pending, unexpired claim code hashes to `claimHash`. */
  findPlayerByClaim(code: string, claimHash: string, now: number): Promise<PlayerRecord | undefined>;
  /**
   * Spends a claim code: gives the player a new seat (new hash and expiry, generation + 1) and
   * clears the code, in one conditional UPDATE so that of two concurrent claims only one wins.
   * False when the code was spent, replaced or the player left meanwhile.
   */
  moveSeat(id: string, claimHash: string, seatHash: string, seatExpiresAt: number): Promise<boolean>;
  /**
   * Appends to an open room's event log and returns the row with its sequence number, or
   * undefined when the room is unknown or closed (so nothing can follow `room_closed`).
   *
   * The number comes from `UPDATE rooms SET last_event_seq = last_event_seq + 1 … RETURNING`
   * in the caller's transaction (or a transaction of its own when the store is not bound to one).
   * The UPDATE row-locks the room on PostgreSQL until commit, and SQLite has one writer, so the
   * appends of one room are numbered and committed one at a time: no gap, no duplicate, and
   * number n is never visible before n − 1.
   */
  appendEvent(
    code: string,
    type: string,
    dataJson: string,
    now: number,
  ): Promise<StoredRoomEvent | undefined>;
  /** Up to `limit` events of a room with a sequence number greater than `afterId`, in order. */
  listEventsAfter(code: string, afterId: number, limit: number): Promise<StoredRoomEvent[]>;
  /**
   * Bytes of stored JSON of a room's events numbered after `afterId` up to `uptoId`, summed in the
   * database (`octet_length`, which neither engine needs the values for): what replaying them costs.
   */
  eventBytes(code: string, afterId: number, uptoId: number): Promise<number>;
  /** The `limit` newest events of one type in a room, returned oldest first. */
  listRecentEvents(code: string, type: string, limit: number): Promise<StoredRoomEvent[]>;
  /** Sequence number of the newest event of a room, or 0 when it has none (or is unknown). */
  lastEventId(code: string): Promise<number>;
  /** The roll log and its keys, over the same database handle (the same transaction, if any). */
  readonly log: RoomLogStore;
  /** The room's spectator (watch) links, over the same database handle. */
  readonly spectators: SpectatorLinkStore;
}

function toRoom(row: Selectable<RoomsTable>): RoomRecord {
  return {
    code: row.code,
    name: row.name,
    hostUserId: row.host_user_id,
    state: row.state as RoomState,
    createdAt: Number(row.created_at),
    closedAt: row.closed_at === null ? null : Number(row.closed_at),
    lastEventSeq: Number(row.last_event_seq),
    locked: Number(row.locked) === 1,
    lastActivityAt: Number(row.last_activity_at ?? row.created_at),
  };
}

function toPlayer(row: Selectable<RoomPlayersTable>): PlayerRecord {
  return {
    id: row.id,
    roomCode: row.room_code,
    name: row.name,
    nameKey: row.name_key,
    joinedAt: Number(row.joined_at),
    leftAt: row.left_at === null ? null : Number(row.left_at),
    leftReason: row.left_reason as PlayerLeftReason | null,
    seatExpiresAt: row.seat_expires_at === null ? null : Number(row.seat_expires_at),
    seatGeneration: Number(row.seat_generation),
    firstActiveAt: row.first_active_at === null ? null : Number(row.first_active_at),
    network: row.network ?? null,
  };
}

function toEvent(row: Selectable<RoomEventsTable>): StoredRoomEvent {
  return {
    id: Number(row.seq),
    roomCode: row.room_code,
    type: row.type,
    data: row.data,
    createdAt: Number(row.created_at),
  };
}

/** A {@link RoomStore} over Kysely; the same code serves SQLite and PostgreSQL. */
export function createRoomStore(db: Kysely<DiceryTables>): RoomStore {
  // SQLite has no row locks (nor their syntax); its write transactions exclude each other whole.
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  return {
    ...createRoomHostStore(db),
    log: createRoomLogStore(db),
    spectators: createSpectatorLinkStore(db),
    async insertRoom(room) {
      const record: RoomRecord = {
        ...room,
        state: 'open',
        closedAt: null,
        lastEventSeq: 0,
        locked: false,
        lastActivityAt: room.createdAt,
      };
      // ON CONFLICT DO NOTHING instead of catching the unique violation: on PostgreSQL a failed
      // statement aborts the whole transaction, and this may run inside an app's unit of work.
      const result = await db
        .insertInto('rooms')
        .values({
          code: room.code,
          name: room.name,
          host_user_id: room.hostUserId,
          state: 'open',
          created_at: room.createdAt,
          closed_at: null,
          last_event_seq: 0,
          last_activity_at: room.createdAt,
        })
        .onConflict((oc) => oc.column('code').doNothing())
        .executeTakeFirst();
      if (result.numInsertedOrUpdatedRows === 0n) return { ok: false, reason: 'code_taken' };
      return { ok: true, room: record };
    },
    async findRoom(code) {
      const row = await db.selectFrom('rooms').selectAll().where('code', '=', code).executeTakeFirst();
      return row && toRoom(row);
    },
    async lockRoom(code) {
      const query = db.selectFrom('rooms').selectAll().where('code', '=', code);
      const row = await (postgres ? query.forNoKeyUpdate() : query).executeTakeFirst();
      return row && toRoom(row);
    },
    async closeRoom(code, now) {
      // Conditional UPDATE: of two concurrent closes, only one sees state = 'open'.
      const result = await db
        .updateTable('rooms')
        .set({ state: 'closed', closed_at: now })
        .where('code', '=', code)
        .where('state', '=', 'open')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      // Nothing can use a closed room's watch links or spectators again (both need it open): they
      // go now rather than stay until the room is emptied (ROOM_CLOSED_RETENTION after closing).
      await db.deleteFrom('room_spectator_sessions').where('room_code', '=', code).execute();
      await db.deleteFrom('room_spectator_links').where('room_code', '=', code).execute();
      // The players' client networks counted for the open room only: not kept with the closed one.
      // Only present players still carry one (a leave clears it), and they are a range of the
      // (room_code, present_key) index: over every row the room ever had, anonymous join-and-leave
      // cycles (one row each, kept) made this one statement outrun the statement timeout, and the
      // room could be neither closed nor its host's account deleted (red-team 2026-12h follow-up).
      await db
        .updateTable('room_players')
        .set({ network: null })
        .where('room_code', '=', code)
        .where('present_key', 'is not', null)
        .where('network', 'is not', null)
        .execute();
      return true;
    },
    async listOpenRoomCodes(hostUserId) {
      const rows = await db
        .selectFrom('rooms')
        .select('code')
        .where('host_user_id', '=', hostUserId)
        .where('state', '=', 'open')
        .execute();
      return rows.map((row) => row.code);
    },
    async countOpenRooms(hostUserId) {
      const row = await db
        .selectFrom('rooms')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
        .where('host_user_id', '=', hostUserId)
        .where('state', '=', 'open')
        .executeTakeFirstOrThrow();
      // PostgreSQL returns count(*) as a bigint string; SQLite as a number.
      return Number(row.count);
    },
    async insertPlayer(player) {
      // INSERT … SELECT FROM rooms WHERE open: the room check and the insert are one statement,
      // so a join racing a close cannot add a player to a closed room, and an unknown room is a
      // value rather than a foreign-key error. The casts give PostgreSQL the parameter types it
      // cannot infer inside a SELECT list. A taken name is ON CONFLICT DO NOTHING rather than a
      // caught violation, so it does not abort an enclosing PostgreSQL transaction (SQLite needs
      // the WHERE clause the SELECT has to parse INSERT … SELECT … ON CONFLICT).
      let inserted: bigint | undefined;
      try {
        const result = await db
          .insertInto('room_players')
          .columns([
            'id',
            'room_code',
            'name',
            'name_key',
            'present_key',
            'joined_at',
            'left_at',
            'left_reason',
            'seat_hash',
            'seat_expires_at',
            'network',
          ])
          .expression((eb) =>
            eb
              .selectFrom('rooms')
              .select([
                eb.cast<string>(eb.val(player.id), 'text').as('id'),
                'rooms.code',
                eb.cast<string>(eb.val(player.name), 'text').as('name'),
                eb.cast<string>(eb.val(player.nameKey), 'text').as('name_key'),
                eb.cast<string>(eb.val(player.nameKey), 'text').as('present_key'),
                eb.cast<number>(eb.val(player.joinedAt), 'bigint').as('joined_at'),
                eb.cast<number | null>(eb.lit(null), 'bigint').as('left_at'),
                eb.cast<string | null>(eb.lit(null), 'text').as('left_reason'),
                eb.cast<string | null>(eb.val(player.seatHash ?? null), 'text').as('seat_hash'),
                eb.cast<number | null>(eb.val(player.seatExpiresAt ?? null), 'bigint').as('seat_expires_at'),
                eb.cast<string | null>(eb.val(player.network ?? null), 'text').as('network'),
              ])
              .where('rooms.code', '=', player.roomCode)
              .where('rooms.state', '=', 'open'),
          )
          .onConflict((oc) => oc.columns(['room_code', 'present_key']).doNothing())
          .executeTakeFirst();
        inserted = result.numInsertedOrUpdatedRows;
      } catch (error) {
        // Player ids are random UUIDs, so the only unique index a join can realistically hit is
        // (room_code, present_key).
        if (isUniqueViolation(error)) return { ok: false, reason: 'name_taken' };
        // PostgreSQL: the room was open when the SELECT read it, and its host's account deletion
        // (rooms cascade from it) committed while the insert's key check waited on it.
        if (isForeignKeyViolation(error)) return { ok: false, reason: 'room_not_open' };
        throw error;
      }
      if (inserted === undefined || inserted === 0n) {
        const room = await db
          .selectFrom('rooms')
          .select('state')
          .where('code', '=', player.roomCode)
          .executeTakeFirst();
        return { ok: false, reason: room?.state === 'open' ? 'name_taken' : 'room_not_open' };
      }
      const { id, roomCode, name, nameKey, joinedAt } = player;
      return {
        ok: true,
        player: {
          id,
          roomCode,
          name,
          nameKey,
          joinedAt,
          leftAt: null,
          leftReason: null,
          seatExpiresAt: player.seatExpiresAt ?? null,
          seatGeneration: 0,
          firstActiveAt: null,
          network: player.network ?? null,
        },
      };
    },
    async findPlayer(id) {
      const row = await db.selectFrom('room_players').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toPlayer(row);
    },
    async listPresentPlayers(code) {
      // By present_key, not left_at (the same rows: the presence check of migrations 005 and 007
      // holds `present_key is null` exactly when `left_at` is set). Departed players' rows stay
      // (bans and the log name them), so `room_code` alone, then `left_at`, read every player the
      // room ever had; `(room_code, present_key)` (the unique name index) reaches the present ones
      // only: at most MAX_PLAYERS_PER_ROOM, however many came and went.
      const rows = await db
        .selectFrom('room_players')
        .selectAll()
        .where('room_code', '=', code)
        .where('present_key', 'is not', null)
        .orderBy('joined_at')
        .orderBy('id')
        .execute();
      return rows.map(toPlayer);
    },
    async markPlayerGone(id, reason, now) {
      // Clearing present_key in the same UPDATE frees the name for the next join at once.
      const result = await db
        .updateTable('room_players')
        .set({
          left_at: now,
          left_reason: reason,
          present_key: null,
          claim_hash: null,
          claim_expires_at: null,
          // Only present players count per network: a client address is not kept past its use.
          network: null,
          ...(reason === 'kicked' ? {} : { seat_hash: null, seat_expires_at: null }),
        })
        .where('id', '=', id)
        .where('left_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async findPlayerBySeat(code, seatHash) {
      const row = await db
        .selectFrom('room_players')
        .selectAll()
        .where('seat_hash', '=', seatHash)
        .where('room_code', '=', code)
        .executeTakeFirst();
      return row && toPlayer(row);
    },
    async renewSeat(id, expiresAt) {
      const result = await db
        .updateTable('room_players')
        .set({ seat_expires_at: expiresAt })
        .where('id', '=', id)
        .where('left_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async markPlayerActive(id, now) {
      await db
        .updateTable('room_players')
        .set({ first_active_at: now })
        .where('id', '=', id)
        .where('first_active_at', 'is', null)
        .where('left_at', 'is', null)
        .execute();
    },
    async setClaimCode(id, claimHash, expiresAt) {
      const result = await db
        .updateTable('room_players')
        .set({ claim_hash: claimHash, claim_expires_at: expiresAt })
        .where('id', '=', id)
        .where('left_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async findPlayerByClaim(code, claimHash, now) {
      const row = await db
        .selectFrom('room_players')
        .selectAll()
        .where('room_code', '=', code)
        .where('claim_hash', '=', claimHash)
        .where('claim_expires_at', '>', now)
        .where('left_at', 'is', null)
        .executeTakeFirst();
      return row && toPlayer(row);
    },
    async moveSeat(id, claimHash, seatHash, seatExpiresAt) {
      const result = await db
        .updateTable('room_players')
        .set((eb) => ({
          seat_hash: seatHash,
          seat_expires_at: seatExpiresAt,
          seat_generation: eb('seat_generation', '+', 1),
          claim_hash: null,
          claim_expires_at: null,
        }))
        .where('id', '=', id)
        .where('claim_hash', '=', claimHash)
        .where('left_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    appendEvent(code, type, dataJson, now) {
      const append = async (trx: Kysely<DiceryTables>): Promise<StoredRoomEvent | undefined> => {
        // The row lock this UPDATE takes (PostgreSQL) is what orders the room's appends; it is
        // held until the enclosing transaction ends, so commit order is sequence order.
        const room = await trx
          .updateTable('rooms')
          // The room's activity moves with its events: the idle sweeper reads it (migration 008a).
          .set((eb) => ({ last_event_seq: eb('last_event_seq', '+', 1), last_activity_at: now }))
          .where('code', '=', code)
          .where('state', '=', 'open')
          .returning('last_event_seq')
          .executeTakeFirst();
        if (room === undefined) return undefined;
        const seq = Number(room.last_event_seq);
        await trx
          .insertInto('room_events')
          .values({ room_code: code, seq, type, data: dataJson, created_at: now })
          .execute();
        return { id: seq, roomCode: code, type, data: dataJson, createdAt: now };
      };
      // The UPDATE and the INSERT must commit together, or a crash between them leaves a
      // number with no event: a gap that streams would wait on forever.
      return db.isTransaction ? append(db) : db.transaction().execute(append);
    },
    async listEventsAfter(code, afterId, limit) {
      const rows = await db
        .selectFrom('room_events')
        .selectAll()
        .where('room_code', '=', code)
        .where('seq', '>', afterId)
        .orderBy('seq')
        .limit(limit)
        .execute();
      return rows.map(toEvent);
    },
    async eventBytes(code, afterId, uptoId) {
      const row = await db
        .selectFrom('room_events')
        .select(sql<number | string | null>`sum(octet_length(data))`.as('bytes'))
        .where('room_code', '=', code)
        .where('seq', '>', afterId)
        .where('seq', '<=', uptoId)
        .executeTakeFirst();
      // PostgreSQL sums to a bigint (a string); null over no rows.
      return Number(row?.bytes ?? 0);
    },
    async listRecentEvents(code, type, limit) {
      const rows = await db
        .selectFrom('room_events')
        .selectAll()
        .where('room_code', '=', code)
        .where('type', '=', type)
        .orderBy('seq', 'desc')
        .limit(limit)
        .execute();
      return rows.map(toEvent).reverse();
    },
    async lastEventId(code) {
      const row = await db
        .selectFrom('rooms')
        .select('last_event_seq')
        .where('code', '=', code)
        .executeTakeFirst();
      return row === undefined ? 0 : Number(row.last_event_seq);
    },
  };
}
