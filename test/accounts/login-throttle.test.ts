import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import {
  type CounterKey,
  type CounterStore,
  createMemoryCounterStore,
  createRedisCounterStore,
  hashCounterKey,
  type SyncCounterStore,
} from '../../src/accounts/counter-store.js';
import {
  ACCOUNT_KEY_CACHE_SIZE,
  ADDRESS_KEY_CACHE_SIZE,
  createLoginThrottle,
  type LoginSubject,
  OPEN_BREAKER_FAILURES_PER_NETWORK,
} from '../../src/accounts/login-throttle.js';
import { createTestClock } from '../../src/testing.js';

const limits = { perAccount: 2, perIp: 3, global: 5, perDevice: 1, windowMs: 60_000 };

function setUp() {
  const clock = createTestClock(1_000_000);
  const store = createMemoryCounterStore(clock);
  return { clock, store, throttle: createLoginThrottle(store, limits, clock) };
}

const untrusted = (accountKey: string | undefined, ip = '10.0.0.1'): LoginSubject => ({
  trust: 'untrusted',
  accountKey,
  ip,
});

/**
 * The memory store's synchronous view, which the throttle calls instead of the promise methods
 * (issue 10): the spies go there.
 */
function syncOf(store: CounterStore): SyncCounterStore {
  const local = store.synchronous?.();
  if (local === undefined) throw new Error('the memory store answers synchronously');
  return local;
}

describe('createLoginThrottle', () => {
  it('checks without writing, and blocks once a counter reaches its limit', async () => {
    const { store, throttle } = setUp();
    const increment = vi.spyOn(syncOf(store), 'increment');
    expect(await throttle.check(untrusted('a@example.com'))).toEqual({ allowed: true });
    expect(increment).not.toHaveBeenCalled();
    await throttle.recordFailure(untrusted('a@example.com'));
    await throttle.recordFailure(untrusted('a@example.com', '10.0.0.2'));
    expect(await throttle.check(untrusted('a@example.com', '10.0.0.3'))).toEqual({
      allowed: false,
      retryAfterSeconds: 60,
    });
    expect(await throttle.check(untrusted('b@example.com'))).toEqual({ allowed: true });
  });

  it('counts failures from one IPv6 /64 under one address: rotating addresses does not escape it', async () => {
    const { throttle } = setUp();
    for (let i = 1; i <= 3; i++) await throttle.recordFailure(untrusted(undefined, `2001:db8:5:5::${i}`));
    expect((await throttle.check(untrusted(undefined, '2001:db8:5:5:abcd::9'))).allowed).toBe(false);
    expect((await throttle.check(untrusted(undefined, '2001:db8:5:6::1'))).allowed).toBe(true);
  });

  it('keeps trusted devices out of the account, IP and global counters, and the reverse', async () => {
    const { throttle } = setUp();
    for (let i = 0; i < 5; i++) await throttle.recordFailure(untrusted(`u${i}@example.com`, `10.0.1.${i}`));
    expect((await throttle.check(untrusted(undefined, '10.9.9.9'))).allowed).toBe(false);
    const device: LoginSubject = { trust: 'trusted', deviceKey: 'nonce' };
    expect((await throttle.check(device)).allowed).toBe(true);
    await throttle.recordFailure(device);
    expect((await throttle.check(device)).allowed).toBe(false);
    expect((await throttle.check({ trust: 'trusted', deviceKey: 'other' })).allowed).toBe(true);
  });

  it('clears only the account or device counter on success, never the IP or global ones', async () => {
    const { throttle } = setUp();
    for (let i = 0; i < 2; i++) await throttle.recordFailure(untrusted('a@example.com', '10.0.2.1'));
    await throttle.recordSuccess(untrusted('a@example.com', '10.0.2.9'));
    expect((await throttle.check(untrusted('a@example.com', '10.0.2.9'))).allowed).toBe(true);
    await throttle.recordFailure(untrusted('b@example.com', '10.0.2.1'));
    await throttle.recordSuccess(untrusted('b@example.com', '10.0.2.1'));
    expect((await throttle.check(untrusted('c@example.com', '10.0.2.1'))).allowed).toBe(false);
  });

  // Red-team F9: an open breaker refused every untrusted login server-wide.
  it('degrades when the breaker is open: quiet addresses still get a try, whoever failed elsewhere', async () => {
    const { throttle } = setUp();
    for (let i = 0; i < 5; i++) await throttle.recordFailure(untrusted(`u${i}@example.com`, `10.0.3.${i}`));
    // A quiet address is admitted, even for an account that failed elsewhere; a username that is
    // no email is not (no account counter to judge it by).
    expect(await throttle.check(untrusted('owner@example.com', '10.7.7.7'))).toEqual({ allowed: true });
    expect((await throttle.check(untrusted('u0@example.com', '10.7.7.7'))).allowed).toBe(true);
    expect((await throttle.check(untrusted(undefined, '10.7.7.7'))).allowed).toBe(false);
    // A stranger's wrong guess does not lock the owner's new device out (the fix of F9's remainder);
    // the account's own limit still applies, breaker or not.
    await throttle.recordFailure(untrusted('owner@example.com', '10.6.6.6'));
    expect((await throttle.check(untrusted('owner@example.com', '10.7.7.8'))).allowed).toBe(true);
    await throttle.recordFailure(untrusted('owner@example.com', '10.6.6.7'));
    expect((await throttle.check(untrusted('owner@example.com', '10.7.7.8'))).allowed).toBe(false);
    // An address is cut off at fewer failures than with the breaker closed.
    for (let i = 0; i < 2; i++) await throttle.recordFailure(untrusted(`s${i}@example.com`, '10.7.7.9'));
    expect((await throttle.check(untrusted('fresh@example.com', '10.7.7.9'))).allowed).toBe(true);
    await throttle.recordFailure(untrusted('s2@example.com', '10.7.7.9'));
    expect((await throttle.check(untrusted('fresh@example.com', '10.7.7.9'))).allowed).toBe(false);
  });

  it('gives one IPv6 /48 a bounded allowance while the breaker is open, not one per /64', async () => {
    const { throttle } = setUp();
    for (let i = 0; i < 5; i++) await throttle.recordFailure(untrusted(`u${i}@example.com`, `10.0.5.${i}`));
    // Each /64 of the site makes 2 failures (under the open breaker's 3 per address) until the
    // site has its allowance; a fresh /64 of that site is then refused, another site is not.
    for (let i = 0; i < OPEN_BREAKER_FAILURES_PER_NETWORK; i++)
      await throttle.recordFailure(untrusted(`v${i}@example.com`, `2001:db8:77:${Math.floor(i / 2)}::1`));
    expect((await throttle.check(untrusted('owner@example.com', '2001:db8:77:ffff::1'))).allowed).toBe(false);
    expect((await throttle.check(untrusted('owner@example.com', '2001:db8:78:1::1'))).allowed).toBe(true);
    expect((await throttle.check(untrusted('owner@example.com', '10.7.7.7'))).allowed).toBe(true);
  });

  it('lets one IPv6 /48 add at most the per-IP limit to the breaker', async () => {
    const { throttle } = setUp();
    // perIp 3, global 5: four /64s of one /48 make 12 failures, of which 3 reach the breaker.
    for (let net = 0; net < 4; net++) {
      for (let i = 0; i < 3; i++)
        await throttle.recordFailure(untrusted(undefined, `2001:db8:9:${net}::${i + 1}`));
    }
    expect((await throttle.check(untrusted(undefined, '10.8.8.8'))).allowed).toBe(true);
    await throttle.recordFailure(untrusted(undefined, '10.8.8.1'));
    await throttle.recordFailure(untrusted(undefined, '10.8.8.2'));
    expect((await throttle.check(untrusted(undefined, '10.8.8.8'))).allowed).toBe(false);
  });

  it('lifts when the window ends', async () => {
    const { clock, throttle } = setUp();
    await throttle.recordFailure(untrusted('a@example.com'));
    await throttle.recordFailure(untrusted('a@example.com'));
    clock.advance(60_000);
    expect((await throttle.check(untrusted('a@example.com'))).allowed).toBe(true);
  });

  it("hashes a subject's keys once for all its calls (a login checks twice, then counts)", async () => {
    const { store, throttle } = setUp();
    const peek = vi.spyOn(syncOf(store), 'peek');
    const reset = vi.spyOn(syncOf(store), 'reset');
    const subject = untrusted('a@example.com', '1.2.3.4');
    await throttle.check(subject);
    await throttle.check(subject);
    await throttle.recordSuccess(subject);
    const [first, second] = [peek.mock.calls.slice(0, 4), peek.mock.calls.slice(4, 8)];
    expect(second.map(([key]) => key)).toEqual(first.map(([key]) => key));
    for (let i = 0; i < 4; i += 1) expect(second[i]?.[0]).toBe(first[i]?.[0]);
    // The account counter cleared on success is the very key object the checks read.
    expect(first.some(([key]) => key === reset.mock.calls[0]?.[0])).toBe(true);
    // A new attempt (a new subject) reads the very same keys: the account's (peeked second) and
    // the address's (peeked first and last) are kept between attempts.
    await throttle.check(untrusted('a@example.com', '1.2.3.4'));
    expect(peek.mock.calls[9]?.[0]).toBe(first[1]?.[0]);
    expect(peek.mock.calls[8]?.[0]).toBe(first[0]?.[0]);
    expect(peek.mock.calls[11]?.[0]).toBe(first[3]?.[0]);
  });

  it("keeps an account's stored key names, and counts it on the same counters after its cached keys were evicted", async () => {
    const clock = createTestClock(1_000_000);
    const store = createMemoryCounterStore(clock);
    const throttle = createLoginThrottle(store, { ...limits, successesPerAccount: 5 }, clock);
    const peek = vi.spyOn(syncOf(store), 'peek');
    const increment = vi.spyOn(syncOf(store), 'increment');
    const digest = (value: string) => createHash('sha256').update(value).digest('base64url').slice(0, 22);
    const named = (prefix: string) => hashCounterKey(`${prefix}:${digest('a@example.com')}`);
    const account = { accountKey: 'a@example.com' };
    await throttle.recordFailure(untrusted('a@example.com'));
    await throttle.checkLogins(account);
    await throttle.checkChallenges(account);
    const hashed = (calls: readonly (readonly [CounterKey, ...unknown[]])[]) =>
      calls.map(([key]) => (typeof key === 'string' ? hashCounterKey(key) : key.hashed));
    // The names the store (and Redis) has always held: one digest of the email, three counters.
    expect(hashed(increment.mock.calls)).toContain(named('login:account'));
    expect(hashed(peek.mock.calls)).toEqual([named('login:success'), named('login:challenge')]);
    // More distinct accounts than the cache holds: the first one's keys are built again, equal.
    for (let i = 0; i <= ACCOUNT_KEY_CACHE_SIZE; i += 1)
      await throttle.checkLogins({ accountKey: `user-${i}@example.com` });
    increment.mockClear();
    await throttle.recordFailure(untrusted('a@example.com'));
    expect(hashed(increment.mock.calls)).toContain(named('login:account'));
    expect(await store.peek({ key: '', hashed: named('login:account') })).toMatchObject({ count: 2 });
  });

  it('counts an address on the same counters after its cached keys were evicted', async () => {
    const { store, throttle } = setUp();
    const increment = vi.spyOn(syncOf(store), 'increment');
    await throttle.recordFailure(untrusted(undefined, '2001:db8:1:2::7'));
    const before = increment.mock.calls.map(([key]) => (typeof key === 'string' ? key : key.hashed));
    // More distinct addresses than the cache holds: the first one's keys are built again.
    for (let i = 0; i <= ADDRESS_KEY_CACHE_SIZE; i += 1)
      await throttle.check(untrusted(undefined, `10.1.${i >> 8}.${i & 255}`));
    increment.mockClear();
    await throttle.recordFailure(untrusted(undefined, '2001:db8:1:2::8'));
    const after = increment.mock.calls.map(([key]) => (typeof key === 'string' ? key : key.hashed));
    // Same /64 and /48: the same stored keys (network, ip; the global counter too).
    expect(after).toEqual(before);
    const peeked = await store.peek(after[1] === undefined ? '' : { key: '', hashed: after[1] });
    expect(peeked?.count).toBe(2);
  });

  it("limits an account's successful logins, hashing its success counter's key once per attempt", async () => {
    const clock = createTestClock();
    const store = createMemoryCounterStore(clock);
    const throttle = createLoginThrottle(
      store,
      { perAccount: 5, perIp: 100, global: 1000, perDevice: 5, successesPerAccount: 2, windowMs: 60_000 },
      clock,
    );
    const peek = vi.spyOn(syncOf(store), 'peek');
    const increment = vi.spyOn(syncOf(store), 'increment');
    for (let i = 0; i < 2; i += 1) {
      const account = { accountKey: 'a@example.com' };
      expect((await throttle.checkLogins(account)).allowed).toBe(true);
      await throttle.recordLogin(account);
      // The key the attempt counted is the very object it checked.
      expect(increment.mock.calls.at(-1)?.[0]).toBe(peek.mock.calls.at(-1)?.[0]);
    }
    expect(await throttle.checkLogins({ accountKey: 'a@example.com' })).toEqual({
      allowed: false,
      retryAfterSeconds: 60,
    });
    expect((await throttle.checkLogins({ accountKey: 'b@example.com' })).allowed).toBe(true);
  });

  it('uses fixed-size keys that never hold the identifier', async () => {
    const { store, throttle } = setUp();
    const increment = vi.spyOn(syncOf(store), 'increment');
    await throttle.recordFailure(untrusted(`${'x'.repeat(300)}@example.com`, 'fe80::1:2:3:4:5:6'));
    await throttle.recordFailure(untrusted('a@b.c', '1.2.3.4'));
    const keys = increment.mock.calls.map(([key]) => {
      // Keys arrive hashed once per attempt; the hash must be the one the store would compute.
      if (typeof key === 'string') return key;
      expect(key.hashed).toBe(hashCounterKey(key.key));
      return key.key;
    });
    expect(keys.some((key) => key.includes('example') || key.includes('1.2.3.4'))).toBe(false);
    expect(keys.filter((key) => key.startsWith('login:account:')).map((key) => key.length)).toEqual([36, 36]);
  });
});

describe.runIf(process.env.REDIS_URL)('createLoginThrottle over Redis counters', () => {
  it('checks without writing, counts only failures and keeps trust levels apart', async () => {
    const redis = new Redis(process.env.REDIS_URL ?? '');
    // A private prefix: the shared Redis is never flushed, only these keys are removed.
    const prefix = `gatehouse:test:${randomBytes(6).toString('hex')}:`;
    try {
      const throttle = createLoginThrottle(createRedisCounterStore(redis, prefix), limits, Date.now);
      expect(await throttle.check(untrusted('a@example.com'))).toEqual({ allowed: true });
      expect(await redis.keys(`${prefix}*`)).toEqual([]);
      await throttle.recordFailure(untrusted('a@example.com'));
      await throttle.recordFailure(untrusted('a@example.com', '10.0.0.2'));
      const blocked = await throttle.check(untrusted('a@example.com', '10.0.0.3'));
      expect(blocked.allowed).toBe(false);
      expect((await throttle.check({ trust: 'trusted', deviceKey: 'd' })).allowed).toBe(true);
      await throttle.recordSuccess(untrusted('a@example.com', '10.0.0.3'));
      expect((await throttle.check(untrusted('a@example.com', '10.0.0.3'))).allowed).toBe(true);
    } finally {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
