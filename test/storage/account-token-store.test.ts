import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AccountTokenPurpose,
  type AccountTokenStore,
  createAccountTokenStore,
} from '../../src/storage/account-token-store.js';
import { isUniqueViolation } from '../../src/storage/open-database.js';
import { addTestUser, createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

describe.each(engines)('AccountTokenStore on $name', ({ name }) => {
  let test: TestDatabase;
  let store: AccountTokenStore;

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createAccountTokenStore(test.database.db);
  });
  afterAll(async () => test.dispose());

  const addUser = () => addTestUser(test.database.db);

  const link = (
    userId: string,
    hash: string,
    createdAt: number,
    purpose: AccountTokenPurpose = 'reset_password',
  ) => ({
    tokenHash: hash,
    userId,
    purpose,
    emailKey: `${userId}@example.com`,
    email: `${userId}@example.com`,
    createdAt,
    expiresAt: createdAt + 1_000,
    sessionId: null,
  });

  const live = async (hashes: string[], purpose: AccountTokenPurpose = 'reset_password', now = 0) => {
    const found = await Promise.all(hashes.map((hash) => store.findToken(hash, purpose, now)));
    return hashes.filter((_, index) => found[index] !== undefined);
  };

  it('keeps the newest `keep` links of an account and purpose, and only that account’s', async () => {
    const owner = await addUser();
    const other = await addUser();
    await store.storeToken(link(other, `${other}-a`, 10), 3);
    const hashes = ['a', 'b', 'c', 'd'].map((letter) => `${owner}-${letter}`);
    for (const [index, hash] of hashes.entries()) await store.storeToken(link(owner, hash, 10 + index), 3);
    // The oldest went when the fourth came; none of another account's links did.
    expect(await live(hashes, 'reset_password', 10)).toEqual(hashes.slice(1));
    expect(await live([`${other}-a`], 'reset_password', 10)).toEqual([`${other}-a`]);
    // A verification link counts apart from the reset links.
    await store.storeToken(link(owner, `${owner}-v`, 20, 'verify_email'), 3);
    expect(await live(hashes, 'reset_password', 20)).toEqual(hashes.slice(1));
  });

  it('with `keep` 1 replaces the previous link, even one made in the same millisecond', async () => {
    const owner = await addUser();
    await store.storeToken(link(owner, `${owner}-z`, 10), 1);
    await store.storeToken(link(owner, `${owner}-a`, 10), 1);
    expect(await live([`${owner}-z`, `${owner}-a`], 'reset_password', 10)).toEqual([`${owner}-a`]);
  });

  it('deletes the account’s expired links of the purpose when it stores one', async () => {
    const owner = await addUser();
    await store.storeToken(link(owner, `${owner}-old`, 0), 5);
    await store.storeToken(link(owner, `${owner}-new`, 5_000), 5);
    const rows = await test.database.db
      .selectFrom('account_tokens')
      .select('token_hash')
      .where('user_id', '=', owner)
      .execute();
    expect(rows.map((row) => row.token_hash)).toEqual([`${owner}-new`]);
  });

  it('refuses a second live email change for one account (one applies at a time)', async () => {
    const owner = await addUser();
    await store.storeToken(link(owner, `${owner}-c1`, 10, 'change_email'), 1);
    // What two racing requests do: both delete, both insert.
    const twin = test.database.db.insertInto('account_tokens').values({
      token_hash: `${owner}-c2`,
      user_id: owner,
      purpose: 'change_email',
      email_key: 'x@example.com',
      email: 'x@example.com',
      created_at: 11,
      expires_at: 1_011,
      session_id: null,
    });
    const error = await twin.execute().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isUniqueViolation(error)).toBe(true);
  });
});
