import { randomBytes } from 'node:crypto';
import type { CoreWarn } from '../events/redis-connections.js';
import { probeHash } from './legacy-hash-class.js';
import type { PasswordHasher } from './password-hasher.js';

/**
 * Headroom over the slowest verification measured: a probe is timed once, while real checks run
 * beside other work. Checks seen to take longer raise the floor themselves (`observe`).
 */
const MARGIN = 1.25;
/** How often the stored classes are read again: an import by another process counts within this. */
export const REFUSAL_FLOOR_REFRESH_MS = 60_000;
/** After a read or a measurement failed, the next try (the floor stays what it was meanwhile). */
const RETRY_MS = 5_000;
/**
 * Upper bound of the floor. The slowest verification `LEGACY_HASH_LIMITS` allows (argon2 at
 * 128 MiB and t=10) takes about 1.5 s on one idle core; a machine so loaded that a check takes
 * longer than this already answers late.
 */
const MAX_FLOOR_MS = 10_000;
/** Our own argon2id dummy's entry among the measured classes. */
const DUMMY = 'argon2id:ours';

/**
 * How long a refused sign-in's password check must take, so that it does not tell an imported
 * account from an unknown address (red-team 2026-12k P1). An imported account that has not signed
 * in since keeps its old hash, and a wrong password is checked against it: bcrypt at cost 12 takes
 * 345 ms where our argon2id takes 17. Once any legacy hash class is stored, every refused check
 * (an unknown address, a wrong password for any account) lasts at least the slowest of those
 * classes and our own hash, measured on this machine, plus {@link MARGIN}. The wait is a timer,
 * not CPU: a flood of wrong passwords costs no more hashing than before. While no legacy hash was
 * ever imported the floor is 0, and refusals take what they took (an argon2id check either way).
 */
export interface RefusalFloor {
  /**
   * Milliseconds one verification of a refused check must last; 0 while no legacy class is stored.
   * The first call reads the stored classes and times one probe hash of each (later calls wait
   * for nothing: the classes are read again in the background, at most once a minute).
   */
  get(): Promise<number>;
  /** The floor as it stands, reading nothing (0 before the first refusal read it): for metrics. */
  current(): number;
  /** A verification took `ms` (slot time only): the floor rises above what checks take now. */
  observe(ms: number): void;
}

/** Dependencies of {@link createRefusalFloor}. */
export interface RefusalFloorOptions {
  /** The costliest stored class of each family (`legacy_hash_costs`). */
  classes(): Promise<readonly string[]>;
  hasher: Pick<PasswordHasher, 'verify' | 'dummyHash'>;
  warn: CoreWarn;
  /** Monotonic milliseconds, for the re-reads. @default performance.now */
  now?: () => number;
}

/** Creates a {@link RefusalFloor}; it reads and measures nothing until a check is first refused. */
export function createRefusalFloor(options: RefusalFloorOptions): RefusalFloor {
  const { hasher, warn } = options;
  const now = options.now ?? (() => performance.now());
  // One entry per stored class (≤ 4, one per family) and the dummy: bounded by the table.
  let measured = new Map<string, number>();
  let base = 0;
  // The longest verification observed in this refresh window and in the one before: a spike
  // raises the floor for a minute or two, not for the life of the process.
  let peak = 0;
  let previousPeak = 0;
  let loaded = false;
  let nextReadAt = Number.NEGATIVE_INFINITY;
  let reading: Promise<void> | undefined;

  /** The longer of two verifications of `phc` with throwaway passwords. */
  const measure = async (phc: string) => {
    let longest = 0;
    for (let run = 0; run < 2; run += 1) {
      const timing = { ms: 0 };
      await hasher.verify(phc, randomBytes(12).toString('base64url'), 'shared', timing);
      longest = Math.max(longest, timing.ms);
    }
    return longest;
  };

  const read = async () => {
    try {
      const classes = await options.classes();
      const next = new Map<string, number>();
      for (const hashClass of classes.length === 0 ? [] : [DUMMY, ...classes]) {
        const probe = hashClass === DUMMY ? await hasher.dummyHash() : probeHash(hashClass);
        // A class this version cannot read (a newer version's, or beyond today's limits) is never
        // verified either: such an account's every check is refused unverified.
        if (probe === undefined) continue;
        next.set(hashClass, measured.get(hashClass) ?? (await measure(probe)));
      }
      measured = next;
      base = next.size === 0 ? 0 : Math.max(...next.values()) * MARGIN;
      previousPeak = peak;
      peak = 0;
      loaded = true;
      nextReadAt = now() + REFUSAL_FLOOR_REFRESH_MS;
    } catch (error) {
      warn('could not read or time the imported password-hash classes; retrying', {
        error: error instanceof Error ? error.message : String(error),
      });
      nextReadAt = now() + RETRY_MS;
    }
  };

  const current = () =>
    base === 0 ? 0 : Math.min(MAX_FLOOR_MS, Math.max(base, Math.max(peak, previousPeak) * MARGIN));

  return {
    async get() {
      if (reading === undefined && now() >= nextReadAt) {
        reading = read().finally(() => {
          reading = undefined;
        });
      }
      // Only the first read is waited for; after it, a refusal never waits on the database.
      if (!loaded && reading !== undefined) await reading;
      return current();
    },
    current,
    observe(ms) {
      peak = Math.max(peak, ms);
    },
  };
}
