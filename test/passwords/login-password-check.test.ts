import { describe, expect, it } from 'vitest';
import { createLoginPasswordCheck } from '../../src/passwords/login-password-check.js';
import type { VerificationTiming } from '../../src/passwords/password-hasher.js';

const OURS = '$argon2id$v=19$m=19456,t=2,p=1$ours';
const DUMMY = '$argon2id$v=19$m=19456,t=2,p=1$dummy';
const LEGACY = '$2b$12$legacy';

/**
 * A check over a hasher where `right` matches each hash and verifications take 20 ms (ours and
 * the dummy) or 300 ms (legacy), a floor of `floorMs`, and a sleep that records its waits.
 */
function setUp(floorMs: number, right: Record<string, string>) {
  const verified: [string, string][] = [];
  const observed: number[] = [];
  const slept: number[] = [];
  let slots = 0;
  const check = createLoginPasswordCheck({
    hasher: {
      verify: async (
        phc: string,
        texts: string | readonly string[],
        _lane?: unknown,
        timing?: VerificationTiming,
      ) => {
        slots += 1;
        for (const text of typeof texts === 'string' ? [texts] : texts) {
          verified.push([phc, text]);
          if (timing !== undefined) timing.ms += phc === LEGACY ? 300 : 20;
          if (right[phc] === text) return true;
        }
        return false;
      },
      dummyHash: async () => DUMMY,
      needsRehash: (phc) => phc !== OURS && phc !== DUMMY,
    },
    floor: { get: async () => floorMs, observe: (ms) => observed.push(ms) },
    sleep: async (ms) => {
      slept.push(ms);
    },
  });
  /** Checks, and pads as a refusal whatever the outcome (as a disabled account's right password is). */
  const refused = async (phc: string | undefined, password: string, raw = password) => {
    const result = await check(phc, password, raw, 'shared');
    await result.padRefusal();
    return result.matches;
  };
  return { check, refused, verified, observed, slept, slots: () => slots };
}

describe('login password check', () => {
  const right = { [OURS]: 'right', [LEGACY]: 'ﬁne' };

  it('pads every refusal to the floor: an unknown address, our hash, an imported one', async () => {
    const { refused, slept, observed } = setUp(375, right);
    expect(await refused(undefined, 'wrong')).toBe(false);
    expect(await refused(OURS, 'wrong')).toBe(false);
    expect(await refused(LEGACY, 'wrong')).toBe(false);
    expect(slept).toEqual([355, 355, 75]);
    expect(observed).toEqual([20, 20, 300]);
  });

  it('pads a right password that signs in nothing (a disabled or unverified account) as a wrong one', async () => {
    const { refused, slept } = setUp(375, right);
    expect(await refused(OURS, 'right')).toBe(true);
    expect(await refused(LEGACY, 'ﬁne')).toBe(true);
    expect(slept).toEqual([355, 75]);
  });

  it('tries an imported hash with the typed text too, and pads two floors for every account then', async () => {
    const { check, refused, slept, verified, slots } = setUp(375, right);
    // NFKC of "ﬁne" is "fine": the legacy system hashed what was typed.
    expect((await check(LEGACY, 'fine', 'ﬁne', 'shared')).matches).toBe(true);
    expect(verified).toEqual([
      [LEGACY, 'fine'],
      [LEGACY, 'ﬁne'],
    ]);
    // Both in one slot: a second wait for a slot would show in the answer's time.
    expect(slots()).toBe(1);
    expect(await refused(LEGACY, 'fine!', 'ﬁne!')).toBe(false);
    expect(await refused(OURS, 'fine!', 'ﬁne!')).toBe(false);
    expect(await refused(undefined, 'fine!', 'ﬁne!')).toBe(false);
    expect(slept).toEqual([150, 730, 730]);
    // Our own hashes are of the NFKC form: one verification.
    expect(verified.filter(([phc]) => phc === OURS)).toHaveLength(1);
  });

  it('never lets the dummy sign anyone in, and pads nothing until asked', async () => {
    const { check, slept } = setUp(375, { ...right, [DUMMY]: 'anything' });
    expect((await check(OURS, 'right', 'right', 'reserved')).matches).toBe(true);
    expect((await check(undefined, 'anything', 'anything', 'shared')).matches).toBe(false);
    expect(slept).toEqual([]);
  });

  it('waits for nothing while the floor is 0', async () => {
    const { refused, slept } = setUp(0, right);
    expect(await refused(LEGACY, 'wrong')).toBe(false);
    expect(await refused(undefined, 'wrong')).toBe(false);
    expect(slept).toEqual([]);
  });
});
