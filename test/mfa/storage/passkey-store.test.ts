import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPasskeyStore,
  type PasskeyRecord,
  type PasskeyStore,
} from '../../../src/mfa/storage/passkey-store.js';
import { createUserStore } from '../../../src/storage/user-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../../support/databases.js';

describe.each(engines)('PasskeyStore on $name', ({ name }) => {
  let test: TestDatabase;
  let store: PasskeyStore;

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createPasskeyStore(test.database.db);
  });
  afterAll(async () => test.dispose());

  const account = async () => {
    const id = randomUUID();
    await createUserStore(test.database.db).insertUser({
      id,
      email: `${id}@example.com`,
      emailKey: `${id}@example.com`,
      fullName: null,
      passwordHash: 'x',
      role: 'user',
      isActive: true,
      emailVerified: false,
      createdAt: 1,
      updatedAt: 1,
    });
    return id;
  };

  const passkey = (userId: string, overrides: Partial<PasskeyRecord> = {}): PasskeyRecord => ({
    id: randomUUID(),
    userId,
    publicKey: 'pQECAyYgASFYIA',
    counter: 0,
    deviceType: 'multiDevice',
    backedUp: true,
    transports: ['internal', 'hybrid'],
    name: 'Phone',
    createdAt: 100,
    lastUsedAt: null,
    ...overrides,
  });

  it('stores, lists (oldest first), counts and finds passkeys with their flags and transports', async () => {
    const id = await account();
    const first = passkey(id, { createdAt: 100 });
    const second = passkey(id, {
      createdAt: 200,
      deviceType: 'singleDevice',
      backedUp: false,
      transports: [],
    });
    expect(await store.insertPasskey(second)).toBe(true);
    expect(await store.insertPasskey(first)).toBe(true);
    expect(await store.listPasskeys(id)).toEqual([first, second]);
    expect(await store.countPasskeys(id)).toBe(2);
    expect(await store.findPasskey(second.id)).toEqual(second);
    expect(await store.findPasskey('nope')).toBeUndefined();
  });

  it('refuses a credential id registered before, on any account, without changing it', async () => {
    const owner = await account();
    const other = await account();
    const original = passkey(owner);
    expect(await store.insertPasskey(original)).toBe(true);
    expect(await store.insertPasskey({ ...original, userId: other, publicKey: 'other' })).toBe(false);
    expect(await store.findPasskey(original.id)).toEqual(original);
  });

  it('adds passkeys within the per-account cap exactly, even when 20 registrations race', async () => {
    const id = await account();
    const other = await account();
    await store.insertPasskey(passkey(other));
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => store.insertPasskeyWithinCap(passkey(id), 10)),
    );
    expect(outcomes.filter((outcome) => outcome === 'inserted')).toHaveLength(10);
    expect(outcomes.filter((outcome) => outcome === 'limit')).toHaveLength(10);
    expect(await store.countPasskeys(id)).toBe(10);
    // Under the cap, a credential id registered on any account is still refused.
    const taken = passkey(other);
    await store.insertPasskey(taken);
    expect(await store.insertPasskeyWithinCap({ ...taken, userId: await account() }, 10)).toBe('duplicate');
  });

  it('records a use only over the counter read before (compare-and-set)', async () => {
    const id = await account();
    const stored = passkey(id, { counter: 5 });
    await store.insertPasskey(stored);
    expect(await store.recordPasskeyUse(stored.id, 5, { counter: 6, backedUp: false, at: 300 })).toBe(true);
    // A second request that read counter 5 too loses.
    expect(await store.recordPasskeyUse(stored.id, 5, { counter: 6, backedUp: false, at: 301 })).toBe(false);
    expect(await store.findPasskey(stored.id)).toMatchObject({
      counter: 6,
      backedUp: false,
      lastUsedAt: 300,
    });
  });

  it('deletes one passkey only for its owner, and all of an account’s at once', async () => {
    const owner = await account();
    const other = await account();
    const mine = passkey(owner);
    await store.insertPasskey(mine);
    await store.insertPasskey(passkey(owner));
    expect(await store.deletePasskey(other, mine.id)).toBe(false);
    expect(await store.deletePasskey(owner, mine.id)).toBe(true);
    expect(await store.deletePasskeys(owner)).toBe(1);
    expect(await store.countPasskeys(owner)).toBe(0);
  });
});
