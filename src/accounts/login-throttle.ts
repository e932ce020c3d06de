import { createHash } from 'node:crypto';
import { addressBucket } from '../lib/address-bucket.js';
import type { CounterStore } from './counter-store.js';

/**
 * Limits on failed password checks (RFC 6749 §10.10 and §4.3.2: protect the password grant against
 * brute force), split by trust as in OWASP's device-cookie design.
 */
export interface LoginThrottleLimits {
  /** Failures from untrusted clients per account within the window; only untrusted clients are then refused. */
  perAccount: number;
  /** Failures from untrusted clients per client IP within the window. */
  perIp: number;
  /** Failures from untrusted clients server-wide within the window. */
  global: number;
  /** Failures per trusted device (or per signed-in session, for the current-password check). */
  perDevice: number;
  /**
   * Successful logins per account within the window, trusted or not. Only failures were counted
   * before, so one account's holder could log in without end: a hash and a session row each, and
   * with the device tokens those logins collect, the hash slots reserved for trusted devices.
   * Only a right password counts, so nobody without it can spend an account's allowance.
   * @default unlimited
   */
  successesPerAccount?: number;
  /** Window length in ms; limits lift on their own when it ends (no permanent lock-out). */
  windowMs: number;
}

/**
 * Who is making a password attempt.
 * - `trusted`: a client holding a valid device token for the account (or an authenticated session
 *   proving its current password); judged only on its own counter.
 * - `untrusted`: anyone else; judged on the account's untrusted counter (when the username is a
 *   syntactically valid email), the client IP's and the global one.
 */
export type LoginSubject =
  | { trust: 'trusted'; deviceKey: string }
  | { trust: 'untrusted'; accountKey: string | undefined; ip: string };

/** Whether an attempt may proceed. */
export type ThrottleDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * Counts failed password checks. Checking only reads counters: a refused attempt changes no state,
 * so a blocked client cannot grow the store, and only real failures are counted, so correct
 * passwords never count against anyone. Exactness under concurrency comes from the caller running
 * at most one check per account or device at a time (see `createKeyedGate`).
 */
export interface LoginThrottle {
  /** Whether `subject` may try a password now. Reads only. */
  check(subject: LoginSubject): Promise<ThrottleDecision>;
  /** Counts a wrong password for `subject`. */
  recordFailure(subject: LoginSubject): Promise<void>;
  /** A right password: clears the counter that belongs to this account or device (never the IP's or global). */
  recordSuccess(subject: LoginSubject): Promise<void>;
  /** Whether the account (its normalized email) may log in again now. Reads only. */
  checkLogins(accountKey: string): Promise<ThrottleDecision>;
  /** Counts a successful login to the account. */
  recordLogin(accountKey: string): Promise<void>;
  /**
   * Forgets the account's failed-login count (untrusted clients), after its owner proved control
   * of the address by a password reset: the lockout an attacker caused ends with it.
   */
  clearAccount(accountKey: string): Promise<void>;
}

/**
 * Counter keys are fixed-size digests, so a 4 KiB username or a long IPv6 literal costs the same
 * bytes as any other, and the store never holds the identifier itself.
 */
function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 22);
}

/** Creates a {@link LoginThrottle} over a {@link CounterStore}. */
export function createLoginThrottle(
  store: CounterStore,
  limits: LoginThrottleLimits,
  clock: () => number,
): LoginThrottle {
  const keysOf = (subject: LoginSubject): { key: string; max: number }[] => {
    if (subject.trust === 'trusted')
      return [{ key: `login:device:${digest(subject.deviceKey)}`, max: limits.perDevice }];
    const keys = [
      { key: `login:ip:${digest(addressBucket(subject.ip))}`, max: limits.perIp },
      { key: 'login:global', max: limits.global },
    ];
    if (subject.accountKey !== undefined)
      keys.push({ key: `login:account:${digest(subject.accountKey)}`, max: limits.perAccount });
    return keys;
  };
  const loginsKey = (accountKey: string) => `login:success:${digest(accountKey)}`;
  const successes = limits.successesPerAccount ?? Number.POSITIVE_INFINITY;
  return {
    async checkLogins(accountKey) {
      if (successes === Number.POSITIVE_INFINITY) return { allowed: true };
      const window = await store.peek(loginsKey(accountKey));
      if (window === undefined || window.count < successes) return { allowed: true };
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((window.resetAt - clock()) / 1000)) };
    },
    async recordLogin(accountKey) {
      if (successes !== Number.POSITIVE_INFINITY)
        await store.increment(loginsKey(accountKey), limits.windowMs);
    },
    async check(subject) {
      const keys = keysOf(subject);
      const windows = await Promise.all(keys.map(({ key }) => store.peek(key)));
      let blockedUntil = 0;
      windows.forEach((window, i) => {
        const max = keys[i]?.max ?? 0;
        if (window !== undefined && window.count >= max)
          blockedUntil = Math.max(blockedUntil, window.resetAt);
      });
      if (blockedUntil === 0) return { allowed: true };
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((blockedUntil - clock()) / 1000)) };
    },
    async recordFailure(subject) {
      await Promise.all(keysOf(subject).map(({ key }) => store.increment(key, limits.windowMs)));
    },
    async clearAccount(accountKey) {
      await store.reset(`login:account:${digest(accountKey)}`);
    },
    async recordSuccess(subject) {
      if (subject.trust === 'trusted') {
        await store.reset(`login:device:${digest(subject.deviceKey)}`);
      } else if (subject.accountKey !== undefined) {
        // The account's owner proved the password: their other untrusted clients need not wait out
        // failures made before. The IP and global counters stay: they measure the flood, not the account.
        await store.reset(`login:account:${digest(subject.accountKey)}`);
      }
    },
  };
}
