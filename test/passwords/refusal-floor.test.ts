import { describe, expect, it } from 'vitest';
import { parseLegacyHash } from '../../src/passwords/legacy-hash-format.js';
import type { VerificationTiming } from '../../src/passwords/password-hasher.js';
import { createRefusalFloor, REFUSAL_FLOOR_REFRESH_MS } from '../../src/passwords/refusal-floor.js';

const DUMMY = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA';

/**
 * A floor over a hasher whose verifications take `msOf(hash)` (by scheme and work factor), a
 * stored class list the test edits, and a clock the test moves.
 */
function setUp(options: { classes?: string[]; msOf?: (phc: string) => number } = {}) {
  const state = {
    classes: options.classes ?? [],
    reads: 0,
    failRead: false,
    verified: [] as string[],
    warnings: [] as string[],
    now: 0,
  };
  const msOf =
    options.msOf ??
    ((phc: string) => {
      const parsed = parseLegacyHash(phc);
      if (!parsed.ok) throw new Error(parsed.reason);
      if (parsed.hash.scheme === 'bcrypt') return 2 ** (parsed.hash.cost - 4);
      if (parsed.hash.scheme === 'pbkdf2-sha256') return parsed.hash.iterations / 10_000;
      return 20;
    });
  const floor = createRefusalFloor({
    classes: async () => {
      state.reads += 1;
      if (state.failRead) throw new Error('database unreachable');
      return state.classes;
    },
    hasher: {
      verify: async (phc: string, _password: string, _lane?: unknown, timing?: VerificationTiming) => {
        state.verified.push(phc);
        if (timing !== undefined) timing.ms += msOf(phc);
        return false;
      },
      dummyHash: async () => DUMMY,
    },
    warn: (message) => state.warnings.push(message),
    now: () => state.now,
  });
  return { floor, state };
}

/** Lets a background read (and its measurements) finish. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('refusal floor', () => {
  it('is 0, and times nothing, while no legacy class is stored', async () => {
    const { floor, state } = setUp();
    floor.observe(500);
    expect(await floor.get()).toBe(0);
    expect(state.verified).toEqual([]);
    expect(state.reads).toBe(1);
  });

  it('is the slowest of the stored classes and our own hash, timed twice each, plus a quarter', async () => {
    // bcrypt 12: 256 ms; PBKDF2 870 000: 87 ms; our argon2id dummy: 20 ms.
    const { floor, state } = setUp({ classes: ['bcrypt:12', 'pbkdf2-sha256:870000'] });
    expect(floor.current()).toBe(0);
    expect(state.reads).toBe(0);
    expect(await floor.get()).toBe(320);
    expect(floor.current()).toBe(320);
    expect(state.verified).toHaveLength(6);
    expect(state.verified.filter((phc) => phc === DUMMY)).toHaveLength(2);
    // A probe of the class (no stored account's hash), timed twice.
    expect(state.verified.filter((phc) => phc.startsWith('$2b$12$'))).toHaveLength(2);

    // Our own hash can be the slowest (a bcrypt 4 import is faster than argon2id).
    expect(await setUp({ classes: ['bcrypt:4'] }).floor.get()).toBe(25);
  });

  it('reads the classes again once a minute, in the background, timing only classes it has not timed', async () => {
    const { floor, state } = setUp({ classes: ['bcrypt:8'] });
    expect(await floor.get()).toBe(25);
    state.classes = ['bcrypt:12'];
    state.now = REFUSAL_FLOOR_REFRESH_MS - 1;
    expect(await floor.get()).toBe(25);
    expect(state.reads).toBe(1);

    state.now = REFUSAL_FLOOR_REFRESH_MS;
    const verifiedBefore = state.verified.length;
    // The read starts, but this refusal does not wait for the database or the timing.
    expect(await floor.get()).toBe(25);
    await settle();
    expect(state.reads).toBe(2);
    expect(await floor.get()).toBe(320);
    // The dummy was timed once, at the first read; bcrypt 12 is new.
    expect(state.verified.slice(verifiedBefore).every((phc) => phc.startsWith('$2b$12$'))).toBe(true);
    expect(state.verified.length - verifiedBefore).toBe(2);

    // All classes removed (by hand): the floor is 0 again.
    state.classes = [];
    state.now = 2 * REFUSAL_FLOOR_REFRESH_MS;
    await floor.get();
    await settle();
    expect(await floor.get()).toBe(0);
  });

  it('rises above checks observed to take longer, for the window they were seen in and the next', async () => {
    const { floor, state } = setUp({ classes: ['bcrypt:8'] });
    expect(await floor.get()).toBe(25);
    floor.observe(24);
    expect(await floor.get()).toBe(30);
    floor.observe(200);
    expect(await floor.get()).toBe(250);
    floor.observe(100);
    expect(await floor.get()).toBe(250);
    for (const minute of [1, 2]) {
      state.now = minute * REFUSAL_FLOOR_REFRESH_MS;
      await floor.get();
      await settle();
      expect(await floor.get()).toBe(minute === 1 ? 250 : 25);
    }
    // Bounded, whatever a machine under load reports.
    floor.observe(1_000_000);
    expect(await floor.get()).toBe(10_000);
  });

  it('warns and keeps what it knew when the read fails, and tries again after 5 s', async () => {
    const { floor, state } = setUp({ classes: ['bcrypt:12'] });
    state.failRead = true;
    expect(await floor.get()).toBe(0);
    expect(state.warnings).toEqual(['could not read or time the imported password-hash classes; retrying']);
    state.now = 4_999;
    expect(await floor.get()).toBe(0);
    expect(state.reads).toBe(1);
    state.failRead = false;
    state.now = 5_000;
    // Still the first read to succeed: waited for.
    expect(await floor.get()).toBe(320);

    state.failRead = true;
    state.now = 5_000 + REFUSAL_FLOOR_REFRESH_MS;
    await floor.get();
    await settle();
    expect(state.warnings).toHaveLength(2);
    expect(await floor.get()).toBe(320);
  });

  it('reads once for many refusals at once, and skips a class it cannot probe', async () => {
    const { floor, state } = setUp({ classes: ['bcrypt:12', 'scrypt:16384'] });
    expect(await Promise.all([floor.get(), floor.get(), floor.get()])).toEqual([320, 320, 320]);
    expect(state.reads).toBe(1);
    expect(state.verified).toHaveLength(4);
  });
});
