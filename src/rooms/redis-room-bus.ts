import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  createMemoryRoomBus,
  type MemoryRoomBusOptions,
  ROOM_EVENT_TYPES,
  type RoomBus,
  type RoomEvent,
} from './room-bus.js';

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

/** What travels over Redis: the event plus the publishing instance, to skip our own echo. */
interface Envelope {
  from: string;
  event: RoomEvent;
}

/** Options of {@link createRedisRoomBus}. */
export type RedisRoomBusOptions = MemoryRoomBusOptions;

/**
 * A {@link RoomBus} over Redis pub/sub, for several instances behind a load balancer.
 *
 * Local subscribers get an event synchronously on publish, without a Redis round trip; other
 * instances get it from Redis. Each message carries this instance's random id so it skips its own
 * echo instead of delivering the event twice. Uses two connections in all (a connection in
 * subscriber mode cannot publish), however many rooms and streams there are.
 *
 * Redis pub/sub is at-most-once: a message published while an instance is reconnecting is lost to
 * it. Streams recover from the stored event log (`Last-Event-ID`) when clients reconnect.
 *
 * @param url - `redis://…` or `rediss://…`.
 */
export async function createRedisRoomBus(url: string, options: RedisRoomBusOptions = {}): Promise<RoomBus> {
  const instanceId = randomUUID();
  const local = createMemoryRoomBus(options);
  const publisher = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3 });
  const subscriber = new Redis(url, { lazyConnect: true });
  try {
    await Promise.all([publisher.connect(), subscriber.connect()]);
    await subscriber.subscribe(CHANNEL);
  } catch (error) {
    publisher.disconnect();
    subscriber.disconnect();
    throw error;
  }
  subscriber.on('message', (_channel: string, message: string) => {
    const envelope = parseEnvelope(message);
    if (envelope !== undefined && envelope.from !== instanceId) void local.publish(envelope.event);
  });
  return {
    async publish(event) {
      await local.publish(event);
      const envelope: Envelope = { from: instanceId, event };
      await publisher.publish(CHANNEL, JSON.stringify(envelope));
    },
    subscribe: (roomCode, handler) => local.subscribe(roomCode, handler),
    subscriberCount: (roomCode) => local.subscriberCount(roomCode),
    async close() {
      await local.close();
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}

/**
 * Reads a message from the channel. Only Gatehouse instances publish there, but a malformed
 * message (another tool, an older version) must be dropped, not crash the subscriber callback.
 */
function parseEnvelope(message: string): Envelope | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { from, event } = parsed as { from?: unknown; event?: unknown };
  if (typeof from !== 'string' || typeof event !== 'object' || event === null) return undefined;
  const { id, room, type } = event as { id?: unknown; room?: unknown; type?: unknown };
  if (typeof id !== 'number' || typeof room !== 'string' || typeof type !== 'string') return undefined;
  if (!ROOM_EVENT_TYPES.has(type as RoomEvent['type'])) return undefined;
  return { from, event: event as RoomEvent };
}
