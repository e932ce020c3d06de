import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createOAuthClientStore,
  type OAuthClientRecord,
  type OAuthClientStore,
} from '../../src/storage/oauth-client-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

let sequence = 0;
/** A client with a unique id, so the tests share a database in any order. */
const client = (overrides: Partial<OAuthClientRecord> = {}): OAuthClientRecord => {
  sequence += 1;
  return {
    clientId: `client-${sequence}-${Math.random().toString(36).slice(2)}`,
    name: 'Notes app',
    secretHash: null,
    redirectUris: ['https://notes.example/cb'],
    postLogoutRedirectUris: [],
    grantTypes: ['authorization_code', 'refresh_token'],
    scopes: ['openid', 'email'],
    createdAt: 1_800_000_000_000 + sequence,
    disabledAt: null,
    idTokenSignedResponseAlg: null,
    ...overrides,
  };
};

describe.each(engines)('OAuthClientStore on $name', ({ name }) => {
  let test: TestDatabase;
  let store: OAuthClientStore;

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createOAuthClientStore(test.database.db);
  });
  afterAll(async () => test.dispose());

  it('round-trips every field, lists oldest first and counts', async () => {
    const before = await store.countClients();
    const older = client({ secretHash: 'ab'.repeat(32), postLogoutRedirectUris: ['https://notes.example/'] });
    const newer = client();
    expect(await store.insertClient(newer)).toEqual({ ok: true });
    expect(await store.insertClient(older)).toEqual({ ok: true });
    expect(await store.findClient(older.clientId)).toEqual(older);
    expect(await store.countClients()).toBe(before + 2);
    const ids = (await store.listClients(1000)).map((c) => c.clientId);
    expect(ids.indexOf(older.clientId)).toBeLessThan(ids.indexOf(newer.clientId));
    expect(await store.listClients(1)).toHaveLength(1);
  });

  it('disables and enables a client (migration 020a); an unknown id changes nothing', async () => {
    const paused = client();
    await store.insertClient(paused);
    expect(await store.setClientDisabled(paused.clientId, 1_900_000_000_000)).toBe(true);
    expect(await store.findClient(paused.clientId)).toEqual({ ...paused, disabledAt: 1_900_000_000_000 });
    expect(await store.setClientDisabled(paused.clientId, null)).toBe(true);
    expect((await store.findClient(paused.clientId))?.disabledAt).toBeNull();
    expect(await store.setClientDisabled('nobody', 1)).toBe(false);
  });

  it('refuses a taken id without overwriting, also when two inserts race', async () => {
    const first = client();
    const raced = await Promise.all([
      store.insertClient(first),
      store.insertClient({ ...first, name: 'Impostor' }),
    ]);
    expect(raced.filter((r) => r.ok)).toHaveLength(1);
    expect(raced.filter((r) => !r.ok)).toEqual([{ ok: false, reason: 'taken' }]);
    expect(await store.insertClient({ ...first, name: 'Later' })).toEqual({ ok: false, reason: 'taken' });
    expect((await store.findClient(first.clientId))?.name).toMatch(/Notes app|Impostor/);
  });

  it('deletes once; unknown ids find nothing', async () => {
    const gone = client();
    await store.insertClient(gone);
    expect(await store.deleteClient(gone.clientId)).toBe(true);
    expect(await store.deleteClient(gone.clientId)).toBe(false);
    expect(await store.findClient(gone.clientId)).toBeUndefined();
    expect(await store.findClient('nope\u00e9')).toBeUndefined();
  });
});
