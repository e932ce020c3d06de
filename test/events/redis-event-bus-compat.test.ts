import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import type { GatehouseEvent } from '../../src/events/event-bus.js';
import {
  type CoreWarn,
  createRedisConnections,
  defaultRedisTimings,
} from '../../src/events/redis-connections.js';
import { createRedisEventBus } from '../../src/events/redis-event-bus.js';

const { REDIS_URL } = process.env;

/**
 * The core's bus in a rolling deploy: a newer instance publishes an event type this version does
 * not know, or a known event with a field it does not know. The known event is delivered (extra
 * fields ignored); the unknown type is skipped and logged once, never reported per message as
 * malformed. The messages are published raw, as another version would, on the shared Redis's
 * `gatehouse:events` (other suites' buses skip them the same way).
 */
describe.runIf(REDIS_URL)('the Redis event bus reading a newer instance’s messages', () => {
  it('delivers a known event with extra fields and skips an unknown type, logging it once', async () => {
    const warn = vi.fn<CoreWarn>();
    const connections = createRedisConnections({ url: REDIS_URL ?? '', ...defaultRedisTimings }, warn);
    const bus = await createRedisEventBus(connections, { warn });
    const publisher = new Redis(REDIS_URL ?? '');
    const seen: GatehouseEvent[] = [];
    bus.subscribe((event) => seen.push(event));
    const tag = randomBytes(6).toString('hex');
    const unknownType = `session_moved_${tag}`;
    const send = (event: Record<string, unknown>) =>
      publisher.publish(
        'gatehouse:events',
        JSON.stringify({ from: 'newer-instance', at: Date.now(), v: 2, event }),
      );
    try {
      await send({ type: unknownType, sessionId: 's1' });
      await send({ type: unknownType, sessionId: 's2' });
      // A known type without its known fields is malformed, not new.
      await send({ type: 'user_changed', user: `u-${tag}` });
      await send({ type: 'user_changed', user: `u-${tag}` });
      await send({ type: 'user_changed', userId: `u-${tag}`, reason: 'role' });
      await vi.waitFor(() =>
        expect(seen.some((event) => event.type === 'user_changed' && event.userId === `u-${tag}`)).toBe(true),
      );
      const about = warn.mock.calls.filter(([, detail]) => detail?.type === unknownType);
      expect(about).toHaveLength(1);
      expect(about[0]?.[0]).toMatch(/does not know/);
      const malformed = warn.mock.calls.filter(([message]) => /fails its schema/.test(message));
      expect(malformed.map(([, detail]) => detail?.type)).toEqual(['user_changed']);
    } finally {
      publisher.disconnect();
      await bus.close();
      await connections.close();
    }
  });
});
