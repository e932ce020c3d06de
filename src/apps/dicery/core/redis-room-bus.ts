import { openRedisChannel } from '../events/redis-channel.js';
import {
  type CoreWarn,
  type RedisConnections,
  resolveConnections,
  warnByProcess,
} from '../events/redis-connections.js';
import { createMemoryRoomBus, type MemoryRoomBusOptions, type RoomBus } from './room-bus.js';
import { asRoomEvent, roomEventSchema } from './room-event-schema.js';

/**
 * The one channel every instance publishes room events to.
 *
 * One channel rather than one per room: each instance receives every room's events and drops those
 * of rooms nobody on it watches, which costs a Map lookup. In exchange there is no SUBSCRIBE /
 * UNSUBSCRIBE round trip as streams open and close, and no window in which a freshly opened stream
 * is subscribed locally but not yet in Redis. Dice rooms produce a few events per second at most,
 * so the extra traffic is negligible; a per-room channel is the upgrade path if that changes.
 */
const CHANNEL = 'gatehouse:rooms';

/** Options of {@link createRedisRoomBus}. */
export interface RedisRoomBusOptions extends MemoryRoomBusOptions {
  /** Where malformed messages and failed publishes are reported. @default process warnings */
  warn?: CoreWarn;
}

/**
 * A {@link RoomBus} over Redis pub/sub, for several instances behind a load balancer.
 *
 * Local subscribers get an event synchronously on publish, without a Redis round trip; other
 * instances get it from Redis, schema-checked (see `openRedisChannel`). Uses the instance's two
 * shared connections (a connection in subscriber mode cannot publish), however many rooms and
 * streams there are.
 *
 * Redis pub/sub is at-most-once: a message published while an instance is reconnecting, or while
 * Redis is down, is lost to it; `publish` still resolves once local subscribers have it. Streams
 * recover from the stored event log (`Last-Event-ID`) when clients reconnect.
 *
 * @param redis - the instance's shared connections, or a URL to open private ones (closed with
 *   the bus), with default timeouts.
 */
export async function createRedisRoomBus(
  redis: RedisConnections | string,
  options: RedisRoomBusOptions = {},
): Promise<RoomBus> {
  const warn = options.warn ?? warnByProcess;
  const { connections, owned } = resolveConnections(redis, warn);
  const local = createMemoryRoomBus(options);
  const resyncHandlers = new Set<() => void>();
  const channel = openRedisChannel({
    connections,
    name: CHANNEL,
    schema: roomEventSchema,
    deliver: (event) => void local.publish(asRoomEvent(event)),
    warn,
    onResubscribed: () => {
      for (const handler of resyncHandlers) handler();
    },
  });
  // Wait for SUBSCRIBE so no early message is missed, but never past a failed first attempt.
  await Promise.race([channel.subscribed, connections.firstAttemptFailed()]);
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
      if (owned) await connections.close();
    },
  };
}
