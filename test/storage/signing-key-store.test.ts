import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createSigningKeyStore,
  type SigningKeyRecord,
  type SigningKeyStore,
} from '../../src/storage/signing-key-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

const T0 = 1_800_000_000_000;
const key = (
  kid: string,
  generation: number,
  overrides: Partial<SigningKeyRecord> = {},
): SigningKeyRecord => ({
  kid,
  algorithm: 'EdDSA',
  generation,
  publicJwk: `{"kid":"${kid}"}`,
  sealedPrivateKey: `sealed-${kid}`,
  createdAt: T0,
  activatesAt: T0 + generation,
  revokedAt: null,
  ...overrides,
});

describe.each(engines)('SigningKeyStore on $name', ({ name }) => {
  let test: TestDatabase;
  let store: SigningKeyStore;

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createSigningKeyStore(test.database.db);
  });
  afterAll(async () => test.dispose());
  // Each test starts from an empty key table, so the tests run in any order.
  beforeEach(async () => {
    const kids = [...(await store.listKeys('EdDSA')), ...(await store.listKeys('RS256'))].map((k) => k.kid);
    await store.deleteKeys(kids);
  });
  const seed = async () => {
    for (const record of [key('a', 1), key('b', 2)]) expect(await store.insertKey(record)).toBe(true);
  };

  it('stores keys per algorithm, oldest generation first, and round-trips every field', async () => {
    expect(await store.insertKey(key('b', 2))).toBe(true);
    expect(await store.insertKey(key('a', 1))).toBe(true);
    expect(await store.insertKey(key('r1', 1, { algorithm: 'RS256' }))).toBe(true);
    expect(await store.listKeys('EdDSA')).toEqual([key('a', 1), key('b', 2)]);
    expect((await store.listKeys('RS256')).map((k) => k.kid)).toEqual(['r1']);
  });

  it('writes nothing when the kid or the (algorithm, generation) is taken, also when two race', async () => {
    await seed();
    expect(await store.insertKey(key('a', 9))).toBe(false);
    expect(await store.insertKey(key('other', 2))).toBe(false);
    const raced = await Promise.all([store.insertKey(key('c1', 3)), store.insertKey(key('c2', 3))]);
    expect(raced.filter(Boolean)).toHaveLength(1);
    expect((await store.listKeys('EdDSA')).filter((k) => k.generation === 3)).toHaveLength(1);
  });

  it('revokes once, activates only earlier, re-seals by compare-and-set, deletes', async () => {
    await seed();
    expect(await store.revokeKey('b', T0 + 50)).toBe(true);
    expect(await store.revokeKey('b', T0 + 60)).toBe(false);
    expect(await store.revokeKey('nope', T0)).toBe(false);
    expect(await store.activateKey('a', T0 + 1000)).toBe(false);
    expect(await store.activateKey('a', T0)).toBe(true);
    expect(await store.replaceSealedKey('a', 'stale', 'new')).toBe(false);
    expect(await store.replaceSealedKey('a', 'sealed-a', 'resealed-a')).toBe(true);
    const [a, b] = await store.listKeys('EdDSA');
    expect(a).toMatchObject({ kid: 'a', activatesAt: T0, sealedPrivateKey: 'resealed-a' });
    expect(b).toMatchObject({ kid: 'b', revokedAt: T0 + 50 });
    expect(await store.deleteKeys(['a', 'b'])).toBe(2);
    expect(await store.deleteKeys([])).toBe(0);
    expect((await store.listKeys('EdDSA')).map((k) => k.kid)).not.toContain('a');
  });
});
