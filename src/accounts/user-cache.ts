import type { EventBus } from '../events/event-bus.js';
import { BoundedMap } from '../lib/bounded-map.js';
import { createCacheEpochs } from '../lib/cache-epochs.js';
import type { CacheStats } from '../lib/cache-stats.js';
import { hasElapsed } from '../lib/elapsed.js';
import { isDatabaseUnavailable } from '../storage/open-database.js';
import type { UserStore } from '../storage/user-store.js';
import { type AccountUser, withoutHash } from './public-user.js';

/**
 * Users by id, cached so guards need no database read per request. Every change to a user
 * publishes `user_changed`, which evicts the entry here and on every other instance.
 *
 * Staleness bound: an entry is never older than `maxAgeMs` (default {@link USER_CACHE_MAX_AGE_MS}),
 * and an eviction (local or from the bus) takes effect at once. A read that started before an
 * eviction never fills the cache with the row it read (it may be the pre-change row), so a
 * demoted admin cannot come back through a slow read racing the eviction. Only a `user_changed`
 * message lost by the bus (Redis pub/sub is at-most-once) leaves a stale entry, and then for at
 * most `maxAgeMs`; role changes and disabling also revoke the user's sessions, which reach every
 * instance through the revocation list within `REVOCATION_RELOAD_INTERVAL`.
 *
 * During a database outage (issue 9: JWT-authenticated reads keep working from what the instance
 * loaded) an entry past `maxAgeMs` whose re-read fails with "database unavailable" is still served,
 * up to `maxStaleMs` after it was read, and the store is asked again at most every
 * {@link USER_CACHE_RETRY_MS} instead of on every request (each attempt may cost a connect
 * timeout): once any re-read failed so, no other stale entry is re-read before then either. No user can change while the database is down, and evictions still apply at once.
 * After the bus re-subscribed ({@link UserCache.expireAll}: evictions may have been lost while it
 * was away), entries are re-read, and an entry read before a re-subscribe is served as stale only
 * within `maxAgeMs` of the first re-subscribe after its read (`lib/cache-epochs.ts`).
 */
export interface UserCache {
  /** The user, from memory or the store. */
  get(id: string): Promise<AccountUser | undefined>;
  /**
   * The user when a fresh entry is cached (what {@link get} would answer without a read),
   * synchronously; `undefined` otherwise, then call {@link get}. For the request hot path.
   */
  peek(id: string): AccountUser | undefined;
  /** Forgets a user (after a change this instance made; the bus handles the others). */
  evict(id: string): void;
  /**
   * Forgets every user and cancels every fill in flight (the global generation bump).
   */
  clear(): void;
  /**
   * Makes every entry re-read on its next use (reads in flight fill no fresh entry), when the bus
   * reconnected and may have dropped evictions. Unlike {@link clear} the entries stay for
   * stale-if-error, but only for `maxAgeMs` after this call (the bound of a lost eviction): a
   * Redis that comes back before the database does not turn every request into a 503 at once, and
   * an entry whose eviction may have been lost is not served for `maxStaleMs`.
   */
  expireAll(): void;
  /** Unsubscribes from the bus. */
  close(): void;
  /** Hits (fresh, or stale while the database is away) and misses since start. */
  stats(): CacheStats;
}

/** Default upper bound on the age of a cached user, in ms. */
export const USER_CACHE_MAX_AGE_MS = 30_000;

/** Default for how long past its read an entry may be served while the database is unavailable. */
export const USER_CACHE_MAX_STALE_MS = 10 * 60_000;

/** While the database is unavailable, a stale entry's re-read is retried at most this often. */
export const USER_CACHE_RETRY_MS = 5_000;

/** Options of {@link createUserCache}. */
export interface UserCacheOptions {
  /** Entries kept at most; the oldest go first when full. @default 10000 */
  maxEntries?: number;
  /** An entry older than this is re-read. @default {@link USER_CACHE_MAX_AGE_MS} */
  maxAgeMs?: number;
  /** Served this long after its read while the database is unavailable. @default {@link USER_CACHE_MAX_STALE_MS} */
  maxStaleMs?: number;
  /** The clock in epoch ms. @default Date.now */
  clock?: () => number;
}

interface CachedUser {
  user: AccountUser;
  readAt: number;
  /** The cache's epoch when the read began: an older one is not fresh (see expireAll). */
  epoch: number;
  /** Set after a re-read failed because the database is unavailable: no new attempt before it. */
  retryAt?: number;
}

/** A read in flight; `stale` turns true when the user is evicted before the read returns. */
interface PendingRead {
  stale: boolean;
}

/** Creates a bounded {@link UserCache}. */
export function createUserCache(store: UserStore, bus: EventBus, options: UserCacheOptions = {}): UserCache {
  const maxAgeMs = options.maxAgeMs ?? USER_CACHE_MAX_AGE_MS;
  const maxStaleMs = options.maxStaleMs ?? USER_CACHE_MAX_STALE_MS;
  const clock = options.clock ?? Date.now;
  const users = new BoundedMap<string, CachedUser>(options.maxEntries ?? 10_000);
  // Reads in flight per user id. Bounded by the number of concurrent reads: every read removes
  // itself when it settles. An eviction marks the user's reads stale instead of bumping a
  // per-user counter, so there is no per-user state to keep once nothing is in flight.
  const pending = new Map<string, Set<PendingRead>>();
  // Ended by expireAll: entries of an older epoch are not fresh, whatever their age, and serve as
  // stale only until `maxAgeMs` after their own epoch ended.
  const epochs = createCacheEpochs(maxAgeMs);
  // Until when the database counts as away (the last re-read that failed so, plus the retry
  // interval): other entries past their age are then served stale without a read of their own.
  let awayUntil = Number.NEGATIVE_INFINITY;
  const fresh = (cached: CachedUser, now: number) =>
    cached.epoch === epochs.current() && !hasElapsed(now, cached.readAt, maxAgeMs);

  const evict = (id: string) => {
    users.delete(id);
    for (const read of pending.get(id) ?? []) read.stale = true;
  };

  const unsubscribe = bus.subscribe((event) => {
    if (event.type === 'user_changed') evict(event.userId);
  });

  const counts: CacheStats = { hits: 0, misses: 0 };
  return {
    peek(id) {
      const cached = users.get(id);
      if (cached === undefined || !fresh(cached, clock())) return undefined;
      counts.hits += 1;
      return cached.user;
    },
    async get(id) {
      const now = clock();
      const cached = users.get(id);
      if (cached !== undefined && fresh(cached, now)) {
        counts.hits += 1;
        return cached.user;
      }
      const usableStale =
        cached !== undefined &&
        !hasElapsed(now, cached.readAt, maxStaleMs) &&
        epochs.servesStale(cached.epoch, now);
      // Not one timeout per user: during an outage, once one re-read failed, the others wait for
      // the retry interval too (red-team 2026-12h F4: a request paid this read's timeout, then its
      // route's own, ≈ 10 s before its 503).
      if (usableStale && ((cached.retryAt !== undefined && now < cached.retryAt) || now < awayUntil)) {
        counts.hits += 1;
        return cached.user;
      }
      counts.misses += 1;
      const readEpoch = epochs.current();
      const read: PendingRead = { stale: false };
      let reads = pending.get(id);
      if (reads === undefined) {
        reads = new Set();
        pending.set(id, reads);
      }
      reads.add(read);
      try {
        const user = await store.findUserById(id);
        // The database answers: no longer away.
        awayUntil = Number.NEGATIVE_INFINITY;
        // Fill only if nothing evicted this user while the query ran: otherwise the row may
        // predate the change and would sit in the cache after its eviction.
        const account = user === undefined ? undefined : withoutHash(user);
        if (!read.stale) {
          if (account === undefined) users.delete(id);
          else users.set(id, { user: account, readAt: now, epoch: readEpoch });
        }
        return account;
      } catch (error) {
        const away = isDatabaseUnavailable(error);
        if (away) awayUntil = now + USER_CACHE_RETRY_MS;
        // Stale-if-error: the entry was right when read, and nothing can change it while the
        // database is away; an eviction meanwhile removed it from `users`, so it is not served.
        if (usableStale && !read.stale && away && users.get(id) === cached) {
          cached.retryAt = now + USER_CACHE_RETRY_MS;
          return cached.user;
        }
        throw error;
      } finally {
        reads.delete(read);
        if (reads.size === 0) pending.delete(id);
      }
    },
    evict,
    clear() {
      users.clear();
      for (const reads of pending.values()) for (const read of reads) read.stale = true;
    },
    expireAll() {
      // Reads in flight fill with the epoch they began in, so never a fresh entry; they keep their
      // stale-if-error answer. `retryAt` stays: while the database is down, one read per entry.
      epochs.expireAll(clock());
    },
    close: unsubscribe,
    stats: () => ({ ...counts }),
  };
}
