import type { CoreWarn } from '../events/redis-connections.js';
import { probeHash } from './legacy-hash-class.js';
import type { PasswordHasher } from './password-hasher.js';

/**
 * Headroom over the slowest class's typical verification: real checks run beside other work.
 * Checks seen to take longer raise the floor themselves (`observe`).
 */
const MARGIN = 1.25;
/**
 * How often the stored classes are read again (a primary-key read of at most four rows, and only
 * when a sign-in is refused): an import by another process is padded within this.
 */
export const REFUSAL_FLOOR_REFRESH_MS = 10_000;
/** How often each stored class is timed again: load at one timing does not stick for good. */
export const REFUSAL_FLOOR_RETIME_MS = 5 * 60_000;
/** Timings kept per class; the floor uses their median. */
const TIMINGS_KEPT = 3;
/** After a read or a timing failed, the next try. */
const RETRY_MS = 5_000;
/**
 * Upper bound of the floor, and the floor while it cannot be known (fail closed): before the stored
 * classes could be read once, and while a class read for the first time is being timed. The
 * slowest verification `LEGACY_HASH_LIMITS` allows (bcrypt 13) takes ≈ 0.7 s on one idle core.
 */
export const MAX_REFUSAL_FLOOR_MS = 2_000;
/** Our own argon2id dummy's entry among the timed classes. */
const DUMMY = 'argon2id:ours';

/**
 * How long a refused sign-in's password check must take, so that it does not tell an imported
 * account from an unknown address (red-team 2026-12k P1). An imported account that has not signed
 * in since keeps its old hash, and a wrong password is checked against it: bcrypt at cost 12 takes
 * 345 ms where our argon2id takes 17. Once any legacy hash class is stored, every refused check
 * (an unknown address, a wrong password for any account) lasts at least the slowest of those
 * classes and our own hash, timed on this machine, times {@link MARGIN}. The wait is a timer, not
 * CPU: a flood of wrong passwords costs no more hashing than before. While no legacy hash was
 * ever imported the floor is 0, and refusals take what they took (an argon2id check either way).
 */
export interface RefusalFloor {
  /**
   * Milliseconds one verification of a refused check must last; 0 while no legacy class is stored.
   * Reads the stored classes when the last read is older than {@link REFUSAL_FLOOR_REFRESH_MS}
   * (or {@link invalidate} was called); a class not timed yet is timed in the background, and
   * until then, like before the first successful read, the floor is {@link MAX_REFUSAL_FLOOR_MS}.
   */
  get(): Promise<number>;
  /** The floor as it stands, reading nothing (0 before the first read): for metrics. */
  current(): number;
  /** A verification took `ms` (slot time only): the floor rises above what checks take now. */
  observe(ms: number): void;
  /** The stored classes changed (an import committed in this process): read them at the next refusal. */
  invalidate(): void;
}

/** Dependencies of {@link createRefusalFloor}. */
export interface RefusalFloorOptions {
  /** The costliest stored class of each family (`legacy_hash_costs`). */
  classes(): Promise<readonly string[]>;
  hasher: Pick<PasswordHasher, 'timeVerification' | 'dummyHash'>;
  warn: CoreWarn;
  /** Monotonic milliseconds, for the re-reads. @default performance.now */
  now?: () => number;
}

const median = (values: readonly number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** Creates a {@link RefusalFloor}; it reads and times nothing until a check is first refused. */
export function createRefusalFloor(options: RefusalFloorOptions): RefusalFloor {
  const { hasher, warn } = options;
  const now = options.now ?? (() => performance.now());
  // The classes of the last successful read (≤ 4, one per family) and, per class timed, its last
  // TIMINGS_KEPT timings and when it was last timed: bounded by the table.
  let stored: readonly string[] | undefined;
  let timings = new Map<string, { values: number[]; at: number }>();
  // The longest verification observed in this refresh window and in the one before: a spike
  // raises the floor for a window or two, not for the life of the process.
  let peak = 0;
  let previousPeak = 0;
  let nextReadAt = Number.NEGATIVE_INFINITY;
  /** The last read failed (before any succeeded: refusals wait the longest floor, fail closed). */
  let readFailed = false;
  let reading: Promise<void> | undefined;
  /** A background timing runs (one at a time); after one failed, none starts before this. */
  let timingRuns = false;
  let nextTimingAt = Number.NEGATIVE_INFINITY;

  const wanted = () => (stored === undefined || stored.length === 0 ? [] : [DUMMY, ...stored]);

  /** Not timed yet, or timed too long ago. */
  const due = (hashClass: string) =>
    now() - (timings.get(hashClass)?.at ?? -Infinity) >= REFUSAL_FLOOR_RETIME_MS;

  /** Times the wanted classes that are due, one at a time. */
  const retime = async () => {
    for (const hashClass of wanted()) {
      if (!due(hashClass)) continue;
      const known = timings.get(hashClass);
      const probe = hashClass === DUMMY ? await hasher.dummyHash() : probeHash(hashClass);
      if (probe === undefined) continue;
      const ms = await hasher.timeVerification(probe);
      timings.set(hashClass, { values: [...(known?.values ?? []), ms].slice(-TIMINGS_KEPT), at: now() });
    }
  };

  const startTiming = () => {
    if (timingRuns || now() < nextTimingAt) return;
    timingRuns = true;
    void retime()
      .catch((error: unknown) => {
        nextTimingAt = now() + RETRY_MS;
        warn('could not time the imported password-hash classes; refusals wait the longest floor meanwhile', {
          error: error instanceof Error ? error.message : String(error),
        });
      })
      .finally(() => {
        timingRuns = false;
      });
  };

  const read = async () => {
    try {
      // A class this version cannot probe (a newer version's, or beyond today's limits) is never
      // verified either: such an account's every check is refused unverified.
      stored = (await options.classes()).filter((hashClass) => probeHash(hashClass) !== undefined);
      const keep = new Set(wanted());
      timings = new Map([...timings].filter(([hashClass]) => keep.has(hashClass)));
      previousPeak = peak;
      peak = 0;
      readFailed = false;
      nextReadAt = now() + REFUSAL_FLOOR_REFRESH_MS;
    } catch (error) {
      readFailed = true;
      warn('could not read the imported password-hash classes; retrying', {
        error: error instanceof Error ? error.message : String(error),
      });
      nextReadAt = now() + RETRY_MS;
    }
  };

  const current = () => {
    // Never read: the longest floor if a read failed (fail closed), else nothing yet (only metrics
    // ask before the first read). A later failed read keeps what the last one found: the table
    // changes only with an import, and a server that never imported must not make every
    // refusal wait 2 s through a database blip.
    if (stored === undefined) return readFailed ? MAX_REFUSAL_FLOOR_MS : 0;
    const classes = wanted();
    if (classes.length === 0) return 0;
    let slowest = 0;
    for (const hashClass of classes) {
      const known = timings.get(hashClass);
      // Not timed yet: the longest floor until it is.
      if (known === undefined) return MAX_REFUSAL_FLOOR_MS;
      slowest = Math.max(slowest, median(known.values));
    }
    return Math.min(MAX_REFUSAL_FLOOR_MS, Math.max(slowest, peak, previousPeak) * MARGIN);
  };

  return {
    async get() {
      if (now() >= nextReadAt) {
        reading ??= read().finally(() => {
          reading = undefined;
        });
        await reading;
      }
      if (wanted().some(due)) startTiming();
      return current();
    },
    current,
    observe(ms) {
      peak = Math.max(peak, ms);
    },
    invalidate() {
      nextReadAt = Number.NEGATIVE_INFINITY;
    },
  };
}
