import type { CounterStore } from '../accounts/counter-store.js';
import { GatehouseError } from '../errors.js';
import { addressBucket } from '../lib/address-bucket.js';

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

/**
 * How many times the allowance of one client address its network gets in all: an IPv6 /48 (a
 * site's usual allocation, RFC 6177 §3, and what a tunnel broker hands out for free) holds 65 536
 * /64s, each of which {@link enforceAddressRateLimit} counts as one address.
 */
export const NETWORK_LIMIT_FACTOR = 4;

/** A limit per client address: {@link RateLimit} with a key prefix instead of a key. */
export interface AddressRateLimit extends Omit<RateLimit, 'key'> {
  /** The counters' key prefix: keys are `<prefix>:ip:<address>` and `<prefix>:net:<network>`. */
  prefix: string;
}

/**
 * {@link enforceRateLimit} per client address (an IPv4 address or an IPv6 /64, `addressBucket`),
 * then, for IPv6, per /48 with {@link NETWORK_LIMIT_FACTOR} times the allowance: counted per /64
 * alone, one /48 would get 65 536 allowances (red-team 2026-12d I5, I8). The network is counted
 * only after the address passed, so a client refused for its own address spends none of its
 * neighbours' share.
 */
export async function enforceAddressRateLimit(
  counters: Pick<CounterStore, 'increment'>,
  limit: AddressRateLimit,
  ip: string,
  clock: () => number,
): Promise<void> {
  const { prefix, ...rest } = limit;
  const address = addressBucket(ip);
  await enforceRateLimit(counters, { ...rest, key: `${prefix}:ip:${address}` }, clock);
  const network = addressBucket(ip, 48);
  // An IPv4 address is its own network: counting it twice would change nothing.
  if (network === address) return;
  await enforceRateLimit(
    counters,
    { ...rest, key: `${prefix}:net:${network}`, max: limit.max * NETWORK_LIMIT_FACTOR },
    clock,
  );
}

/**
 * Gives back one hit that {@link enforceAddressRateLimit} counted under `prefix` for `ip` (its
 * address, and its /48 for IPv6), for limits that count failures only: charged before the attempt,
 * so concurrent tries cannot slip past the cap, and refunded when it succeeds.
 */
export async function refundAddressRateLimit(
  counters: Pick<CounterStore, 'decrement'>,
  prefix: string,
  ip: string,
): Promise<void> {
  const address = addressBucket(ip);
  await counters.decrement(`${prefix}:ip:${address}`);
  const network = addressBucket(ip, 48);
  if (network !== address) await counters.decrement(`${prefix}:net:${network}`);
}
