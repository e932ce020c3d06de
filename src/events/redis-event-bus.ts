import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createMemoryEventBus, type EventBus, type GatehouseEvent } from './event-bus.js';

const CHANNEL = 'gatehouse:events';

/**
 * An {@link EventBus} over Redis pub/sub. Local subscribers get an event synchronously on
 * publish (the revoking instance must not wait for a round trip); other instances get it from
 * Redis. Each message carries the publisher's id so an instance skips its own echo.
 */
export async function createRedisEventBus(url: string): Promise<EventBus> {
  const instanceId = randomUUID();
  const local = createMemoryEventBus();
  const publisher = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3 });
  const subscriber = new Redis(url, { lazyConnect: true });
  // ioredis reconnects on its own; without a listener an outage would print "Unhandled error event".
  for (const client of [publisher, subscriber]) client.on('error', () => {});
  await Promise.all([publisher.connect(), subscriber.connect()]);
  await subscriber.subscribe(CHANNEL);
  subscriber.on('message', (_channel: string, message: string) => {
    let parsed: { from: string; event: GatehouseEvent };
    try {
      parsed = JSON.parse(message) as { from: string; event: GatehouseEvent };
    } catch {
      return; // Not ours: anything on the channel that is not our JSON is ignored.
    }
    if (parsed.from !== instanceId) void local.publish(parsed.event);
  });
  return {
    async publish(event) {
      await local.publish(event);
      await publisher.publish(CHANNEL, JSON.stringify({ from: instanceId, event }));
    },
    subscribe: (handler) => local.subscribe(handler),
    async close() {
      await local.close();
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}
