import type { RoomEventDataMap, RoomEventType } from '../shared/wire.js';

export type {
  PlayerRef as RoomPlayerRef,
  RollEventData,
  RolledDie as RolledDieData,
  RollTermData,
  RoomEventDataMap,
  RoomEventType,
} from '../shared/wire.js';

/** Every event type, for validating events read back from storage or Redis. */
export const ROOM_EVENT_TYPES: ReadonlySet<RoomEventType> = new Set<RoomEventType>([
  'player_joined',
  'player_left',
  'roll',
  'roll_revealed',
  'room_closed',
  'room_updated',
  'host_changed',
  'spectator_link_created',
  'spectator_link_revoked',
]);

/**
 * Something that happened in a room, as stored in its event log and sent to subscribers (and, by
 * the HTTP layer, as an SSE message whose `id:` is {@link RoomEvent.id}).
 *
 * A discriminated union on `type`, so `event.type === 'roll'` narrows `event.data`.
 */
export type RoomEvent<T extends RoomEventType = RoomEventType> = {
  [K in T]: {
    /** The event's sequence number within its room (1, 2, 3… with no gap); clients resume after it. */
    id: number;
    /** Room code. */
    room: string;
    type: K;
    data: RoomEventDataMap[K];
    /** ISO 8601 time the event was stored. */
    at: string;
  };
}[T];

/**
 * The type {@link UnknownRoomEvent} carries: no real type has parentheses, so `event.type === 'roll'`
 * still narrows a {@link LoggedRoomEvent}.
 */
export const UNKNOWN_ROOM_EVENT = '(unknown)';

/**
 * An event of a type this version does not know: one a newer instance wrote during a rolling
 * deploy. It holds its place in the room's sequence and nothing to show: a stream counts it as
 * written (so the next event is not taken for a gap) and sends nothing; `data.type` is its real type,
 * for logs. See ARCHITECTURE.md, "Mixed versions on the bus".
 */
export interface UnknownRoomEvent {
  id: number;
  room: string;
  type: typeof UNKNOWN_ROOM_EVENT;
  data: { type: string };
  at: string;
}

/** What the log and the bus hold: a {@link RoomEvent}, or one of a newer version's types. */
export type LoggedRoomEvent = RoomEvent | UnknownRoomEvent;

/** True for the events this version knows (and can show). */
export function isKnownRoomEvent(event: LoggedRoomEvent): event is RoomEvent {
  return event.type !== UNKNOWN_ROOM_EVENT;
}

/** Receives a room's events; must not throw and must not block (it runs inside `publish`). */
export type RoomEventHandler = (event: LoggedRoomEvent) => void;

/**
 * Delivers room events to the subscribers of that room, on this instance and (for the Redis
 * implementation) on every other instance. Delivery is live only: a subscriber that missed events
 * (it connected late, or Redis dropped a message) catches up from the stored event log by id.
 */
export interface RoomBus {
  /**
   * Delivers `event` to local subscribers of `event.room` synchronously, then to other instances
   * (an {@link UnknownRoomEvent} only ever comes from another instance, and is not sent back out).
   */
  publish(event: LoggedRoomEvent): Promise<void>;
  /**
   * Registers a handler for one room's events; returns a function that removes it (idempotent).
   * Use a distinct function per subscription: one function subscribed twice to a room counts once.
   */
  subscribe(roomCode: string, handler: RoomEventHandler): () => void;
  /** Handlers subscribed to a room on this instance, e.g. to cap open streams per room. */
  subscriberCount(roomCode: string): number;
  /**
   * Registers a handler called when this instance may have missed live events of any room (its
   * pub/sub connection was lost and came back): subscribers should refetch from the event log.
   * Never called by the in-process bus, which cannot lose events. Returns a function removing it.
   */
  onResync(handler: () => void): () => void;
  /** Drops every subscription and releases connections. */
  close(): Promise<void>;
}

/** Options of {@link createMemoryRoomBus}. */
export interface MemoryRoomBusOptions {
  /**
   * Called when a handler throws. The other handlers still receive the event: one broken stream
   * must not starve a thousand healthy ones.
   * @default emits a process warning
   */
  onHandlerError?: (error: unknown, event: LoggedRoomEvent) => void;
}

function warnHandlerError(error: unknown, event: LoggedRoomEvent): void {
  process.emitWarning(`Room event handler threw on ${event.type} #${event.id}`, {
    code: 'GATEHOUSE_ROOM_HANDLER_ERROR',
    detail: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
}

/**
 * A {@link RoomBus} for a single process. Each room has a `Set` of handlers, so publishing costs
 * one synchronous call per subscriber of that room (no promise or timer per subscriber) and rooms
 * never see each other's traffic. Emptied rooms are forgotten so long-running servers do not
 * accumulate them.
 */
export function createMemoryRoomBus(options: MemoryRoomBusOptions = {}): RoomBus {
  const onHandlerError = options.onHandlerError ?? warnHandlerError;
  const rooms = new Map<string, Set<RoomEventHandler>>();
  return {
    async publish(event) {
      const handlers = rooms.get(event.room);
      if (handlers === undefined) return;
      // Iterating the live Set is safe when a handler unsubscribes itself (a kicked player's
      // stream ends inside this loop): deleted entries are simply not visited.
      for (const handler of handlers) {
        try {
          handler(event);
        } catch (error) {
          onHandlerError(error, event);
        }
      }
    },
    subscribe(roomCode, handler) {
      let handlers = rooms.get(roomCode);
      if (handlers === undefined) {
        handlers = new Set();
        rooms.set(roomCode, handlers);
      }
      handlers.add(handler);
      const subscribed = handlers;
      return () => {
        subscribed.delete(handler);
        // Only forget the Set if it is still the room's current one and now empty.
        if (subscribed.size === 0 && rooms.get(roomCode) === subscribed) rooms.delete(roomCode);
      };
    },
    subscriberCount(roomCode) {
      return rooms.get(roomCode)?.size ?? 0;
    },
    // Nothing is ever lost in-process, so there is never anything to resync.
    onResync: () => () => {},
    async close() {
      rooms.clear();
    },
  };
}
