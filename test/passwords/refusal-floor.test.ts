import { describe, expect, it } from 'vitest';
import { parseLegacyHash } from '../../src/passwords/legacy-hash-format.js';
import {
  createRefusalFloor,
  MAX_REFUSAL_FLOOR_MS,
  REFUSAL_FLOOR_REFRESH_MS,
  REFUSAL_FLOOR_RETIME_MS,
  type RefusalFloor,
} from '../../src/passwords/refusal-floor.js';

const DUMMY = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA';

/**
 * A floor over a hasher whose verifications take `msOf(hash)` ms (bcrypt: 2^(cost-4), PBKDF2:
 * iterations / 10 000, our dummy: 20) times `state.load`, a stored class list the test edits, and
 * a clock the test moves.
 */
function setUp(classes: string[] = []) {
  const state = {
    classes,
    reads: 0,
    failRead: false,
    failTiming: false,
    load: 1,
    timed: [] as string[],
    warnings: [] as string[],
    now: 0,
  };
  const msOf = (phc: string) => {
    if (phc === DUMMY) return 20;
    const parsed = parseLegacyHash(phc);
    if (!parsed.ok) throw new Error(parsed.reason);
    if (parsed.hash.scheme === 'bcrypt') return 2 ** (parsed.hash.cost - 4);
    if (parsed.hash.scheme === 'pbkdf2-sha256') return parsed.hash.iterations / 10_000;
    return 40;
  };
  const floor = createRefusalFloor({
    classes: async () => {
      state.reads += 1;
      if (state.failRead) throw new Error('database unreachable');
      return state.classes;
    },
    hasher: {
      timeVerification: async (phc) => {
        if (state.failTiming) throw new Error('binding failed');
        state.timed.push(phc);
        return msOf(phc) * state.load;
      },
      dummyHash: async () => DUMMY,
    },
    warn: (message) => state.warnings.push(message),
    now: () => state.now,
  });
  return { floor, state };
}

/** Lets the background timing finish. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A refusal (which may start a read or a timing), then the floor once the timing has finished. */
async function settled(floor: RefusalFloor): Promise<number> {
  await floor.get();
  await settle();
  return floor.get();
}

describe('refusal floor', () => {
  it('is 0, and times nothing, while no legacy class is stored', async () => {
    const { floor, state } = setUp();
    expect(floor.current()).toBe(0);
    floor.observe(500);
    expect(await floor.get()).toBe(0);
    await settle();
    expect(state.timed).toEqual([]);
    expect(state.reads).toBe(1);
  });

  it('is the longest floor until the classes are timed, then the slowest of them and our hash plus a quarter', async () => {
    // bcrypt 12: 256 ms; PBKDF2 870 000: 87 ms; our argon2id dummy: 20 ms.
    const { floor, state } = setUp(['bcrypt:12', 'pbkdf2-sha256:870000']);
    expect(floor.current()).toBe(0);
    expect(state.reads).toBe(0);
    // Timed off the slots and in the background: the first refusals wait the longest floor.
    expect(await floor.get()).toBe(MAX_REFUSAL_FLOOR_MS);
    await settle();
    expect(await floor.get()).toBe(320);
    expect(floor.current()).toBe(320);
    expect(state.timed).toHaveLength(3);
    // A probe of each class (no stored account's hash).
    expect(state.timed.filter((phc) => phc.startsWith('$2b$12$'))).toHaveLength(1);
    // Our own hash can be the slowest (a bcrypt 4 import is faster than argon2id).
    expect(await settled(setUp(['bcrypt:4']).floor)).toBe(25);
  });

  it('reads the classes again every 10 s (an import elsewhere), and at once after one in this process', async () => {
    const { floor, state } = setUp(['bcrypt:8']);
    expect(await settled(floor)).toBe(25);
    state.classes = ['bcrypt:12'];
    state.now = REFUSAL_FLOOR_REFRESH_MS - 1;
    expect(await floor.get()).toBe(25);
    expect(state.reads).toBe(1);
    state.now = REFUSAL_FLOOR_REFRESH_MS;
    // Read before this refusal's answer; the new class is not timed yet: fail closed.
    expect(await floor.get()).toBe(MAX_REFUSAL_FLOOR_MS);
    expect(state.reads).toBe(2);
    await settle();
    expect(await floor.get()).toBe(320);
    // Only the new class was timed again.
    expect(state.timed.filter((phc) => phc === DUMMY)).toHaveLength(1);

    state.classes = [];
    floor.invalidate();
    expect(await floor.get()).toBe(0);
    expect(state.reads).toBe(3);
  });

  it('times each class again every 5 minutes and uses the median of the last three timings', async () => {
    const { floor, state } = setUp(['bcrypt:12']);
    // Timed while the machine was three times slower than usual.
    state.load = 3;
    expect(await settled(floor)).toBe(960);
    state.load = 1;
    for (const [minutes, expected] of [
      [5, 960],
      [10, 320],
    ] as const) {
      state.now = minutes * 60_000;
      // The 5-minute retime: [768, 256] → median 768 (the later of two); then [768, 256, 256] → 256.
      expect(await settled(floor), `after ${minutes} min`).toBe(expected);
    }
    expect(REFUSAL_FLOOR_RETIME_MS).toBe(5 * 60_000);
  });

  it('rises above checks observed to take longer, for the window they were seen in and the next', async () => {
    const { floor, state } = setUp(['bcrypt:8']);
    expect(await settled(floor)).toBe(25);
    floor.observe(24);
    expect(await floor.get()).toBe(30);
    floor.observe(200);
    expect(await floor.get()).toBe(250);
    for (const window of [1, 2]) {
      state.now = window * REFUSAL_FLOOR_REFRESH_MS;
      expect(await floor.get()).toBe(window === 1 ? 250 : 25);
    }
    // Bounded, whatever a machine under load reports.
    floor.observe(1_000_000);
    expect(await floor.get()).toBe(MAX_REFUSAL_FLOOR_MS);
  });

  it('fails closed: a failed first read gives the longest floor until a read succeeds, retried after 5 s', async () => {
    const { floor, state } = setUp(['bcrypt:12']);
    state.failRead = true;
    expect(await floor.get()).toBe(MAX_REFUSAL_FLOOR_MS);
    expect(state.warnings).toEqual(['could not read the imported password-hash classes; retrying']);
    state.now = 4_999;
    expect(await floor.get()).toBe(MAX_REFUSAL_FLOOR_MS);
    expect(state.reads).toBe(1);
    state.failRead = false;
    state.now = 5_000;
    expect(await settled(floor)).toBe(320);
    // Known before: a later failed read keeps what the last one found.
    state.failRead = true;
    state.now = 5_000 + REFUSAL_FLOOR_REFRESH_MS;
    expect(await floor.get()).toBe(320);
    expect(state.warnings).toHaveLength(2);
    // So does a server that never imported anything: a database blip does not slow its refusals.
    const { floor: none, state: noneState } = setUp();
    expect(await none.get()).toBe(0);
    noneState.failRead = true;
    noneState.now = REFUSAL_FLOOR_REFRESH_MS;
    expect(await none.get()).toBe(0);
  });

  it('stays at the longest floor while timing fails, and tries again at the next refusal', async () => {
    const { floor, state } = setUp(['bcrypt:12']);
    state.failTiming = true;
    expect(await settled(floor)).toBe(MAX_REFUSAL_FLOOR_MS);
    expect(state.warnings[0]).toMatch(/could not time/);
    // Not tried again (nor warned about) at every refusal: after 5 s.
    await floor.get();
    await settle();
    expect(state.warnings).toHaveLength(1);
    state.failTiming = false;
    state.now = 5_000;
    expect(await settled(floor)).toBe(320);
  });

  it('reads once for many refusals at once, and skips a class it cannot probe', async () => {
    const { floor, state } = setUp(['bcrypt:12', 'scrypt:16384']);
    await Promise.all([floor.get(), floor.get(), floor.get()]);
    expect(state.reads).toBe(1);
    await settle();
    expect(await floor.get()).toBe(320);
    expect(state.timed).toHaveLength(2);
  });
});
