import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import {
  createMemoryCounterStore,
  createRedisCounterStore,
  hashCounterKey,
  hashedCounterKey,
} from '../../src/accounts/counter-store.js';
import { createTestClock } from '../../src/testing.js';

describe('hashCounterKey', () => {
  it('maps any key to 22 base64url characters, deterministically', () => {
    for (const key of ['', 'login:ip:1.2.3.4', `login:account:${'x'.repeat(100_000)}`, 'ünïcode']) {
      expect(hashCounterKey(key)).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(hashCounterKey(key)).toBe(hashCounterKey(key));
    }
    expect(hashCounterKey('a')).not.toBe(hashCounterKey('b'));
  });

  it('keeps its value across versions: SHA-256 truncated to 128 bits (Redis keys are shared by every instance)', () => {
    expect(hashCounterKey('login:global')).toBe('1HuSF3vSpBTFwLx1Qv-QxA');
  });

  it('is what hashedCounterKey carries, so a key hashed once names the same counter', () => {
    expect(hashedCounterKey('login:global')).toEqual({
      key: 'login:global',
      hashed: '1HuSF3vSpBTFwLx1Qv-QxA',
    });
  });
});

describe('a key hashed once (hashedCounterKey)', () => {
  it('addresses the same memory counter as its string', async () => {
    const store = createMemoryCounterStore(createTestClock(1_000_000));
    const key = hashedCounterKey('login:ip:abc');
    await store.increment('login:ip:abc', 1000);
    expect(await store.increment(key, 1000)).toEqual({ count: 2, resetAt: 1_001_000 });
    await store.decrement(key);
    expect(await store.peek('login:ip:abc')).toEqual({ count: 1, resetAt: 1_001_000 });
    await store.reset(key);
    expect(await store.peek('login:ip:abc')).toBeUndefined();
  });
});

describe('createMemoryCounterStore', () => {
  it('counts within a window and starts over when it ends', async () => {
    const clock = createTestClock(1_000_000);
    const store = createMemoryCounterStore(clock);
    expect(await store.increment('k', 1000)).toEqual({ count: 1, resetAt: 1_001_000 });
    clock.advance(500);
    expect(await store.increment('k', 1000)).toEqual({ count: 2, resetAt: 1_001_000 });
    await store.decrement('k');
    expect(await store.peek('k')).toEqual({ count: 1, resetAt: 1_001_000 });
    clock.advance(500);
    expect(await store.peek('k')).toBeUndefined();
    expect((await store.increment('k', 1000)).count).toBe(1);
    await store.reset('k');
    expect(await store.peek('k')).toBeUndefined();
  });

  it('answers synchronously through the same counters (the throttle calls it so, issue 10)', async () => {
    const clock = createTestClock(1_000_000);
    const store = createMemoryCounterStore(clock);
    const local = store.synchronous?.();
    if (local === undefined) throw new Error('the memory store answers synchronously');
    expect(local.increment('k', 1000)).toEqual({ count: 1, resetAt: 1_001_000 });
    expect(await store.increment('k', 1000)).toEqual({ count: 2, resetAt: 1_001_000 });
    local.decrement('k');
    expect(local.peek('k')).toEqual({ count: 1, resetAt: 1_001_000 });
    local.reset('k');
    expect(await store.peek('k')).toBeUndefined();
  });

  it('holds at most maxKeys, forgetting the least recently incremented', async () => {
    const store = createMemoryCounterStore(createTestClock(), { maxKeys: 1000 });
    await store.increment('hot', 60_000);
    for (let i = 0; i < 1500; i += 1) {
      await store.increment(`flood-${i}`, 60_000);
      // A key under attack keeps being counted, so a flood of other keys cannot evict it.
      if (i % 100 === 0) await store.increment('hot', 60_000);
    }
    expect(await store.peek('flood-0')).toBeUndefined();
    expect(await store.peek('flood-499')).toBeUndefined();
    expect(await store.peek('flood-1499')).toMatchObject({ count: 1 });
    expect(await store.peek('hot')).toMatchObject({ count: 16 });
    let held = 0;
    for (let i = 0; i < 1500; i += 1) if ((await store.peek(`flood-${i}`)) !== undefined) held += 1;
    expect(held).toBe(999);
  });

  it('keeps a key that is only being checked: a locked-out account is peeked, never incremented', async () => {
    const store = createMemoryCounterStore(createTestClock(), { maxKeys: 1000 });
    for (let i = 0; i < 5; i += 1) await store.increment('locked', 60_000);
    for (let i = 0; i < 1500; i += 1) {
      await store.increment(`flood-${i}`, 60_000);
      // The attacker's refused tries only read the count; the flood must not forget it meanwhile.
      if (i % 100 === 0) expect(await store.peek('locked')).toMatchObject({ count: 5 });
    }
    expect(await store.peek('locked')).toMatchObject({ count: 5 });
  });
});

describe.runIf(process.env.REDIS_URL)('createRedisCounterStore', () => {
  it('stores hashed, fixed-size keys with an expiry', async () => {
    const redis = new Redis(process.env.REDIS_URL ?? '');
    const prefix = `gatehouse:test:${randomUUID()}:`;
    try {
      const store = createRedisCounterStore(redis, prefix);
      const key = `login:account:${'x'.repeat(10_000)}`;
      expect((await store.increment(key, 60_000)).count).toBe(1);
      expect((await store.increment(key, 60_000)).count).toBe(2);
      expect(await redis.exists(prefix + hashCounterKey(key))).toBe(1);
      expect(await redis.exists(prefix + key)).toBe(0);
      // Hashed once by the caller: the same Redis key (names are shared by every instance).
      expect((await store.increment(hashedCounterKey(key), 60_000)).count).toBe(3);
      expect((await store.peek(hashedCounterKey(key)))?.count).toBe(3);
      expect(await redis.pttl(prefix + hashCounterKey(key))).toBeGreaterThan(0);
      await store.reset(key);
      expect(await store.peek(key)).toBeUndefined();
    } finally {
      redis.disconnect();
    }
  });

  // Redis before 7.0 refuses `PEXPIRE … NX`, which failed every increment there: the throttle
  // fell back to local counts while the health probe kept finding Redis up (operator red-team).
  it('starts the window at the first hit with commands every Redis version has', async () => {
    const redis = new Redis(process.env.REDIS_URL ?? '');
    const prefix = `gatehouse:test:${randomUUID()}:`;
    const sent = vi.spyOn(redis, 'sendCommand');
    try {
      const store = createRedisCounterStore(redis, prefix);
      const first = await store.increment('window', 60_000);
      // A later hit asking for a shorter window neither shortens nor restarts it.
      const second = await store.increment('window', 1_000);
      expect(second.count).toBe(2);
      expect(await redis.pttl(prefix + hashCounterKey('window'))).toBeGreaterThan(50_000);
      expect(Math.abs(second.resetAt - first.resetAt)).toBeLessThan(5_000);
      // A key left without an expiry (by anything) gets one at the next hit instead of living on.
      await redis.set(prefix + hashCounterKey('stuck'), '7');
      expect((await store.increment('stuck', 60_000)).count).toBe(8);
      expect(await redis.pttl(prefix + hashCounterKey('stuck'))).toBeGreaterThan(0);
      const commands = sent.mock.calls.map(([command]) => [command.name, ...command.args.map(String)]);
      expect(commands.filter(([name]) => name === 'multi' || name === 'pexpire')).toEqual([]);
      expect(commands.flat().map((part) => part.toUpperCase())).not.toContain('NX');
    } finally {
      sent.mockRestore();
      redis.disconnect();
    }
  });
});
