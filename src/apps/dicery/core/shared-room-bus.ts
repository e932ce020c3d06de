import type { AppChannel, AppChannelOptions } from '../../../index.js';
import {
  createMemoryRoomBus,
  type MemoryRoomBusOptions,
  type RoomBus,
  UNKNOWN_ROOM_EVENT,
} from './room-bus.js';
import { type RoomEventFrame, readRoomEventMessage, roomEventFrameSchema } from './room-event-schema.js';

/**
 * The one app channel every instance publishes room events to (`gatehouse:rooms` on Redis).
 *
 * One channel rather than one per room: each instance receives every room's events and drops those
 * of rooms nobody on it watches, which costs a Map lookup. In exchange there is no SUBSCRIBE /
 * UNSUBSCRIBE round trip as streams open and close, and no window in which a freshly opened stream
 * is subscribed locally but not yet in Redis. Dice rooms produce a few events per second at most,
 * so the extra traffic is negligible; a per-room channel is the upgrade path if that changes.
 */
export const ROOM_CHANNEL = 'rooms';

/** Opens an app channel: `gatehouse.openChannel`, bound. */
export type OpenRoomChannel = (
  options: AppChannelOptions<typeof roomEventFrameSchema>,
) => Promise<AppChannel<RoomEventFrame>>;

/** Options of {@link createSharedRoomBus}. */
export interface SharedRoomBusOptions extends MemoryRoomBusOptions {
  /**
   * Told once per event type (up to {@link MAX_NOTED_TYPES} types) that events of a type this
   * version does not know are skipped, or that a known type's event failed its schema and was
   * dropped. @default none
   */
  onWarning?: (message: string) => void;
}

/** Distinct event types whose skipping or dropping is logged; later ones are only counted. */
export const MAX_NOTED_TYPES = 32;

/**
 * A {@link RoomBus} shared by every instance through the core's app channel (Redis pub/sub when
 * the core has Redis, this instance alone otherwise).
 *
 * Local subscribers get an event synchronously on publish, without a Redis round trip; other
 * instances get it from the channel, schema-checked. Pub/sub is at-most-once: a message published
 * while an instance is reconnecting is lost to it; `onResync` handlers then refetch from the
 * stored event log, and clients reconnecting with `Last-Event-ID` recover too.
 */
export async function createSharedRoomBus(
  openChannel: OpenRoomChannel,
  options: SharedRoomBusOptions = {},
): Promise<RoomBus & { skipped(): { unknown: number; malformed: number } }> {
  const local = createMemoryRoomBus(options);
  const resyncHandlers = new Set<() => void>();
  const counts = { unknown: 0, malformed: 0 };
  // Bounded: at most MAX_NOTED_TYPES names, so a flood of invented types cannot grow it or the log.
  const noted = new Set<string>();
  const note = (key: string, message: string) => {
    if (noted.has(key) || noted.size >= MAX_NOTED_TYPES) return;
    noted.add(key);
    options.onWarning?.(message);
  };
  const channel = await openChannel({
    name: ROOM_CHANNEL,
    schema: roomEventFrameSchema,
    deliver: (frame) => {
      const read = readRoomEventMessage(frame);
      if (!read.ok) {
        counts.malformed += 1;
        note(
          `malformed:${read.type}`,
          `Dropped a ${read.type} room event from another instance: it fails this version's schema (logged once per type)`,
        );
        return;
      }
      if (read.event.type === UNKNOWN_ROOM_EVENT) {
        counts.unknown += 1;
        note(
          `unknown:${read.event.data.type}`,
          `Room events of type ${read.event.data.type} (from a newer instance?) are skipped: streams on this instance keep their order and do not show them (logged once per type)`,
        );
      }
      void local.publish(read.event);
    },
    onResync: () => {
      for (const handler of resyncHandlers) handler();
    },
  });
  return {
    async publish(event) {
      await local.publish(event);
      // Only this instance's own events go out; an unknown one came from the channel.
      if (event.type !== UNKNOWN_ROOM_EVENT) await channel.publish(event);
    },
    skipped: () => ({ ...counts }),
    subscribe: (roomCode, handler) => local.subscribe(roomCode, handler),
    subscriberCount: (roomCode) => local.subscriberCount(roomCode),
    onResync(handler) {
      resyncHandlers.add(handler);
      return () => resyncHandlers.delete(handler);
    },
    async close() {
      resyncHandlers.clear();
      channel.close();
      await local.close();
    },
  };
}
