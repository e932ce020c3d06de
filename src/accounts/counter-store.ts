import type { Redis } from 'ioredis';

/** A fixed-window counter's state. */
export interface WindowCount {
  /** Hits in the current window. */
  count: number;
  /** When the window (and so the count) expires, epoch ms. */
  resetAt: number;
}

/** Counters that expire on their own; shared across instances when backed by Redis. */
export interface CounterStore {
  /** Adds one hit to `key`, opening a window of `windowMs` if none is open. */
  increment(key: string, windowMs: number): Promise<WindowCount>;
  /** The current window of `key`, if one is open. */
  peek(key: string): Promise<WindowCount | undefined>;
  /** Takes one hit off `key`'s open window, if any. */
  decrement(key: string): Promise<void>;
  /** Clears `key`. */
  reset(key: string): Promise<void>;
}

/** An in-process {@link CounterStore}. */
export function createMemoryCounterStore(clock: () => number): CounterStore {
  const windows = new Map<string, WindowCount>();
  const live = (key: string) => {
    const entry = windows.get(key);
    if (entry !== undefined && entry.resetAt <= clock()) {
      windows.delete(key);
      return undefined;
    }
    return entry;
  };
  return {
    async increment(key, windowMs) {
      const entry = live(key) ?? { count: 0, resetAt: clock() + windowMs };
      entry.count += 1;
      windows.set(key, entry);
      if (windows.size > 100_000) for (const k of windows.keys()) live(k);
      return { ...entry };
    },
    async peek(key) {
      const entry = live(key);
      return entry && { ...entry };
    },
    async decrement(key) {
      const entry = live(key);
      if (entry !== undefined && entry.count > 0) entry.count -= 1;
    },
    async reset(key) {
      windows.delete(key);
    },
  };
}

/** A Redis-backed {@link CounterStore}: INCR plus PEXPIRE NX, so the window starts at the first hit. */
export function createRedisCounterStore(redis: Redis, prefix = 'gatehouse:count:'): CounterStore {
  return {
    async increment(key, windowMs) {
      const result = await redis
        .multi()
        .incr(prefix + key)
        .pexpire(prefix + key, windowMs, 'NX')
        .pttl(prefix + key)
        .exec();
      const count = Number(result?.[0]?.[1] ?? 1);
      const ttl = Number(result?.[2]?.[1] ?? windowMs);
      return { count, resetAt: Date.now() + Math.max(ttl, 0) };
    },
    async peek(key) {
      const [count, ttl] = await Promise.all([redis.get(prefix + key), redis.pttl(prefix + key)]);
      if (count === null || ttl < 0) return undefined;
      return { count: Number(count), resetAt: Date.now() + ttl };
    },
    async decrement(key) {
      // Only an existing window: DECR on a missing key would create one without an expiry.
      await redis.eval(
        "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0",
        1,
        prefix + key,
      );
    },
    async reset(key) {
      await redis.del(prefix + key);
    },
  };
}
