import { randomBytes } from 'node:crypto';
import type { Algorithm } from '@node-rs/argon2';
import { GatehouseError } from '../errors.js';
import { parseLegacyHash } from './legacy-hash-format.js';
import { createLaneLimiter, type Lane, type LaneLimiterStats } from './limit-concurrency.js';
import { loadLegacyVerifier, verifyLegacyHash } from './verify-legacy-hash.js';

// `Algorithm` is an ambient const enum, which verbatimModuleSyntax cannot read at run time: 2 is Argon2id.
const ARGON2ID = 2 as Algorithm;

/** Argon2id parameters (OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1). */
export const ARGON2_PARAMS = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

let argon2: Promise<typeof import('@node-rs/argon2')> | undefined;

/**
 * Loads the argon2 binding on the first hash, not at start-up: an idle server (or one that only
 * checks tokens) does not carry its ≈ 12 MiB of RSS (issue 10, footprint).
 */
function loadArgon2(): Promise<typeof import('@node-rs/argon2')> {
  argon2 ??= import('@node-rs/argon2');
  return argon2;
}

const CURRENT_PREFIX = `$argon2id$v=19$m=${ARGON2_PARAMS.memoryCost},t=${ARGON2_PARAMS.timeCost},p=${ARGON2_PARAMS.parallelism}$`;

/** Where {@link PasswordHasher.verify} adds the milliseconds its verifications held a slot. */
export interface VerificationTiming {
  ms: number;
}

/** Hashes and verifies passwords with argon2id, a bounded number at a time. */
export interface PasswordHasher {
  /**
   * Hashes a (policy-checked, normalized) password into a PHC string. `lane: 'reserved'` is for
   * work done for a trusted device (see {@link createPasswordHasher}). @default 'shared'
   */
  hash(password: string, lane?: Lane): Promise<string>;
  /**
   * True when `password` matches `phc`; false for a malformed hash rather than throwing. Besides
   * our argon2id, `phc` may be an imported legacy hash (bcrypt, passlib bcrypt-sha256 and
   * pbkdf2-sha256, Django pbkdf2_sha256, argon2i): see `legacy-hash-format.ts`. Work factors beyond
   * `LEGACY_HASH_LIMITS` are refused unverified. `lane: 'reserved'` is for trusted devices.
   * Several passwords (the typed and the NFKC form) are tried in turn in one slot, so a check
   * that needs two never waits for a slot twice (red-team review of 2026-12k P1).
   * `timing.ms`, when given, grows by how long the verification itself took (the wait for a slot
   * not counted): what `refusal-floor.ts` pads refused sign-ins against.
   * @default 'shared'
   */
  verify(
    phc: string,
    password: string | readonly string[],
    lane?: Lane,
    timing?: VerificationTiming,
  ): Promise<boolean>;
  /**
   * How long one verification of `phc` takes on this machine now (ms), with a throwaway password,
   * outside the slots: a probe the refusal floor times (a few per minute at most), which a full
   * queue must not refuse or delay.
   */
  timeVerification(phc: string): Promise<number>;
  /**
   * A throwaway argon2id hash with our parameters (made on first use): checking a password for an
   * unknown email against it costs what a wrong password costs (OWASP Authentication Cheat Sheet).
   */
  dummyHash(): Promise<string>;
  /** True when `phc` was made with other parameters and should be re-hashed after a good login. */
  needsRehash(phc: string): boolean;
  /** Hashes running and queued, and the time spent waiting for a slot (metrics). */
  stats(): LaneLimiterStats;
}

/**
 * Creates a {@link PasswordHasher}. Hashing runs on libuv's thread pool (off the event loop);
 * at most `concurrency` hashes run at once because unbounded hashing starves every other request
 * on a small machine (DESIGN.md §6).
 */
export function createPasswordHasher(concurrency: number, reservedSlots = 0): PasswordHasher {
  // At most 64 hashes per slot wait (~1 s of work each); beyond that, 503 rather than a queue
  // that a registration flood could grow until every login times out. `reservedSlots` more slots
  // (with a queue of their own) serve only trusted devices, so that flood can neither queue
  // behind nor 503 a user whose device already signed in (issue 8, OWASP device cookies).
  const limit = createLaneLimiter({
    shared: concurrency,
    reserved: reservedSlots,
    maxQueued: 64 * concurrency,
    onFull: () => {
      throw new GatehouseError('SERVICE_UNAVAILABLE', 'The server is busy; try again shortly.', {
        retryAfterSeconds: 1,
      });
    },
  });
  const options = { algorithm: ARGON2ID, ...ARGON2_PARAMS };
  let dummy: Promise<string> | undefined;
  /** Tries `passwords` against `phc` in turn, here and now (the caller holds a slot, or probes). */
  const verifyNow = async (phc: string, passwords: readonly string[], timing?: VerificationTiming) => {
    // Our own argon2id hashes and imported ones (bcrypt, bcrypt-sha256, argon2, PBKDF2) alike:
    // parsed first, so a hash whose work factors exceed LEGACY_HASH_LIMITS is never computed.
    const parsed = parseLegacyHash(phc);
    if (!parsed.ok) return false;
    // Outside the try: a binding that fails to load is an error, not a wrong password.
    await loadLegacyVerifier(parsed.hash);
    const started = performance.now();
    try {
      for (const password of passwords) if (await verifyLegacyHash(parsed.hash, password)) return true;
      return false;
    } catch {
      return false;
    } finally {
      if (timing !== undefined) timing.ms += performance.now() - started;
    }
  };
  return {
    hash: (password, lane) => limit(async () => (await loadArgon2()).hash(password, options), lane),
    verify: (phc, password, lane, timing) =>
      limit(() => verifyNow(phc, typeof password === 'string' ? [password] : password, timing), lane),
    async timeVerification(phc) {
      const timing = { ms: 0 };
      await verifyNow(phc, [randomBytes(12).toString('base64url')], timing);
      return timing.ms;
    },
    dummyHash() {
      dummy ??= limit(async () => (await loadArgon2()).hash(randomBytes(16).toString('base64url'), options));
      // A failed attempt (a full queue) is not kept: the next caller tries again.
      dummy.catch(() => {
        dummy = undefined;
      });
      return dummy;
    },
    needsRehash: (phc) => !phc.startsWith(CURRENT_PREFIX),
    stats: () => limit.stats(),
  };
}
