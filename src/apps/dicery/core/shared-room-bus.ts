import type { AppChannel, AppChannelOptions } from '../../../index.js';
import { createMemoryRoomBus, type MemoryRoomBusOptions, type RoomBus } from './room-bus.js';
import { asRoomEvent, type RoomEventMessage, roomEventSchema } from './room-event-schema.js';

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
  options: AppChannelOptions<typeof roomEventSchema>,
) => Promise<AppChannel<RoomEventMessage>>;

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
  options: MemoryRoomBusOptions = {},
): Promise<RoomBus> {
  const local = createMemoryRoomBus(options);
  const resyncHandlers = new Set<() => void>();
  const channel = await openChannel({
    name: ROOM_CHANNEL,
    schema: roomEventSchema,
    deliver: (event) => void local.publish(asRoomEvent(event)),
    onResync: () => {
      for (const handler of resyncHandlers) handler();
    },
  });
  return {
    async publish(event) {
      await local.publish(event);
      await channel.publish(event);
    },
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
