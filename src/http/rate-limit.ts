import type { CounterStore } from '../accounts/counter-store.js';
import { GatehouseError } from '../errors.js';

/** One fixed-window limit: at most `max` hits on `key` per `windowMs`. */
export interface RateLimit {
  key: string;
  max: number;
  windowMs: number;
  /** The problem's `detail` when the limit is hit. */
  message: string;
}

/**
 * Counts a hit on the limit's key (shared across instances when the counters live in Redis) and
 * throws 429 `TOO_MANY_REQUESTS` with `Retry-After` once the window holds more than `max`.
 */
export async function enforceRateLimit(
  counters: Pick<CounterStore, 'increment'>,
  limit: RateLimit,
  clock: () => number,
): Promise<void> {
  const window = await counters.increment(limit.key, limit.windowMs);
  if (window.count > limit.max) {
    const retryAfter = Math.max(1, Math.ceil((window.resetAt - clock()) / 1000));
    throw new GatehouseError('TOO_MANY_REQUESTS', limit.message, {
      retryAfterSeconds: retryAfter,
    });
  }
}
