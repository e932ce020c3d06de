import { GatehouseError } from '../../../index.js';
import { normalizeRoomCode } from '../shared/room-code.js';
import type { RoomRecord, RoomStore } from '../storage/room-store.js';
import { type DiceryErrorCode, roomNotFound } from './errors.js';
import type { RoomBus, RoomEvent, RoomEventDataMap, RoomEventType } from './room-bus.js';

/** What a unit of work offers besides its store (the core's `GatehouseTransaction`, narrowed). */
export interface RoomUnit {
  /**
   * Holds the account's row lock until the unit ends (`tx.lockAccount`), so a per-account count
   * made after it and the insert it allows are exact under concurrency.
   */
  lockAccount(userId: string): Promise<void>;
}

/**
 * Runs `work` as one unit of work with a {@link RoomStore} bound to it: everything `work` writes
 * commits when it resolves and rolls back when it throws.
 */
export type RoomTransaction = <T>(work: (rooms: RoomStore, unit: RoomUnit) => Promise<T>) => Promise<T>;

/** Appends an event inside a change; what a {@link RoomChange} hands to its work. */
export type Emit = <T extends RoomEventType>(
  code: string,
  type: T,
  data: RoomEventDataMap[T],
  now: number,
) => Promise<RoomEvent<T>>;

/**
 * Runs one room change as a unit of work: its reads, its writes and its events' appends share
 * one transaction, and the events are published only once it has committed. A failed publish
 * does not undo or fail the committed change: streams recover the event from the log (gap
 * refetch, heartbeat tail check, `Last-Event-ID`).
 */
export type RoomChange = <T>(
  work: (store: RoomStore, emit: Emit, unit: RoomUnit) => Promise<T>,
) => Promise<T>;

/**
 * Events a room appends past `ROOM_MAX_EVENTS` all the same: closing, leaving (a kick, an expired
 * seat) and revealing a hidden roll must keep working in a full room, and each is bounded without
 * the cap (one close, one leave per player present, one reveal per hidden roll).
 */
const APPENDED_PAST_LIMIT: ReadonlySet<RoomEventType> = new Set([
  'room_closed',
  'player_left',
  'roll_revealed',
]);

/** `ROOM_EVENT_LIMIT`: the room holds `maxEvents` events, and this one is not exempt. */
export function roomEventLimit(maxEvents: number): GatehouseError<DiceryErrorCode> {
  return new GatehouseError<DiceryErrorCode>(
    'ROOM_EVENT_LIMIT',
    `This room has reached its limit of ${maxEvents} events: no more rolls or joins. The host can close it and open a new one.`,
  );
}

/** Builds the {@link RoomChange} shared by the room service and the host tools. */
export function createRoomChange(options: {
  transaction: RoomTransaction;
  bus: RoomBus;
  onPublishError: (error: unknown, event: RoomEvent) => void;
  /**
   * Events one room holds at most (`ROOM_MAX_EVENTS`): an append past it throws `ROOM_EVENT_LIMIT`
   * and the change rolls back, except for {@link APPENDED_PAST_LIMIT}. Without it a room in use
   * grew for as long as it lived (red-team 2026-12g D6): its log, its replay and its deletion with
   * it. @default no limit
   */
  maxEventsPerRoom?: number;
}): RoomChange {
  const { transaction, bus, onPublishError } = options;
  const maxEvents = options.maxEventsPerRoom ?? Number.POSITIVE_INFINITY;
  return async (work) => {
    let events: RoomEvent[] = [];
    const result = await transaction((store, unit) => {
      events = [];
      const emit: Emit = async (code, type, data, now) => {
        const stored = await store.appendEvent(code, type, JSON.stringify(data), now);
        // Closed by a concurrent change since it was read: nothing may follow `room_closed`.
        if (stored === undefined) throw roomNotFound();
        // The sequence number is the room's event count (gap-free, handed out under the room's
        // row lock): one past the limit rolls the whole change back, its number included.
        if (stored.id > maxEvents && !APPENDED_PAST_LIMIT.has(type)) throw roomEventLimit(maxEvents);
        // TypeScript cannot correlate `type` and `data` through the generic; `data` is typed by `T`.
        const event = { id: stored.id, room: code, type, data, at: new Date(now).toISOString() } as RoomEvent;
        events.push(event);
        return event as RoomEvent<typeof type>;
      };
      return work(store, emit, unit);
    });
    for (const event of events) {
      try {
        await bus.publish(event);
      } catch (error) {
        onPublishError(error, event);
      }
    }
    return result;
  };
}

/** The open room with this code (any case); `ROOM_NOT_FOUND` for unknown and closed alike. */
export async function findOpenRoom(store: RoomStore, rawCode: string): Promise<RoomRecord> {
  const code = normalizeRoomCode(rawCode);
  if (code === undefined) throw roomNotFound();
  const room = await store.findRoom(code);
  if (room === undefined || room.state !== 'open') throw roomNotFound();
  return room;
}

/**
 * The open room with this code (any case), inside a change, with the room's row lock held until the
 * change ends; with `hostUserId`, only if that account hosts it. `ROOM_NOT_FOUND` otherwise (unknown,
 * closed, someone else's: one answer).
 *
 * Call it first in every change, before any read the change decides on (who is present, who hosts,
 * a ban, a lock): everything read after it is what the change commits over. Checked before the lock
 * (PostgreSQL, READ COMMITTED), a kick or a hand-over committing in between went unseen: the kicked
 * player's roll was committed and broadcast after their `player_left`, and the previous host could
 * still close, rename or kick. SQLite's write transactions run one at a time, so there it only reads.
 * Lock order: a change that needs an account's lock (creation, hand-over) takes it before this
 * (ARCHITECTURE.md, "Lock order"); nothing takes an account's row after a room's.
 */
export async function lockOpenRoom(
  store: RoomStore,
  rawCode: string,
  hostUserId?: string,
): Promise<RoomRecord> {
  const code = normalizeRoomCode(rawCode);
  if (code === undefined) throw roomNotFound();
  const room = await store.lockRoom(code);
  if (room === undefined || room.state !== 'open') throw roomNotFound();
  if (hostUserId !== undefined && room.hostUserId !== hostUserId) throw roomNotFound();
  return room;
}

/**
 * Refuses with `TOO_MANY_OPEN_ROOMS` when `hostUserId` already has `max` open rooms
 * (`MAX_OPEN_ROOMS_PER_HOST`). Call it inside the unit of work that then creates or takes over a
 * room: it locks the host's account first, so parallel creations and hand-overs are counted one
 * at a time and the cap is exact on PostgreSQL as on SQLite.
 */
export async function assertOpenRoomAllowed(
  store: RoomStore,
  unit: RoomUnit,
  hostUserId: string,
  max: number,
): Promise<void> {
  const refusal = await openRoomRefusal(store, unit, hostUserId, max);
  if (refusal !== undefined) throw refusal;
}

/**
 * As {@link assertOpenRoomAllowed} (the account's lock taken, then its open rooms counted), but
 * returns the refusal instead of throwing it, for a caller that must check something else first
 * and throw that error in its place (a hand-over: a wrong code is answered before the cap, or
 * the cap would tell which rooms exist).
 */
export async function openRoomRefusal(
  store: RoomStore,
  unit: RoomUnit,
  hostUserId: string,
  max: number,
): Promise<GatehouseError<DiceryErrorCode> | undefined> {
  await unit.lockAccount(hostUserId);
  if ((await store.countOpenRooms(hostUserId)) < max) return undefined;
  return new GatehouseError<DiceryErrorCode>(
    'TOO_MANY_OPEN_ROOMS',
    `You have ${max} open rooms, the most allowed; close one first.`,
  );
}
