import { describe, expect, it } from 'vitest';
import { createMemoryEventBus } from '../../src/events/event-bus.js';
import {
  CLIENT_CACHE_MAX_AGE_MS,
  CLIENT_CACHE_RETRY_MS,
  createLiveClients,
} from '../../src/oauth/live-clients.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { createTestClock } from '../../src/testing.js';

const CLIENT: OAuthClient = {
  clientId: 'svc',
  name: 'Service',
  type: 'confidential',
  redirectUris: [],
  postLogoutRedirectUris: [],
  grantTypes: ['client_credentials'],
  scopes: ['me'],
  createdAt: 0,
  disabled: false,
  idTokenSignedResponseAlg: 'ES256',
};

/** A store of one client that counts its reads and can be made to fail or to hold a read. */
function fakeStore() {
  const state = {
    client: CLIENT as OAuthClient | undefined,
    reads: 0,
    failure: undefined as Error | undefined,
    hold: undefined as Promise<void> | undefined,
  };
  return {
    state,
    async find(_clientId: string) {
      state.reads += 1;
      const found = state.client;
      if (state.hold !== undefined) await state.hold;
      if (state.failure !== undefined) throw state.failure;
      return found;
    },
  };
}

const unavailable = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

describe('createLiveClients', () => {
  it('serves a look-up from memory until it is older than the maximum age', async () => {
    const clock = createTestClock();
    const store = fakeStore();
    const live = createLiveClients(store, createMemoryEventBus(), { clock });
    expect(live.peek('svc')).toBeUndefined();
    expect(await live.get('svc')).toEqual(CLIENT);
    expect(live.peek('svc')).toEqual(CLIENT);
    expect(store.state.reads).toBe(1);
    clock.advance(CLIENT_CACHE_MAX_AGE_MS);
    expect(live.peek('svc')).toBeUndefined();
    store.state.client = undefined;
    expect(await live.get('svc')).toBeNull();
    // A removed client is remembered as gone too: its tokens cost no read per request.
    expect(live.peek('svc')).toBeNull();
    expect(store.state.reads).toBe(2);
  });

  it('expireAll() (the bus came back) forces a re-read, yet keeps the entry while the database is away', async () => {
    const clock = createTestClock();
    const store = fakeStore();
    const live = createLiveClients(store, createMemoryEventBus(), { clock });
    expect(await live.get('svc')).toEqual(CLIENT);
    // Removed on another instance while Redis was away: its oauth_client_removed is lost.
    store.state.client = undefined;
    live.expireAll();
    expect(live.peek('svc')).toBeUndefined();
    expect(await live.get('svc')).toBeNull();
    expect(store.state.reads).toBe(2);
    expect(live.peek('svc')).toBeNull();
    // With the database down as well, the expired entry is what is served, not a 503...
    store.state.client = CLIENT;
    store.state.failure = unavailable();
    live.expireAll();
    expect(await live.get('svc')).toBeNull();
    expect(store.state.reads).toBe(3);
    // A re-subscribe while a read waits on the database: the read keeps its stale answer.
    clock.advance(CLIENT_CACHE_RETRY_MS);
    let release = () => {};
    store.state.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const waiting = live.get('svc');
    clock.advance(1);
    live.expireAll();
    release();
    expect(await waiting).toBeNull();
    // ...but only within the maximum age of the re-subscribe: its removal may be what was lost.
    store.state.hold = undefined;
    clock.advance(CLIENT_CACHE_MAX_AGE_MS);
    await expect(live.get('svc')).rejects.toThrow('ECONNREFUSED');
  });

  it('serves an entry read before a re-subscribe for the maximum age after that one, however often Redis drops after it', async () => {
    const clock = createTestClock();
    const store = fakeStore();
    const live = createLiveClients(store, createMemoryEventBus(), { clock });
    expect(await live.get('svc')).toEqual(CLIENT);
    store.state.failure = unavailable();
    live.expireAll();
    const stepMs = Math.floor(CLIENT_CACHE_MAX_AGE_MS / 6);
    for (let i = 0; i < 6; i++) {
      clock.advance(stepMs);
      live.expireAll();
    }
    clock.advance(CLIENT_CACHE_MAX_AGE_MS - 6 * stepMs);
    await expect(live.get('svc')).rejects.toThrow('ECONNREFUSED');
  });

  it('forgets a client at once when any instance announces its removal on the bus', async () => {
    const clock = createTestClock();
    const store = fakeStore();
    const bus = createMemoryEventBus();
    const live = createLiveClients(store, bus, { clock });
    await live.get('svc');
    store.state.client = undefined;
    await bus.publish({ type: 'oauth_client_removed', clientId: 'svc' });
    expect(live.peek('svc')).toBeUndefined();
    expect(await live.get('svc')).toBeNull();
    live.close();
    // Closed: no longer listening.
    store.state.client = CLIENT;
    clock.advance(CLIENT_CACHE_MAX_AGE_MS);
    await live.get('svc');
    await bus.publish({ type: 'oauth_client_removed', clientId: 'svc' });
    expect(live.peek('svc')).toEqual(CLIENT);
  });

  it('never fills the cache with a read that an eviction overtook', async () => {
    const clock = createTestClock();
    const store = fakeStore();
    const live = createLiveClients(store, createMemoryEventBus(), { clock });
    let release = () => {};
    store.state.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The read sees the row from before the removal, then the removal's eviction lands.
    const reading = live.get('svc');
    live.evict('svc');
    release();
    expect(await reading).toEqual(CLIENT);
    expect(live.peek('svc')).toBeUndefined();
  });

  it('keeps serving what it read while the database is unavailable, asking again only every few seconds', async () => {
    const clock = createTestClock();
    const store = fakeStore();
    const live = createLiveClients(store, createMemoryEventBus(), { clock });
    await live.get('svc');
    clock.advance(CLIENT_CACHE_MAX_AGE_MS);
    store.state.failure = unavailable();
    expect(await live.get('svc')).toEqual(CLIENT);
    expect(await live.get('svc')).toEqual(CLIENT);
    expect(store.state.reads).toBe(2);
    clock.advance(5_000);
    expect(await live.get('svc')).toEqual(CLIENT);
    expect(store.state.reads).toBe(3);
    // Not for ever: ten minutes after the last good read the error goes to the caller.
    clock.advance(10 * 60_000);
    await expect(live.get('svc')).rejects.toThrow('ECONNREFUSED');
  });

  it('passes other errors through, and never invents an entry it did not read', async () => {
    const clock = createTestClock();
    const store = fakeStore();
    const live = createLiveClients(store, createMemoryEventBus(), { clock });
    store.state.failure = unavailable();
    await expect(live.get('svc')).rejects.toThrow('ECONNREFUSED');
    store.state.failure = new Error('boom');
    await expect(live.get('svc')).rejects.toThrow('boom');
  });
});
