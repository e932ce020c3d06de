import { normalizeRoomCode } from '../shared/room-code.js';
import type { RoomRecord, RoomStore } from '../storage/room-store.js';
import { roomNotFound } from './errors.js';
import type { RoomBus, RoomEvent, RoomEventDataMap, RoomEventType } from './room-bus.js';

/**
 * Runs `work` as one unit of work with a {@link RoomStore} bound to it: everything `work` writes
 * commits when it resolves and rolls back when it throws.
 */
export type RoomTransaction = <T>(work: (rooms: RoomStore) => Promise<T>) => Promise<T>;

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
export type RoomChange = <T>(work: (store: RoomStore, emit: Emit) => Promise<T>) => Promise<T>;

/** Builds the {@link RoomChange} shared by the room service and the host tools. */
export function createRoomChange(options: {
  transaction: RoomTransaction;
  bus: RoomBus;
  onPublishError: (error: unknown, event: RoomEvent) => void;
}): RoomChange {
  const { transaction, bus, onPublishError } = options;
  return async (work) => {
    let events: RoomEvent[] = [];
    const result = await transaction((store) => {
      events = [];
      const emit: Emit = async (code, type, data, now) => {
        const stored = await store.appendEvent(code, type, JSON.stringify(data), now);
        // Closed by a concurrent change since it was read: nothing may follow `room_closed`.
        if (stored === undefined) throw roomNotFound();
        // TypeScript cannot correlate `type` and `data` through the generic; `data` is typed by `T`.
        const event = { id: stored.id, room: code, type, data, at: new Date(now).toISOString() } as RoomEvent;
        events.push(event);
        return event as RoomEvent<typeof type>;
      };
      return work(store, emit);
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
