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
  if (window.count > limit.max) throw tooMany(limit.message, window.resetAt, clock);
}

/** 429 `TOO_MANY_REQUESTS` with `Retry-After` until `resetAt`. */
function tooMany(message: string, resetAt: number, clock: () => number): GatehouseError {
  return new GatehouseError('TOO_MANY_REQUESTS', message, {
    retryAfterSeconds: Math.max(1, Math.ceil((resetAt - clock()) / 1000)),
  });
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
 * neighbours' share. A network already over its allowance is refused before its address is
 * counted: each refused request from a fresh /64 made a key, and one /48's 65 536 of them, a key
 * per route limit, flushed the in-memory counter store's least recently used keys (red-team
 * 2026-12l N1). Now a /48 makes at most its allowance's worth of address keys per limit and window.
 */
export async function enforceAddressRateLimit(
  // `peek` optional: a store without it (an app's own, written before it was used) skips only the
  // pre-check, as before.
  counters: Pick<CounterStore, 'increment'> & Partial<Pick<CounterStore, 'peek'>>,
  limit: AddressRateLimit,
  ip: string,
  clock: () => number,
): Promise<void> {
  const { prefix, ...rest } = limit;
  const address = addressBucket(ip);
  const network = addressBucket(ip, 48);
  // An IPv4 address is its own network: counting it twice would change nothing.
  const networkLimit =
    network === address
      ? undefined
      : { ...rest, key: `${prefix}:net:${network}`, max: limit.max * NETWORK_LIMIT_FACTOR };
  if (networkLimit !== undefined && counters.peek !== undefined) {
    const spent = await counters.peek(networkLimit.key);
    if (spent !== undefined && spent.count >= networkLimit.max)
      throw tooMany(limit.message, spent.resetAt, clock);
  }
  await enforceRateLimit(counters, { ...rest, key: `${prefix}:ip:${address}` }, clock);
  if (networkLimit !== undefined) await enforceRateLimit(counters, networkLimit, clock);
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
