import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createMemoryCounterStore,
  createResilientCounterStore,
  hashCounterKey,
} from '../../src/accounts/counter-store.js';
import {
  type CoreWarn,
  createRedisConnections,
  PROBE_INTERVAL_MS,
  type RedisConnections,
} from '../../src/events/redis-connections.js';
import { createGatehouse } from '../../src/gatehouse.js';
import { testConfig } from '../../src/testing.js';
import { type PrivateRedis, runPrivateRedisTests, startPrivateRedis } from '../support/private-redis.js';

// The steps of one outage scenario (up, frozen or down, back), in order: `shuffle: false` keeps
// them so when the run shuffles; the file itself runs in any order.
describe.runIf(runPrivateRedisTests)(
  'createResilientCounterStore against a failing Redis',
  { shuffle: false },
  () => {
    let redis: PrivateRedis;
    let connections: RedisConnections;
    let inspect: Redis;
    const warn = vi.fn<CoreWarn>();

    beforeAll(async () => {
      redis = await startPrivateRedis();
      connections = createRedisConnections(
        { url: redis.url, commandTimeoutMs: 200, connectTimeoutMs: 500, maxReconnectDelayMs: 100 },
        warn,
      );
      inspect = new Redis({ ...redis.clientOptions, lazyConnect: true, maxRetriesPerRequest: 0 });
      inspect.on('error', () => {});
    });
    afterAll(async () => {
      inspect?.disconnect();
      await connections?.close();
      await redis?.stop();
    });

    const store = () =>
      createResilientCounterStore({ connections, fallback: createMemoryCounterStore(Date.now) });

    it('counts in Redis while it answers', async () => {
      await vi.waitFor(() => expect(connections.usable()).toBe(true));
      const counters = store();
      // While Redis answers, no caller takes the synchronous (local) path (issue 10's fast path).
      expect(counters.synchronous?.()).toBeUndefined();
      expect((await counters.increment('k1', 60_000)).count).toBe(1);
      expect((await counters.increment('k1', 60_000)).count).toBe(2);
      await inspect.connect();
      expect(await inspect.get(`gatehouse:count:${hashCounterKey('k1')}`)).toBe('2');
    });

    it('answers from local counters when Redis is frozen, and goes back to Redis when it thaws', async () => {
      const counters = store();
      redis.freeze();
      try {
        // The first call waits out the command timeout, then answers locally; the next ones do not wait.
        expect((await counters.increment('k2', 60_000)).count).toBe(1);
        expect(connections.state()).toBe('down');
        expect((await counters.increment('k2', 60_000)).count).toBe(2);
        expect(await counters.peek('k2')).toMatchObject({ count: 2 });
      } finally {
        redis.thaw();
      }
      await vi.waitFor(() => expect(connections.state()).toBe('up'), { timeout: 5000 });
      // Counted in Redis again. The INCR that timed out while frozen was still in the socket and Redis
      // ran it on thaw, so Redis may hold one more hit than it answered: over-counting, never under.
      const after = await counters.increment('k2', 60_000);
      expect(await inspect.get(`gatehouse:count:${hashCounterKey('k2')}`)).toBe(String(after.count));
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('Redis command failed'), expect.anything());
    });

    it('answers locally at once while Redis is killed, and goes back to it after a restart', async () => {
      const counters = store();
      await redis.kill();
      await vi.waitFor(() => expect(connections.usable()).toBe(false));
      expect((await counters.increment('k3', 60_000)).count).toBe(1);
      // The synchronous view is the fallback's while Redis is unusable: the same local counters.
      expect(counters.synchronous?.()?.peek('k3')).toMatchObject({ count: 1 });
      await counters.decrement('k3');
      await counters.reset('k3');
      await redis.restart();
      await vi.waitFor(() => expect(connections.state()).toBe('up'), { timeout: 5000 });
      expect(counters.synchronous?.()).toBeUndefined();
      expect((await counters.increment('k3', 60_000)).count).toBe(1);
      await vi.waitFor(async () =>
        expect(await inspect.get(`gatehouse:count:${hashCounterKey('k3')}`)).toBe('1'),
      );
    });

    // Redis's default policy: at maxmemory it answers PING but refuses writes ("OOM command not
    // allowed"). The probe was a PING, so each second the counters went back to Redis, the next
    // INCR failed and took them off again: state flapping, two warnings a second, and every
    // limit counted partly in Redis and partly here.
    it('stays on local counters while Redis is full (noeviction), and goes back once it takes writes', async () => {
      const counters = store();
      await inspect.config('SET', 'maxmemory-policy', 'noeviction');
      await inspect.config('SET', 'maxmemory', '1');
      warn.mockClear();
      try {
        expect((await counters.increment('k4', 60_000)).count).toBe(1);
        expect(connections.state()).toBe('down');
        // Three probes' worth of time: Redis stays unused, and nothing more is logged.
        const until = Date.now() + 3.5 * PROBE_INTERVAL_MS;
        while (Date.now() < until) {
          expect(connections.state()).toBe('down');
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect((await counters.increment('k4', 60_000)).count).toBe(2);
        expect(warn).toHaveBeenCalledTimes(1);
        expect(warn).toHaveBeenCalledWith(
          'Redis command failed; using local state until Redis answers',
          expect.objectContaining({ error: expect.stringMatching(/OOM|EXECABORT/) }),
        );
      } finally {
        await inspect.config('SET', 'maxmemory', '0');
      }
      await vi.waitFor(() => expect(connections.state()).toBe('up'), { timeout: 5000 });
      expect((await counters.increment('k5', 60_000)).count).toBe(1);
      expect(await inspect.get(`gatehouse:count:${hashCounterKey('k5')}`)).toBe('1');
    });

    // Review 2026-12-04: counters run a script; the probe was a plain SET. A Redis whose ACL
    // forbids scripting (some managed services) refused every count while the probe put the counters
    // back on it each second: counts split between Redis and here, as on Redis 6 before.
    it('stays on local counters while Redis refuses scripts, and goes back once it runs them', async () => {
      const counters = store();
      await inspect.call('ACL', 'SETUSER', 'default', '-@scripting');
      try {
        expect((await counters.increment('k6', 60_000)).count).toBe(1);
        expect(connections.state()).toBe('down');
        const until = Date.now() + 2.5 * PROBE_INTERVAL_MS;
        while (Date.now() < until) {
          expect(connections.state()).toBe('down');
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect((await counters.increment('k6', 60_000)).count).toBe(2);
      } finally {
        await inspect.call('ACL', 'SETUSER', 'default', '+@scripting');
      }
      await vi.waitFor(() => expect(connections.state()).toBe('up'), { timeout: 5000 });
      expect((await counters.increment('k7', 60_000)).count).toBe(1);
    });
  },
);

describe('Gatehouse.redisState', () => {
  it('is disabled without REDIS_URL', async () => {
    const gatehouse = await createGatehouse(testConfig());
    try {
      expect(gatehouse.redisState()).toBe('disabled');
    } finally {
      await gatehouse.close();
    }
  });
});
