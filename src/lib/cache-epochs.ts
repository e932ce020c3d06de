import { hasElapsed } from './elapsed.js';

/**
 * The epochs of a cache whose evictions arrive over a bus that can drop them (Redis away): each
 * re-subscribe ends an epoch, since an eviction published meanwhile may be lost. An entry read in
 * an ended epoch is never fresh again; it may still be served as stale (the database away) only
 * within `graceMs` of the end of *its own* epoch, the bound of an eviction lost before that end.
 * Measured from the latest re-subscribe instead, a Redis dropping every few seconds kept every
 * old entry servable for as long as it kept dropping (red-team 2026-12h, left open then).
 */
export interface CacheEpochs {
  /** The epoch entries read now belong to. */
  current(): number;
  /** Ends the current epoch at `now` (the bus re-subscribed). */
  expireAll(now: number): void;
  /** Whether an entry read in `epoch` may be served as stale at `now`. */
  servesStale(epoch: number, now: number): boolean;
}

/**
 * Creates {@link CacheEpochs}. It remembers when each epoch ended for `graceMs`, and at most
 * `maxRemembered` of them (a bus flapping faster than that forgets the oldest, whose entries then
 * serve no more: the safe side).
 */
export function createCacheEpochs(graceMs: number, maxRemembered = 64): CacheEpochs {
  let current = 0;
  // Epoch → when it ended, oldest first (a Map keeps insertion order).
  const endedAt = new Map<number, number>();
  return {
    current: () => current,
    expireAll(now) {
      endedAt.set(current, now);
      current += 1;
      for (const [epoch, at] of endedAt) {
        if (endedAt.size <= maxRemembered && !hasElapsed(now, at, graceMs)) break;
        endedAt.delete(epoch);
      }
    },
    servesStale(epoch, now) {
      if (epoch === current) return true;
      const ended = endedAt.get(epoch);
      return ended !== undefined && !hasElapsed(now, ended, graceMs);
    },
  };
}
