import { describe, expect, it } from 'vitest';
import { createUserCache } from '../../src/accounts/user-cache.js';
import { createMemoryEventBus } from '../../src/events/event-bus.js';
import type { UserRecord, UserStore } from '../../src/storage/user-store.js';

const user = (role: UserRecord['role']): UserRecord => ({
  id: 'u1',
  email: 'a@example.com',
  emailKey: 'a@example.com',
  fullName: null,
  passwordHash: 'h',
  role,
  isActive: true,
  emailVerified: false,
  createdAt: 0,
  updatedAt: 0,
  credentialsVersion: 0,
});

/** A store whose `findUserById` answers only when the test releases it. */
function heldStore() {
  const calls: ((row: UserRecord | undefined) => void)[] = [];
  const store = {
    findUserById: () => new Promise<UserRecord | undefined>((resolve) => calls.push(resolve)),
  } as Pick<UserStore, 'findUserById'> as UserStore;
  return { store, calls };
}

describe('user cache', () => {
  it('does not fill with a row read before an eviction that happened while the read ran', async () => {
    const { store, calls } = heldStore();
    const bus = createMemoryEventBus();
    const cache = createUserCache(store, bus);
    const slow = cache.get('u1');
    expect(calls).toHaveLength(1);
    // The user is demoted (and evicted everywhere) while the first read is still in flight.
    await bus.publish({ type: 'user_changed', userId: 'u1' });
    calls[0]?.(user('admin'));
    expect((await slow)?.role).toBe('admin');
    // The next read must go back to the store, not find the pre-demotion row in the cache.
    const next = cache.get('u1');
    expect(calls).toHaveLength(2);
    calls[1]?.(user('user'));
    expect((await next)?.role).toBe('user');
    // That read started after the eviction, so it fills the cache.
    expect((await cache.get('u1'))?.role).toBe('user');
    expect(calls).toHaveLength(2);
  });

  it('treats clear() as an eviction of every read in flight', async () => {
    const { store, calls } = heldStore();
    const cache = createUserCache(store, createMemoryEventBus());
    const slow = cache.get('u1');
    cache.clear();
    calls[0]?.(user('admin'));
    await slow;
    void cache.get('u1');
    expect(calls).toHaveLength(2);
  });

  it('fills on a quiet read and re-reads once an entry is older than maxAgeMs', async () => {
    const { store, calls } = heldStore();
    let now = 1_000;
    const cache = createUserCache(store, createMemoryEventBus(), { maxAgeMs: 5_000, clock: () => now });
    const first = cache.get('u1');
    calls[0]?.(user('admin'));
    await first;
    now += 4_999;
    expect((await cache.get('u1'))?.role).toBe('admin');
    expect(calls).toHaveLength(1);
    now += 1;
    const again = cache.get('u1');
    expect(calls).toHaveLength(2);
    calls[1]?.(user('user'));
    expect((await again)?.role).toBe('user');
  });
});

describe('user cache while the database is unavailable', () => {
  const unavailable = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

  it('serves an entry past maxAgeMs when the re-read fails as unavailable, asking the store again only every few seconds', async () => {
    let now = 1_000;
    let down = false;
    let reads = 0;
    const store = {
      findUserById: async () => {
        reads += 1;
        if (down) throw unavailable();
        return user('admin');
      },
    } as Pick<UserStore, 'findUserById'> as UserStore;
    const cache = createUserCache(store, createMemoryEventBus(), {
      maxAgeMs: 30_000,
      maxStaleMs: 600_000,
      clock: () => now,
    });
    expect((await cache.get('u1'))?.role).toBe('admin');
    down = true;
    now += 60_000;
    expect((await cache.get('u1'))?.role).toBe('admin');
    expect(reads).toBe(2);
    // Within the retry interval: served from memory, no new attempt (each could cost a timeout).
    now += 1_000;
    expect((await cache.get('u1'))?.role).toBe('admin');
    expect(reads).toBe(2);
    now += 5_000;
    await cache.get('u1');
    expect(reads).toBe(3);
    // Past maxStaleMs the failure is the caller's (a 503), not a guess.
    now += 600_000;
    await expect(cache.get('u1')).rejects.toThrow('ECONNREFUSED');
  });

  it('expireAll() (the bus came back) forces a re-read of fresh entries, yet keeps them for stale-if-error', async () => {
    // Operator red-team 2026-12h F3 and its review: evictions published while Redis was away are
    // lost, so entries are re-read after a re-subscribe; dropping them instead turned every request
    // into a 503 when Redis came back before the database.
    let now = 1_000;
    let down = false;
    let role: UserRecord['role'] = 'admin';
    let reads = 0;
    const store = {
      findUserById: async () => {
        reads += 1;
        if (down) throw unavailable();
        return user(role);
      },
    } as Pick<UserStore, 'findUserById'> as UserStore;
    const cache = createUserCache(store, createMemoryEventBus(), { maxAgeMs: 30_000, clock: () => now });
    expect((await cache.get('u1'))?.role).toBe('admin');
    // Demoted on another instance; its user_changed is lost with Redis.
    role = 'user';
    now += 1_000;
    expect(cache.peek('u1')?.role).toBe('admin');
    cache.expireAll();
    expect(cache.peek('u1')).toBeUndefined();
    expect((await cache.get('u1'))?.role).toBe('user');
    expect(reads).toBe(2);
    // Fresh again after that read.
    now += 1;
    expect(cache.peek('u1')?.role).toBe('user');
    // The database down when the bus comes back: the expired entry is still served, and a read in
    // flight then keeps its stale answer too...
    down = true;
    now += 1;
    cache.expireAll();
    const inFlight = cache.get('u1');
    expect(reads).toBe(3);
    // Redis drops and comes back again while that read waits on the database.
    cache.expireAll();
    expect((await inFlight)?.role).toBe('user');
    now += 1;
    expect((await cache.get('u1'))?.role).toBe('user');
    expect(reads).toBe(3);
    // ...but only within maxAgeMs of the re-subscribe (the bound of a lost eviction), not for the
    // ten minutes of stale-if-error: its eviction may be what was lost.
    now += 30_000;
    await expect(cache.get('u1')).rejects.toThrow('ECONNREFUSED');
  });

  it('serves an entry read before a re-subscribe for maxAgeMs after that one, however often Redis drops after it', async () => {
    let now = 1_000;
    let down = false;
    const store = {
      findUserById: async () => {
        if (down) throw unavailable();
        return user('admin');
      },
    } as Pick<UserStore, 'findUserById'> as UserStore;
    const cache = createUserCache(store, createMemoryEventBus(), { maxAgeMs: 30_000, clock: () => now });
    expect((await cache.get('u1'))?.role).toBe('admin');
    down = true;
    // Redis flapping every 5 s with the database down: each gap may have lost this user's eviction.
    now += 1_000;
    cache.expireAll();
    for (let i = 0; i < 6; i++) {
      now += 5_000;
      cache.expireAll();
    }
    // 30 s after the first re-subscribe, not after the latest (which was 0 s ago).
    now = 1_000 + 1_000 + 30_000;
    await expect(cache.get('u1')).rejects.toThrow('ECONNREFUSED');
  });

  it('once one re-read failed as unavailable, serves every other stale entry without a read until the retry', async () => {
    // Red-team 2026-12h F4: each user's first request in an outage paid a connect timeout of its
    // own before its stale entry was served (then its route's query another): ≈ 10 s to a 503.
    let now = 1_000;
    let down = false;
    const reads: string[] = [];
    const store = {
      findUserById: async (id: string) => {
        reads.push(id);
        if (down) throw unavailable();
        return { ...user('user'), id };
      },
    } as Pick<UserStore, 'findUserById'> as UserStore;
    const cache = createUserCache(store, createMemoryEventBus(), { maxAgeMs: 30_000, clock: () => now });
    for (const id of ['a', 'b', 'c']) await cache.get(id);
    down = true;
    now += 60_000;
    expect((await cache.get('a'))?.id).toBe('a');
    expect((await cache.get('b'))?.id).toBe('b');
    expect((await cache.get('c'))?.id).toBe('c');
    expect(reads).toEqual(['a', 'b', 'c', 'a']);
    // After the retry interval the next one tries again; once the database answers, reads resume.
    now += 5_000;
    down = false;
    expect((await cache.get('b'))?.id).toBe('b');
    expect((await cache.get('c'))?.id).toBe('c');
    expect(reads).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('never serves an evicted entry, and rethrows errors that are not an outage', async () => {
    let now = 1_000;
    let failure: Error | undefined;
    const store = {
      findUserById: async () => {
        if (failure !== undefined) throw failure;
        return user('admin');
      },
    } as Pick<UserStore, 'findUserById'> as UserStore;
    const bus = createMemoryEventBus();
    const cache = createUserCache(store, bus, { maxAgeMs: 30_000, clock: () => now });
    await cache.get('u1');
    now += 60_000;
    failure = new Error('syntax error at or near "selec"');
    await expect(cache.get('u1')).rejects.toThrow('syntax error');
    failure = unavailable();
    await bus.publish({ type: 'user_changed', userId: 'u1' });
    await expect(cache.get('u1')).rejects.toThrow('ECONNREFUSED');
  });
});

describe('user cache peek', () => {
  it('answers only from a fresh entry, never reads, and forgets an evicted user at once', async () => {
    const { store, calls } = heldStore();
    let now = 1_000;
    const bus = createMemoryEventBus();
    const cache = createUserCache(store, bus, { maxAgeMs: 5_000, clock: () => now });
    expect(cache.peek('u1')).toBeUndefined();
    expect(calls).toHaveLength(0);
    const first = cache.get('u1');
    calls[0]?.(user('admin'));
    await first;
    expect(cache.peek('u1')?.role).toBe('admin');
    expect(cache.stats()).toEqual({ hits: 1, misses: 1 });
    now += 5_000;
    expect(cache.peek('u1')).toBeUndefined();
    now -= 1;
    await bus.publish({ type: 'user_changed', userId: 'u1' });
    expect(cache.peek('u1')).toBeUndefined();
    expect(calls).toHaveLength(1);
  });
});
