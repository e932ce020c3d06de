import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMfaStore, type MfaStore } from '../../../src/mfa/storage/mfa-store.js';
import { createUserStore } from '../../../src/storage/user-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../../support/databases.js';

describe.each(engines)('MfaStore on $name', ({ name }) => {
  let test: TestDatabase;
  let store: MfaStore;

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createMfaStore(test.database.db);
  });
  afterAll(async () => test.dispose());

  /** A fresh account of its own, so tests share no rows whatever their order. */
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

  it('keeps a pending secret replaceable until it is confirmed, then refuses another', async () => {
    const id = await account();
    expect(await store.putPendingTotp(id, 'sealed-1', 10)).toBe(true);
    expect(await store.putPendingTotp(id, 'sealed-2', 20)).toBe(true);
    expect(await store.findTotp(id)).toEqual({
      userId: id,
      sealedSecret: 'sealed-2',
      createdAt: 20,
      confirmedAt: null,
      lastStep: null,
      consecutiveFailures: 0,
    });
    // A code checked against the replaced secret confirms nothing (a second enrolment raced it).
    expect(await store.confirmTotp(id, 'sealed-1', 100, 30)).toBe(false);
    expect((await store.findTotp(id))?.confirmedAt).toBeNull();
    expect(await store.confirmTotp(id, 'sealed-2', 100, 30)).toBe(true);
    expect(await store.confirmTotp(id, 'sealed-2', 101, 31)).toBe(false);
    expect(await store.putPendingTotp(id, 'sealed-3', 40)).toBe(false);
    expect((await store.findTotp(id))?.sealedSecret).toBe('sealed-2');
  });

  it('accepts each time step once, and never an earlier one (RFC 6238 §5.2 replay)', async () => {
    const id = await account();
    expect(await store.acceptTotpStep(id, 5)).toBe(false); // no authenticator yet
    await store.putPendingTotp(id, 's', 1);
    expect(await store.acceptTotpStep(id, 5)).toBe(false); // pending only
    await store.confirmTotp(id, 's', 100, 2);
    expect(await store.acceptTotpStep(id, 100)).toBe(false);
    expect(await store.acceptTotpStep(id, 99)).toBe(false);
    expect(await store.acceptTotpStep(id, 101)).toBe(true);
    expect(await store.acceptTotpStep(id, 101)).toBe(false);
  });

  it('lets exactly one of 20 concurrent uses of one step win', async () => {
    const id = await account();
    await store.putPendingTotp(id, 's', 1);
    await store.confirmTotp(id, 's', 1, 2);
    const wins = await Promise.all(Array.from({ length: 20 }, () => store.acceptTotpStep(id, 7)));
    expect(wins.filter(Boolean)).toHaveLength(1);
  });

  it('counts the run of wrong codes below the cap only, and ends it below the cap only', async () => {
    const id = await account();
    const run = async () => (await store.findTotp(id))?.consecutiveFailures;
    // No confirmed authenticator: no code of it can be right, nothing to count.
    expect(await store.chargeConsecutiveFailure(id, 2)).toEqual({ charged: false, locked: false });
    await store.putPendingTotp(id, 's', 1);
    expect(await store.chargeConsecutiveFailure(id, 2)).toEqual({ charged: false, locked: false });
    await store.confirmTotp(id, 's', 100, 2);
    expect(await store.chargeConsecutiveFailure(id, 2)).toEqual({ charged: true, count: 1 });
    expect(await store.chargeConsecutiveFailure(id, 2)).toEqual({ charged: true, count: 2 });
    expect(await store.chargeConsecutiveFailure(id, 2)).toEqual({ charged: false, locked: true });
    // Without a cap (a trusted device) the wrong code is counted past it.
    expect(await store.chargeConsecutiveFailure(id, undefined)).toEqual({ charged: true, count: 3 });
    // At the cap, a right code's spend does not end the run (nor spend its step)…
    expect(await store.acceptTotpStep(id, 101, 3)).toBe(false);
    expect(await run()).toBe(3);
    // …but without a cap it does, in the step's own statement.
    expect(await store.acceptTotpStep(id, 101)).toBe(true);
    expect(await run()).toBe(0);
    // Below the cap: a replayed step ends nothing, a new one ends the run.
    await store.chargeConsecutiveFailure(id, 2);
    expect(await store.acceptTotpStep(id, 101, 2)).toBe(false);
    expect(await run()).toBe(1);
    expect(await store.acceptTotpStep(id, 102, 2)).toBe(true);
    expect(await run()).toBe(0);
    // Before a recovery code (checked at any count): it ends any run, past the cap too.
    await store.chargeConsecutiveFailure(id, 2);
    await store.endRunBeforeRecoveryCode(id);
    expect(await run()).toBe(0);
    await store.chargeConsecutiveFailure(id, undefined);
    await store.chargeConsecutiveFailure(id, undefined);
    await store.chargeConsecutiveFailure(id, undefined);
    await store.endRunBeforeRecoveryCode(id);
    expect(await run()).toBe(0);
    // A passkey or a new password ends it too.
    await store.chargeConsecutiveFailure(id, undefined);
    await store.clearConsecutiveFailures(id);
    expect(await run()).toBe(0);
    // An account without an authenticator has no run to end.
    await expect(store.endRunBeforeRecoveryCode(await account())).resolves.toBeUndefined();
  });

  it('charges exactly the cap of 20 concurrent wrong codes, one count each', async () => {
    const id = await account();
    await store.putPendingTotp(id, 's', 1);
    await store.confirmTotp(id, 's', 1, 2);
    const charges = await Promise.all(
      Array.from({ length: 20 }, () => store.chargeConsecutiveFailure(id, 5)),
    );
    const counts = charges.flatMap((charge) => (charge.charged ? [charge.count] : []));
    expect(counts.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(charges.filter((charge) => !charge.charged && charge.locked)).toHaveLength(15);
    expect((await store.findTotp(id))?.consecutiveFailures).toBe(5);
  });

  it('spends a recovery code once, also under concurrency, and replaces the whole set', async () => {
    const id = await account();
    await store.replaceRecoveryCodes(id, ['a', 'b', 'c'], 1);
    expect(await store.countRecoveryCodes(id)).toBe(3);
    const uses = await Promise.all(Array.from({ length: 10 }, () => store.useRecoveryCode(id, 'a', 2)));
    expect(uses.filter(Boolean)).toHaveLength(1);
    expect(await store.countRecoveryCodes(id)).toBe(2);
    await store.replaceRecoveryCodes(id, ['d'], 3);
    expect(await store.useRecoveryCode(id, 'b', 4)).toBe(false);
    expect(await store.countRecoveryCodes(id)).toBe(1);
  });

  it("never spends another account's code", async () => {
    const [one, two] = [await account(), await account()];
    await store.replaceRecoveryCodes(one, ['shared'], 1);
    expect(await store.useRecoveryCode(two, 'shared', 2)).toBe(false);
    expect(await store.countRecoveryCodes(one)).toBe(1);
  });

  it('deletes every factor at once, and the rows go with their account', async () => {
    const id = await account();
    await store.putPendingTotp(id, 's', 1);
    await store.replaceRecoveryCodes(id, ['a'], 1);
    expect(await store.deleteFactors(id)).toBe(true);
    expect(await store.deleteFactors(id)).toBe(false);
    expect(await store.findTotp(id)).toBeUndefined();
    const other = await account();
    await store.putPendingTotp(other, 's', 1);
    await store.replaceRecoveryCodes(other, ['a'], 1);
    await createUserStore(test.database.db).deleteUser(other);
    expect(await store.findTotp(other)).toBeUndefined();
    expect(await store.countRecoveryCodes(other)).toBe(0);
  });
});
