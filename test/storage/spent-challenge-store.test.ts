import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSpentChallengeStore,
  type SpentChallengeStore,
} from '../../src/storage/spent-challenge-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

describe.each(engines)('SpentChallengeStore on $name', ({ name }) => {
  let test: TestDatabase;
  let store: SpentChallengeStore;

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createSpentChallengeStore(test.database.db);
  });
  afterAll(async () => test.dispose());

  it('lets exactly one of many racing claims win, per purpose', async () => {
    const claims = await Promise.all(
      Array.from({ length: 10 }, () => store.claimChallenge('passkey', 'nonce-a', 10_000)),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await store.isChallengeSpent('passkey', 'nonce-a')).toBe(true);
    // The same nonce under another purpose is another challenge.
    expect(await store.isChallengeSpent('mfa', 'nonce-a')).toBe(false);
    expect(await store.claimChallenge('mfa', 'nonce-a', 10_000)).toBe(true);
    expect(await store.claimChallenge('mfa', 'nonce-a', 10_000)).toBe(false);
  });

  it('sweeps only markers that expired before the cut-off', async () => {
    await store.claimChallenge('mfa', 'old', 1_000);
    await store.claimChallenge('mfa', 'live', 5_000);
    expect(await store.deleteExpiredChallenges(2_000)).toBe(1);
    expect(await store.isChallengeSpent('mfa', 'old')).toBe(false);
    expect(await store.isChallengeSpent('mfa', 'live')).toBe(true);
  });
});
