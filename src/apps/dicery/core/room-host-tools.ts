import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { GatehouseError, isDatabaseUnavailable } from '../../../index.js';
import { normalizeClaimCode } from '../shared/claim-code.js';
import { ROOM_NAME_MAX_LENGTH } from '../shared/limits.js';
import type { HostedRoomRow, RoomBanRecord } from '../storage/room-host-store.js';
import type { RoomRecord, RoomStore } from '../storage/room-store.js';
import { type DiceryErrorCode, roomNotFound, transferCodeInvalid } from './errors.js';
import { normalizeDisplayText } from './player-name.js';
import { findOpenRoom, lockOpenRoom, openRoomRefusal, type RoomChange } from './room-change.js';
import { textError } from './room-service.js';
import { generateClaimCode, hashSecret } from './seat-secrets.js';

/** Rooms the idle sweeper closes per pass at most: one pass is a bounded amount of work. */
export const IDLE_SWEEP_BATCH = 100;

/**
 * Rows (log entries, events, players…) the retention sweep deletes per pass at most, in statements
 * of {@link PURGE_CHUNK_ROWS}: a room of a million rolls goes over several passes, none holding a
 * lock, a transaction or the database for long.
 */
export const PURGE_ROWS_PER_PASS = 50_000;

/** Rows one delete statement of the retention sweep removes at most. */
export const PURGE_CHUNK_ROWS = 2_000;

/** Passes in a row that find another instance deleting a room's rows before it is left to it. */
const PURGE_PATIENCE = 5;

/** The wait between two passes that found a room's rows held by another instance. */
const PURGE_PATIENCE_MS = 50;

/**
 * Empties every room `hostUserId` hosts that is closed and not emptied yet, as the retention sweep
 * empties one ({@link RoomStore.purgeClosedRoom}: statements of {@link PURGE_CHUNK_ROWS} rows, each
 * committing alone, the event loop running between them), then deletes the emptied rooms' own
 * rows, {@link PURGE_CHUNK_ROWS} a statement. A host's account deletion runs it before its
 * transaction (`onAccountDeletionPreparing`), once the rooms are closed: inside that one
 * transaction a host with a million rolls held SQLite's only connection, and so every request
 * needing the database, for its whole length (an outside tester measured 30 s for 2.4 million
 * rows, then a 9 s checkpoint at its commit). A room whose rows another instance's sweep is
 * deleting is waited for a few passes, then left to it and to {@link emptyHostedRooms}. Returns
 * the rows deleted (events, log entries, players… and rooms).
 */
export async function purgeHostedRooms(
  store: RoomStore,
  hostUserId: string,
  clock: () => number,
): Promise<number> {
  let deleted = 0;
  for (const code of await store.listHostedRoomCodes(hostUserId)) {
    for (let idle = 0; idle < PURGE_PATIENCE; ) {
      const step = await store.purgeClosedRoom(code, PURGE_CHUNK_ROWS, clock());
      deleted += step.deleted;
      if (step.done) break;
      if (step.deleted === 0) {
        idle += 1;
        await sleep(PURGE_PATIENCE_MS);
      } else {
        idle = 0;
        await nextTurn();
      }
    }
  }
  for (;;) {
    const rooms = await store.deleteEmptiedHostedRooms(hostUserId, PURGE_CHUNK_ROWS);
    deleted += rooms;
    if (rooms < PURGE_CHUNK_ROWS) break;
    await nextTurn();
  }
  return deleted;
}

/**
 * Deletes every room `hostUserId` hosts and has not emptied yet (call it after closing the open
 * ones) through `store`, in statements of at most {@link PURGE_CHUNK_ROWS} events and as many log
 * entries, then each room's row in a statement of its own, then the rows of rooms emptied
 * meanwhile {@link PURGE_CHUNK_ROWS} a statement: the account deletion runs it in its transaction
 * before the account's row goes, for what {@link purgeHostedRooms} left (a room opened, or
 * emptied by another instance's sweep, meanwhile). That row's delete cascaded to the rooms and through
 * them to every event, log entry and player: as one statement, a host with a busy room outran the
 * statement timeout on PostgreSQL (503 on every try: the account could never be deleted) and, on
 * SQLite, stopped the event loop while it ran. Returns the event and log rows deleted.
 *
 * By ranges of sequence numbers from the room's first one left, not "the next 2 000 left": inside
 * one transaction PostgreSQL's index still holds every row the earlier statements deleted, and
 * each "next 2 000" walked over all of them, so a room of 900 000 rows took minutes and its last
 * statements over a second each (an outside tester's measurement). One room's row then goes
 * alone: its cascade (players, bans, what is left) walks that room's keys only. Between
 * statements the event loop runs: better-sqlite3 runs each one synchronously, and back to back
 * (promises only) they would hold the loop for the whole deletion.
 */
export async function emptyHostedRooms(store: RoomStore, hostUserId: string): Promise<number> {
  let deleted = 0;
  for (const code of await store.listHostedRoomCodes(hostUserId)) {
    // Closed rooms take no event, and this transaction holds the open ones it just closed.
    const first = await store.firstEventSeq(code);
    const last = await store.lastEventId(code);
    if (first !== undefined) {
      for (let after = first - 1; after < last; after += PURGE_CHUNK_ROWS) {
        deleted += await store.deleteRoomEventRange(code, after, after + PURGE_CHUNK_ROWS);
        await nextTurn();
      }
    }
    await store.deleteRoom(code);
    await nextTurn();
  }
  // Emptied since (another instance's sweep): their rows too, not the account row's cascade.
  while ((await store.deleteEmptiedHostedRooms(hostUserId, PURGE_CHUNK_ROWS)) > 0) await nextTurn();
  return deleted;
}

/** A page of a list, as the routes answer it. */
export interface Page<T> {
  items: T[];
  total: number;
}

/** A hand-over code just issued: shown once, to the host, to give to the next host. */
export interface IssuedTransferCode {
  code: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** Options of {@link createRoomHostTools}. */
export interface RoomHostToolsOptions {
  /** Reads outside any transaction. */
  rooms: RoomStore;
  /** The room service's unit of work (a change and its events commit together). */
  change: RoomChange;
  clock: () => number;
  /**
   * Seconds a host hand-over code lasts.
   * @default 600
   */
  transferCodeTtlSeconds?: number;
  /**
   * Rooms one host may have open at once (`MAX_OPEN_ROOMS_PER_HOST`): a hand-over to an account
   * already at it throws `TOO_MANY_OPEN_ROOMS`.
   * @default 20
   */
  maxOpenRoomsPerHost?: number;
}

/**
 * What a room's host can do besides kicking and closing (issue 14, item 3). Every operation on a
 * room checks the caller is its host and answers `ROOM_NOT_FOUND` otherwise, as for a missing room.
 */
export interface RoomHostTools {
  /** The rooms `hostUserId` hosts, open and closed, newest first. */
  listHostedRooms(hostUserId: string, limit: number, offset: number): Promise<Page<HostedRoomRow>>;
  /** The room's bans, newest first. */
  listBans(code: string, hostUserId: string, limit: number, offset: number): Promise<Page<RoomBanRecord>>;
  /**
   * Lifts a ban: the name may join again, and the banned browser's seat is forgotten (it joins
   * as a new player). Throws `BAN_NOT_FOUND`.
   */
  liftBan(code: string, hostUserId: string, banId: string): Promise<void>;
  /**
   * Renames and/or (un)locks the room; emits `room_updated` when something changed. Throws
   * `VALIDATION_FAILED` (field `name`).
   */
  updateRoom(
    code: string,
    hostUserId: string,
    changes: { name?: string; locked?: boolean },
  ): Promise<RoomRecord>;
  /**
   * A single-use code (valid `transferCodeTtlSeconds`) with which another signed-in host account
   * takes the room over; it replaces any earlier code of the room.
   */
  issueTransferCode(code: string, hostUserId: string): Promise<IssuedTransferCode>;
  /**
   * `newHostUserId` becomes the room's host with a hand-over code; emits `host_changed`. Throws
   * `TRANSFER_CODE_INVALID` (unknown, spent, expired or malformed, or no such open room: one answer),
   * `TOO_MANY_OPEN_ROOMS` (a right code, but the room would pass the new host's cap; counted under
   * their account lock).
   */
  acceptTransfer(code: string, newHostUserId: string, transferCode: string): Promise<RoomRecord>;
  /**
   * Closes up to {@link IDLE_SWEEP_BATCH} open rooms with no event since `idleBefore` (epoch
   * ms), each with its `room_closed` event; returns how many it closed.
   */
  closeIdleRooms(idleBefore: number): Promise<number>;
  /**
   * Empties rooms closed before `closedBefore` (epoch ms), oldest first: deletes what they hold
   * (events, log, players, bans, watch links), at most {@link PURGE_ROWS_PER_PASS} rows per call,
   * and keeps each room's own row (its code is never reused). Returns how many rooms it emptied. A
   * room not finished is taken up again by the next call; one that fails does not stop the others
   * (the first failure is thrown once the rest had their turn).
   */
  purgeClosedRooms(closedBefore: number): Promise<number>;
}

/** Creates the {@link RoomHostTools}. */
export function createRoomHostTools(options: RoomHostToolsOptions): RoomHostTools {
  const { rooms, change, clock } = options;
  const transferTtlMs = (options.transferCodeTtlSeconds ?? 600) * 1000;
  const maxOpenRooms = options.maxOpenRoomsPerHost ?? 20;

  /**
   * The open room `rawCode` if `hostUserId` hosts it; else the same 404 as for no room. For reads
   * outside a change; a change takes the room's lock with `lockOpenRoom` instead.
   */
  async function hostedRoom(store: RoomStore, rawCode: string, hostUserId: string): Promise<RoomRecord> {
    const room = await findOpenRoom(store, rawCode);
    if (room.hostUserId !== hostUserId) throw roomNotFound();
    return room;
  }

  return {
    async listHostedRooms(hostUserId, limit, offset) {
      const [items, total] = await Promise.all([
        rooms.listHostedRooms(hostUserId, limit, offset),
        rooms.countHostedRooms(hostUserId),
      ]);
      return { items, total };
    },

    async listBans(code, hostUserId, limit, offset) {
      const room = await hostedRoom(rooms, code, hostUserId);
      const [items, total] = await Promise.all([
        rooms.listBans(room.code, limit, offset),
        rooms.countBans(room.code),
      ]);
      return { items, total };
    },

    liftBan: (code, hostUserId, banId) =>
      change(async (store) => {
        const room = await lockOpenRoom(store, code, hostUserId);
        if ((await store.deleteBan(room.code, banId)) === undefined) {
          throw new GatehouseError<DiceryErrorCode>('BAN_NOT_FOUND', 'No such ban in this room.');
        }
      }),

    async updateRoom(code, hostUserId, changes) {
      let name: string | undefined;
      if (changes.name !== undefined) {
        const valid = normalizeDisplayText(changes.name, ROOM_NAME_MAX_LENGTH);
        if (!valid.ok) throw textError('name', 'Room name', valid.reason, ROOM_NAME_MAX_LENGTH);
        name = valid.text;
      }
      return change(async (store, emit) => {
        // Under the room's lock: the previous host of a room just handed over is refused here.
        const room = await lockOpenRoom(store, code, hostUserId);
        const next = { ...room, name: name ?? room.name, locked: changes.locked ?? room.locked };
        if (next.name === room.name && next.locked === room.locked) return room;
        const now = clock();
        // The event first: its append row-locks the room, so a join counted after its own
        // append sees this lock once committed (see the room service's join).
        await emit(room.code, 'room_updated', { name: next.name, locked: next.locked }, now);
        if (!(await store.updateRoom(room.code, { name: next.name, locked: next.locked })))
          throw roomNotFound();
        return { ...next, lastActivityAt: now };
      });
    },

    async issueTransferCode(code, hostUserId) {
      const transfer = generateClaimCode();
      const expiresAt = clock() + transferTtlMs;
      await change(async (store) => {
        const room = await lockOpenRoom(store, code, hostUserId);
        if (!(await store.setTransferCode(room.code, hashSecret(transfer), expiresAt))) throw roomNotFound();
      });
      return { code: transfer, expiresAt };
    },

    async acceptTransfer(code, newHostUserId, transferCode) {
      const normalized = normalizeClaimCode(transferCode);
      if (normalized === undefined) throw transferCodeInvalid();
      try {
        const room = await findOpenRoom(rooms, code);
        return await change(async (store, emit, unit) => {
          // The account lock comes first (then the room's row): the order room creation takes too.
          const refusal = await openRoomRefusal(store, unit, newHostUserId, maxOpenRooms);
          const locked = await lockOpenRoom(store, room.code);
          const now = clock();
          // The conditional UPDATE makes the code single-use under concurrent accepts.
          if (!(await store.takeOverRoom(locked.code, hashSecret(normalized), newHostUserId, now))) {
            throw transferCodeInvalid();
          }
          // Only a right code learns of the cap: refused before, a caller at its cap would tell
          // live rooms (409) from missing ones (400). Throwing rolls the takeover back.
          if (refusal !== undefined) throw refusal;
          await emit(locked.code, 'host_changed', {}, now);
          return { ...locked, hostUserId: newHostUserId, lastActivityAt: now };
        });
      } catch (error) {
        // A missing or closed room is answered as a wrong code: a 404 told any account which room
        // codes are live, a guess per request (red-team 2026-12g D3).
        if (error instanceof GatehouseError && error.code === 'ROOM_NOT_FOUND') throw transferCodeInvalid();
        throw error;
      }
    },

    async closeIdleRooms(idleBefore) {
      let closed = 0;
      for (const code of await rooms.listIdleRooms(idleBefore, IDLE_SWEEP_BATCH)) {
        try {
          await change(async (store, emit) => {
            // Re-read inside the change, under the room's lock: an event since the listing (or one
            // committing meanwhile) keeps the room open.
            const room = await lockOpenRoom(store, code);
            if (room.lastActivityAt >= idleBefore) return;
            const now = clock();
            await emit(room.code, 'room_closed', {}, now);
            if (!(await store.closeRoom(room.code, now))) throw roomNotFound();
            closed += 1;
          });
        } catch (error) {
          // Closed meanwhile by its host or another instance's sweep: nothing left to do.
          if (!(error instanceof GatehouseError && error.code === 'ROOM_NOT_FOUND')) throw error;
        }
      }
      return closed;
    },

    async purgeClosedRooms(closedBefore) {
      let budget = PURGE_ROWS_PER_PASS;
      let purged = 0;
      let failure: unknown;
      for (const code of await rooms.listClosedRooms(closedBefore, IDLE_SWEEP_BATCH)) {
        if (budget <= 0) break;
        try {
          for (;;) {
            const step = await rooms.purgeClosedRoom(code, Math.min(PURGE_CHUNK_ROWS, budget), clock());
            budget -= step.deleted;
            if (step.done) purged += 1;
            // Not done with no row deleted: another instance holds them; come back next pass.
            if (step.done || step.deleted === 0 || budget <= 0) break;
            // Requests run between two statements (on SQLite each holds the event loop while it runs).
            await nextTurn();
          }
        } catch (error) {
          // The database away: every other room would wait its own timeout; the next pass retries.
          if (isDatabaseUnavailable(error)) throw error;
          // One room failing (whatever it is) must not hold every other one back.
          failure ??= error;
        }
      }
      if (failure !== undefined) throw failure;
      return purged;
    },
  };
}
