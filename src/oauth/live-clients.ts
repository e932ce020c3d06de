import type { EventBus } from '../events/event-bus.js';
import { BoundedMap } from '../lib/bounded-map.js';
import { createCacheEpochs } from '../lib/cache-epochs.js';
import { hasElapsed } from '../lib/elapsed.js';
import { isDatabaseUnavailable } from '../storage/open-database.js';
import { MAX_OAUTH_CLIENTS, type OAuthClient, type OAuthClients } from './oauth-clients.js';

/** Default upper bound on the age of a cached client look-up, in ms. */
export const CLIENT_CACHE_MAX_AGE_MS = 30_000;

/** How long past its read an entry may be served while the database is unavailable. */
const CLIENT_CACHE_MAX_STALE_MS = 10 * 60_000;

/**
 * Registered clients by id, as `client_credentials` tokens need them on every use: a token is
 * accepted only while its client still exists (a removed client's tokens stop working). Cached,
 * so a guard needs no database read per request.
 *
 * Staleness bound: an entry (found, or known gone) is re-read after `maxAgeMs` (default
 * {@link CLIENT_CACHE_MAX_AGE_MS}); a removal publishes `oauth_client_removed`, which evicts the
 * entry here at once and on other instances when the message arrives, so only a message lost by
 * the bus (Redis pub/sub is at-most-once) keeps a removed client's tokens working there, and then
 * for at most `maxAgeMs`. A read that started before an eviction never fills the cache. While the
 * database is unavailable, an entry past its age is still served for up to 10 minutes after its
 * read (nothing can remove a client then), so client-token reads keep working like user JWTs do.
 */
export interface LiveClients {
  /**
   * The client when a fresh entry is cached, synchronously: the client, `null` when it is known to
   * be gone, `undefined` when it must be read (then call {@link get}).
   */
  peek(clientId: string): OAuthClient | null | undefined;
  /** The client, from memory or the store; `null` when no such client exists. */
  get(clientId: string): Promise<OAuthClient | null>;
  /** Forgets a client (after a removal this instance made; the bus tells the others). */
  evict(clientId: string): void;
  /**
   * Makes every entry re-read on its next use, when the bus reconnected and may have dropped
   * `oauth_client_removed` messages. The entries stay for stale-if-error, but only for `maxAgeMs`
   * after this call (the bound of a lost removal), so a Redis back before the database does not
   * fail client tokens at once, and a client whose removal may have been lost is not served long.
   */
  expireAll(): void;
  /** Unsubscribes from the bus. */
  close(): void;
}

/** Options of {@link createLiveClients}. */
export interface LiveClientsOptions {
  /** The clock in epoch ms. */
  clock: () => number;
  /** An entry older than this is re-read. @default {@link CLIENT_CACHE_MAX_AGE_MS} */
  maxAgeMs?: number;
}

interface CachedClient {
  client: OAuthClient | null;
  readAt: number;
  /** The cache's epoch when the read began: an older one is not fresh (see expireAll). */
  epoch: number;
  /** Set when a re-read failed because the database is unavailable: no new attempt before it. */
  retryAt?: number;
}

/** While the database is unavailable, a stale entry's re-read is retried at most this often. */
export const CLIENT_CACHE_RETRY_MS = 5_000;

/**
 * Creates the {@link LiveClients} cache. Bounded: one entry per client id that a verified token
 * named, at most twice {@link MAX_OAUTH_CLIENTS} (the oldest go first), so ids of removed clients
 * cannot crowd out live ones.
 */
export function createLiveClients(
  clients: Pick<OAuthClients, 'find'>,
  bus: EventBus,
  options: LiveClientsOptions,
): LiveClients {
  const { clock } = options;
  const maxAgeMs = options.maxAgeMs ?? CLIENT_CACHE_MAX_AGE_MS;
  const cache = new BoundedMap<string, CachedClient>(2 * MAX_OAUTH_CLIENTS);
  // Bumped by every eviction: a read that began before one must not fill the cache with what may
  // be the row from before the removal. Removals are rare, so one counter for all ids is enough.
  let generation = 0;
  // Ended by expireAll: entries of an older epoch are not fresh, whatever their age, and serve as
  // stale only until `maxAgeMs` after their own epoch ended.
  const epochs = createCacheEpochs(maxAgeMs);
  const usableStale = (cached: CachedClient, now: number) =>
    !hasElapsed(now, cached.readAt, CLIENT_CACHE_MAX_STALE_MS) && epochs.servesStale(cached.epoch, now);
  const fresh = (cached: CachedClient, now: number) =>
    cached.epoch === epochs.current() && !hasElapsed(now, cached.readAt, maxAgeMs);

  const evict = (clientId: string) => {
    cache.delete(clientId);
    generation += 1;
  };
  const unsubscribe = bus.subscribe((event) => {
    if (event.type === 'oauth_client_removed') evict(event.clientId);
  });

  return {
    peek(clientId) {
      const cached = cache.get(clientId);
      if (cached === undefined || !fresh(cached, clock())) return undefined;
      return cached.client;
    },
    async get(clientId) {
      const now = clock();
      const cached = cache.get(clientId);
      if (cached !== undefined && fresh(cached, now)) return cached.client;
      if (cached?.retryAt !== undefined && now < cached.retryAt && usableStale(cached, now)) {
        return cached.client;
      }
      const started = generation;
      const readEpoch = epochs.current();
      try {
        const client = (await clients.find(clientId)) ?? null;
        // With the epoch it began in: a read overtaken by expireAll fills no fresh entry.
        if (generation === started) cache.set(clientId, { client, readAt: now, epoch: readEpoch });
        return client;
      } catch (error) {
        // Stale-if-error: nothing can remove a client while the database is away, and an
        // eviction meanwhile already deleted the entry, so what is left is still right.
        const stale = cache.get(clientId);
        // Judged now, not at the read's start: an expireAll while it waited must not look like a
        // clock stepped back (which hasElapsed counts as elapsed).
        if (stale !== undefined && isDatabaseUnavailable(error) && usableStale(stale, clock())) {
          // Each attempt may cost a connect timeout: ask again at most every few seconds.
          stale.retryAt = now + CLIENT_CACHE_RETRY_MS;
          return stale.client;
        }
        throw error;
      }
    },
    evict,
    expireAll() {
      // `retryAt` stays: while the database is down, one read per entry every few seconds.
      epochs.expireAll(clock());
    },
    close: unsubscribe,
  };
}
