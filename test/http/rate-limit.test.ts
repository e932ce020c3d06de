import { describe, expect, it } from 'vitest';
import { type CounterKey, createMemoryCounterStore } from '../../src/accounts/counter-store.js';
import { GatehouseError } from '../../src/errors.js';
import { enforceAddressRateLimit, NETWORK_LIMIT_FACTOR } from '../../src/http/rate-limit.js';

const LIMIT = { prefix: 'test', max: 2, windowMs: 60_000, message: 'Too many.' };

/** A memory store that records the key of every increment. */
function countingStore() {
  const clock = () => 1_000_000;
  const store = createMemoryCounterStore(clock);
  const incremented: string[] = [];
  const increment = store.increment.bind(store);
  store.increment = (key: CounterKey, windowMs: number) => {
    incremented.push(typeof key === 'string' ? key : key.key);
    return increment(key, windowMs);
  };
  return { store, clock, incremented };
}

const attempt = (store: ReturnType<typeof countingStore>, ip: string) =>
  enforceAddressRateLimit(store.store, LIMIT, ip, store.clock).then(
    () => 'ok',
    (error: unknown) => (error instanceof GatehouseError ? error.code : 'other'),
  );

describe('enforceAddressRateLimit', () => {
  it('refuses an IPv6 /48 over its allowance before counting a /64 of it (no key per refused request, red-team 2026-12l N1)', async () => {
    const counting = countingStore();
    const allowance = LIMIT.max * NETWORK_LIMIT_FACTOR;
    const results: string[] = [];
    for (let i = 0; i < allowance + 50; i++)
      results.push(await attempt(counting, `2001:db8:77:${i.toString(16)}::1`));
    expect(results.slice(0, allowance).every((result) => result === 'ok')).toBe(true);
    expect(results.slice(allowance).every((result) => result === 'TOO_MANY_REQUESTS')).toBe(true);
    // One /64 key per allowed request; before, each of the 50 refused requests from a fresh /64
    // made one more.
    const addressKeys = new Set(counting.incremented.filter((key) => key.startsWith('test:ip:')));
    expect(addressKeys.size).toBe(allowance);
  });

  it('still spends none of the network’s allowance on an address refused for itself', async () => {
    const counting = countingStore();
    for (let i = 0; i < 10; i++) await attempt(counting, '2001:db8:1:1::1');
    // The /64 had 2; its 8 refusals were not counted against the /48, so its neighbours still pass.
    for (let i = 0; i < LIMIT.max * NETWORK_LIMIT_FACTOR - 2; i++) {
      expect(await attempt(counting, `2001:db8:1:${(i + 2).toString(16)}::1`)).toBe('ok');
    }
  });

  it('works with a store that has no peek (an app’s own counters), counting as before', async () => {
    const store = createMemoryCounterStore(() => 0);
    const incrementOnly = { increment: store.increment.bind(store) };
    await expect(
      enforceAddressRateLimit(incrementOnly, LIMIT, '2001:db8:5::1', () => 0),
    ).resolves.toBeUndefined();
    await enforceAddressRateLimit(incrementOnly, LIMIT, '2001:db8:5::1', () => 0);
    await expect(
      enforceAddressRateLimit(incrementOnly, LIMIT, '2001:db8:5::1', () => 0),
    ).rejects.toMatchObject({
      code: 'TOO_MANY_REQUESTS',
    });
  });

  it('counts an IPv4 address once', async () => {
    const counting = countingStore();
    expect(await attempt(counting, '192.0.2.1')).toBe('ok');
    expect(await attempt(counting, '192.0.2.1')).toBe('ok');
    expect(await attempt(counting, '192.0.2.1')).toBe('TOO_MANY_REQUESTS');
    expect(counting.incremented.every((key) => key === 'test:ip:192.0.2.1')).toBe(true);
  });
});
