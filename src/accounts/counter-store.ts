import { hash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisConnections } from '../events/redis-connections.js';
import { hasElapsed } from '../lib/elapsed.js';

/** A fixed-window counter's state. */
export interface WindowCount {
  /** Hits in the current window. */
  count: number;
  /** When the window (and so the count) expires, epoch ms. */
  resetAt: number;
}

/**
 * A counter key whose {@link hashCounterKey} is already computed: built once by
 * {@link hashedCounterKey} and passed to a store any number of times, so a caller that reads and
 * writes the same counter several times per request (login throttling: up to five calls per key
 * in a login) hashes it once. The store uses `hashed` exactly where it would have hashed `key`, so
 * Redis key names are the same either way.
 */
export interface HashedCounterKey {
  /** The key as callers name it. */
  readonly key: string;
  /** `hashCounterKey(key)`. */
  readonly hashed: string;
}

/** A counter key: a string, or a {@link HashedCounterKey} made from one. */
export type CounterKey = string | HashedCounterKey;

/**
 * Counters that expire on their own; shared across instances when backed by Redis.
 *
 * Keys may be anything (an e-mail address, an IP, a made-up username of any length): every store
 * keeps only {@link hashCounterKey} of a key, so state per key is fixed-size whatever callers pass.
 */
export interface CounterStore {
  /** Adds one hit to `key`, opening a window of `windowMs` if none is open. */
  increment(key: CounterKey, windowMs: number): Promise<WindowCount>;
  /** The current window of `key`, if one is open. */
  peek(key: CounterKey): Promise<WindowCount | undefined>;
  /** Takes one hit off `key`'s open window, if any. */
  decrement(key: CounterKey): Promise<void>;
  /** Clears `key`. */
  reset(key: CounterKey): Promise<void>;
  /**
   * The store that would answer a call made now, when it answers synchronously: the in-process
   * store always, the resilient store while Redis is unusable; undefined when the answer needs
   * Redis. A caller making several calls in one operation asks once and then skips a promise and
   * a microtask per call (a login's throttle made ≈ 11 store calls, issue 10). Optional: a store
   * without it is always called through the asynchronous methods.
   */
  synchronous?(): SyncCounterStore | undefined;
}

/** A {@link CounterStore}'s operations answered synchronously: see {@link CounterStore.synchronous}. */
export interface SyncCounterStore {
  /** As {@link CounterStore.increment}. */
  increment(key: CounterKey, windowMs: number): WindowCount;
  /** As {@link CounterStore.peek}. */
  peek(key: CounterKey): WindowCount | undefined;
  /** As {@link CounterStore.decrement}. */
  decrement(key: CounterKey): void;
  /** As {@link CounterStore.reset}. */
  reset(key: CounterKey): void;
}

/**
 * The fixed-size form of a counter key: SHA-256 truncated to 128 bits, base64url (22 characters).
 * 128 bits keep accidental collisions out of reach (birthday bound ≈ 2^64 keys), and an attacker
 * gains nothing from crafting one: colliding with a victim's key would only share its counter.
 */
export function hashCounterKey(key: string): string {
  // crypto.hash: one call, no Hash object.
  return hash('sha256', key, 'buffer').subarray(0, 16).toString('base64url');
}

/** `key` with its {@link hashCounterKey} computed now, for a caller that uses it more than once. */
export function hashedCounterKey(key: string): HashedCounterKey {
  return { key, hashed: hashCounterKey(key) };
}

/** The stored form of `key`: hashed now, or taken from a {@link HashedCounterKey}. */
function storedKey(key: CounterKey): string {
  return typeof key === 'string' ? hashCounterKey(key) : key.hashed;
}

/** A window of {@link createMemoryCounterStore}: its count, and when it opened and ends (epoch ms). */
interface OpenWindow extends WindowCount {
  openedAt: number;
}

/** Options of {@link createMemoryCounterStore}. */
export interface MemoryCounterStoreOptions {
  /**
   * Most keys held; the least recently used (incremented or read) is forgotten to make room.
   * @default 100000
   */
  maxKeys?: number;
}

/**
 * A {@link createMemoryCounterStore}: always synchronous, and able to take a count another store
 * answered ({@link MemoryCounterStore.adopt}), which is how the resilient store keeps its local
 * counters in step with Redis.
 */
export interface MemoryCounterStore extends CounterStore {
  synchronous(): SyncCounterStore;
  /**
   * Sets `key`'s window to `window` (a count and the milliseconds it has left), or clears it when
   * `window` is undefined: the answer Redis just gave for the key.
   */
  adopt(key: CounterKey, window: { count: number; ttlMs: number } | undefined): void;
}

/**
 * An in-process {@link CounterStore}, bounded by `maxKeys` with O(1) work per call whatever it
 * holds (OWASP: limiter state must not become the resource an attacker exhausts).
 *
 * A `Map` keeps insertion order, so deleting and re-inserting a key on each use makes its first
 * key the least recently used: eviction is `keys().next()`, with no scan or timer.
 * Expired windows are dropped when touched or when they reach the front. The trade-off: a flood of
 * `maxKeys` distinct keys forgets a quiet key's count. Keys under attack are the ones being
 * incremented or checked (`peek` moves a key to the back too: a locked-out account's refused tries
 * only read it), so they stay at the back; the per-IP and global limits bound the flood itself.
 * Nothing whose loss would bypass a security property lives here: single-use markers are database
 * rows (`storage/spent-challenge-store.ts`).
 */
export function createMemoryCounterStore(
  clock: () => number,
  options: MemoryCounterStoreOptions = {},
): MemoryCounterStore {
  const maxKeys = options.maxKeys ?? 100_000;
  const windows = new Map<string, OpenWindow>();
  const live = (hashed: string) => {
    const entry = windows.get(hashed);
    // A window ends at its resetAt, or at once when the wall clock was stepped back past its
    // opening: measured from the new time, a lockout would otherwise last the step longer (an
    // hour back, an hour more of 429s), and Retry-After would say so.
    if (entry !== undefined && hasElapsed(clock(), entry.openedAt, entry.resetAt - entry.openedAt)) {
      windows.delete(hashed);
      return undefined;
    }
    return entry;
  };
  const view = (entry: OpenWindow): WindowCount => ({ count: entry.count, resetAt: entry.resetAt });
  /** Puts `entry` last (most recently used) and forgets the least recently used key beyond `maxKeys`. */
  const store = (hashed: string, entry: OpenWindow) => {
    windows.delete(hashed);
    windows.set(hashed, entry);
    if (windows.size > maxKeys) {
      const oldest = windows.keys().next();
      if (oldest.done !== true) windows.delete(oldest.value);
    }
  };
  const local: SyncCounterStore = {
    increment(key, windowMs) {
      const hashed = storedKey(key);
      let entry = live(hashed);
      if (entry === undefined) {
        const now = clock();
        entry = { count: 0, openedAt: now, resetAt: now + windowMs };
      }
      entry.count += 1;
      store(hashed, entry);
      return view(entry);
    },
    peek(key) {
      const hashed = storedKey(key);
      const entry = live(hashed);
      if (entry === undefined) return undefined;
      // A read counts as use: a locked-out key is only checked (refused tries never increment it),
      // and must not drift to the front where a flood of other keys would evict it.
      windows.delete(hashed);
      windows.set(hashed, entry);
      return view(entry);
    },
    decrement(key) {
      const entry = live(storedKey(key));
      if (entry !== undefined && entry.count > 0) entry.count -= 1;
    },
    reset(key) {
      windows.delete(storedKey(key));
    },
  };
  return {
    increment: async (key, windowMs) => local.increment(key, windowMs),
    peek: async (key) => local.peek(key),
    decrement: async (key) => local.decrement(key),
    reset: async (key) => local.reset(key),
    synchronous: () => local,
    adopt(key, window) {
      const hashed = storedKey(key);
      if (window === undefined || window.count <= 0 || window.ttlMs <= 0) {
        windows.delete(hashed);
        return;
      }
      const now = clock();
      store(hashed, { count: window.count, openedAt: now, resetAt: now + window.ttlMs });
    },
  };
}

/**
 * One counter hit, atomically: INCR, and an expiry set only when the key has none, so the window
 * starts at the first hit; answers the count and the milliseconds left. A script rather than
 * `PEXPIRE … NX`, which Redis before 7.0 refuses: the whole MULTI failed there, every hit fell
 * back to a local count while the health probe (a plain SET) kept finding Redis up, and login
 * throttling let an attacker try a password a second per account (operator red-team 2026-12-04).
 */
const INCREMENT_SCRIPT = `local count = redis.call('incr', KEYS[1])
local ttl = redis.call('pttl', KEYS[1])
if ttl < 0 then
  redis.call('pexpire', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}`;

/** A Redis counter's answer: its count and the milliseconds its window has left. */
interface RedisWindow {
  count: number;
  ttlMs: number;
}

/** The Redis commands behind the counter stores, answering counts with their time left. */
function redisCounterCommands(redis: Redis, prefix: string) {
  const redisKey = (key: CounterKey) => prefix + storedKey(key);
  return {
    async increment(key: CounterKey, windowMs: number): Promise<RedisWindow> {
      const result = (await redis.eval(INCREMENT_SCRIPT, 1, redisKey(key), Math.ceil(windowMs))) as [
        number,
        number,
      ];
      return { count: Number(result[0]), ttlMs: Math.max(Number(result[1]), 0) };
    },
    async peek(key: CounterKey): Promise<RedisWindow | undefined> {
      const k = redisKey(key);
      const [count, ttl] = await Promise.all([redis.get(k), redis.pttl(k)]);
      if (count === null || ttl < 0) return undefined;
      return { count: Number(count), ttlMs: ttl };
    },
    async decrement(key: CounterKey): Promise<void> {
      // Only an existing window: DECR on a missing key would create one without an expiry.
      await redis.eval(
        "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0",
        1,
        redisKey(key),
      );
    },
    async reset(key: CounterKey): Promise<void> {
      await redis.del(redisKey(key));
    },
  };
}

const windowCount = (window: RedisWindow): WindowCount => ({
  count: window.count,
  resetAt: Date.now() + window.ttlMs,
});

/**
 * A Redis-backed {@link CounterStore}: INCR plus an expiry set at the first hit, so the window
 * starts there ({@link INCREMENT_SCRIPT}, commands Redis 6 has). Keys are
 * `prefix` + {@link hashCounterKey}. Calls reject when Redis does (see
 * {@link createResilientCounterStore} for the store Gatehouse uses).
 */
export function createRedisCounterStore(redis: Redis, prefix = 'gatehouse:count:'): CounterStore {
  const commands = redisCounterCommands(redis, prefix);
  return {
    increment: async (key, windowMs) => windowCount(await commands.increment(key, windowMs)),
    async peek(key) {
      const window = await commands.peek(key);
      return window === undefined ? undefined : windowCount(window);
    },
    decrement: (key) => commands.decrement(key),
    reset: (key) => commands.reset(key),
  };
}

/** Options of {@link createResilientCounterStore}. */
export interface ResilientCounterStoreOptions {
  /** The instance's Redis connections; their health decides which store answers. */
  connections: RedisConnections;
  /**
   * Answers while Redis is down, failing or too busy: a {@link createMemoryCounterStore}, kept in
   * step with every answer Redis gives meanwhile.
   */
  fallback: MemoryCounterStore;
  /** Redis key prefix. @default 'gatehouse:count:' */
  prefix?: string;
}

/**
 * Shared counters in Redis, with local counters standing in while Redis is down, frozen, timing
 * out, or has `MAX_PENDING_COMMANDS` commands awaiting answers: rate limits and login throttling
 * never fail a request because Redis did. Every answer Redis gives is copied into the local
 * counters (the count and its time left; a missing key clears the copy), and a refund or a reset
 * goes to both: a call answered locally starts from the last shared count this instance saw, so
 * an account locked out in Redis stays locked out here when Redis stops answering. Before, the
 * local counters started from nothing, and a flood that kept Redis's command queue full (a busy
 * Redis, nothing failed) or an outage handed a locked-out account's guesser a fresh allowance on
 * every instance (red-team 2026-12p C1).
 *
 * While Redis is away, limits are per instance (from those copies: N instances allow up to N ×
 * what was left), and the counts made meanwhile are not merged back when Redis returns: its next
 * answer for a key replaces the copy. That is the price of Redis being optional rather than a
 * single point of failure. A command stuck on a frozen Redis costs at most `REDIS_COMMAND_TIMEOUT`,
 * and only until the connections are marked failed (see `RedisConnections.usable`).
 */
export function createResilientCounterStore(options: ResilientCounterStoreOptions): CounterStore {
  const { connections, fallback } = options;
  const local = fallback.synchronous();
  const shared = redisCounterCommands(connections.command, options.prefix ?? 'gatehouse:count:');
  /** Runs `call` on Redis while it is usable; undefined when it is not, or when it failed (marked). */
  const onRedis = async <R>(call: () => Promise<R>): Promise<{ answer: R } | undefined> => {
    if (!connections.usable()) return undefined;
    try {
      return { answer: await call() };
    } catch (error) {
      connections.markFailed(error);
      return undefined;
    }
  };
  // Each call reaches both stores: hash a string key once for the two.
  const once = (key: CounterKey): HashedCounterKey => (typeof key === 'string' ? hashedCounterKey(key) : key);
  return {
    async increment(name, windowMs) {
      const key = once(name);
      const answered = await onRedis(() => shared.increment(key, windowMs));
      if (answered === undefined) return local.increment(key, windowMs);
      fallback.adopt(key, answered.answer);
      return windowCount(answered.answer);
    },
    async peek(name) {
      const key = once(name);
      const answered = await onRedis(() => shared.peek(key));
      if (answered === undefined) return local.peek(key);
      fallback.adopt(key, answered.answer);
      return answered.answer === undefined ? undefined : windowCount(answered.answer);
    },
    // Both: the copy follows the refund (else a right code's charge would stay counted here, and
    // the owner be refused once Redis is away), and Redis takes it when it can.
    async decrement(name) {
      const key = once(name);
      local.decrement(key);
      await onRedis(() => shared.decrement(key));
    },
    async reset(name) {
      const key = once(name);
      local.reset(key);
      await onRedis(() => shared.reset(key));
    },
    // The same switch, decided once for the caller's operation: Redis while usable.
    synchronous: () => (connections.usable() ? undefined : local),
  };
}
