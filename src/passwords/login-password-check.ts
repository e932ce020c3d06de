import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Lane } from './limit-concurrency.js';
import type { PasswordHasher } from './password-hasher.js';
import type { RefusalFloor } from './refusal-floor.js';

/** Outcome of a {@link LoginPasswordCheck}. */
export interface PasswordCheck {
  /** The password is the account's (never for a dummy). */
  matches: boolean;
  /**
   * Waits out the refusal floor: call before answering any refusal, a wrong password's or a
   * right one's that signs in nothing (a disabled or unverified account), so that neither's time
   * tells the account apart.
   */
  padRefusal(): Promise<void>;
}

/**
 * Checks `password` (NFKC) against an account whose stored hash is `phc`, or undefined for no such
 * account (then a dummy hash is checked, and it never matches). `raw` is the password as typed: an
 * imported legacy hash was made from it without normalization, so when the two differ a hash that
 * is not ours is also tried with it. A refusal padded by `padRefusal` lasts at least the refusal
 * floor per verification the slowest account would need, whichever account it was (OWASP
 * Authentication Cheat Sheet: a sign-in must not tell, by its time, which accounts exist).
 */
export type LoginPasswordCheck = (
  phc: string | undefined,
  password: string,
  raw: string,
  lane: Lane,
) => Promise<PasswordCheck>;

/** Dependencies of {@link createLoginPasswordCheck}. */
export interface LoginPasswordCheckDeps {
  hasher: Pick<PasswordHasher, 'verify' | 'dummyHash' | 'needsRehash'>;
  floor: Pick<RefusalFloor, 'get' | 'observe'>;
  /** Waits `ms` (a timer: no CPU). @default node:timers/promises setTimeout */
  sleep?: (ms: number) => Promise<unknown>;
}

/** Creates the sign-in's {@link LoginPasswordCheck}. */
export function createLoginPasswordCheck(deps: LoginPasswordCheckDeps): LoginPasswordCheck {
  const { hasher, floor } = deps;
  const sleep = deps.sleep ?? sleepFor;
  return async (phc, password, raw, lane) => {
    const texts =
      phc !== undefined && raw !== password && hasher.needsRehash(phc) ? [password, raw] : [password];
    const target = phc ?? (await hasher.dummyHash());
    // One slot for both texts: a second wait for a slot would show in the answer's time.
    const timing = { ms: 0 };
    const matches = (await hasher.verify(target, texts, lane, timing)) && phc !== undefined;
    floor.observe(timing.ms / texts.length);
    const spent = timing.ms;
    return {
      matches,
      // After the slot is given back, so the wait holds no hashing slot. A password whose typed
      // form differs from its NFKC form costs an imported account two verifications, so it is
      // padded to two floors for every account, ours and unknown ones alike.
      async padRefusal() {
        const rest = (await floor.get()) * (raw === password ? 1 : 2) - spent;
        if (rest > 0) await sleep(rest);
      },
    };
  };
}
