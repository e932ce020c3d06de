import type { CounterStore } from './counter-store.js';

/** Limits on failed logins (RFC 6749 §4.3.2: protect the password grant against brute force). */
export interface LoginThrottleLimits {
  /** Failures per account within the window. */
  perAccount: number;
  /** Failures per client IP within the window. */
  perIp: number;
  /** Window length in ms; limits lift on their own when it ends (no permanent lock-out). */
  windowMs: number;
}

/** Whether a login attempt may proceed. */
export type ThrottleDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** Counts login attempts per account and per IP. */
export interface LoginThrottle {
  /**
   * Counts an attempt, before the password is checked, and says whether it may proceed. Counting
   * first means a burst of parallel guesses cannot all pass before any failure is recorded; a
   * right password still fails while limited.
   */
  attempt(accountKey: string, ip: string): Promise<ThrottleDecision>;
  /** A successful login: clears the account's count and takes this attempt off the IP's. */
  succeeded(accountKey: string, ip: string): Promise<void>;
}

/** Creates a {@link LoginThrottle} over a {@link CounterStore}. */
export function createLoginThrottle(
  store: CounterStore,
  limits: LoginThrottleLimits,
  clock: () => number,
): LoginThrottle {
  const accountKey = (key: string) => `login:account:${key}`;
  const ipKey = (ip: string) => `login:ip:${ip}`;
  return {
    async attempt(account, ip) {
      const [byAccount, byIp] = await Promise.all([
        store.increment(accountKey(account), limits.windowMs),
        store.increment(ipKey(ip), limits.windowMs),
      ]);
      const blockedUntil = Math.max(
        byAccount.count > limits.perAccount ? byAccount.resetAt : 0,
        byIp.count > limits.perIp ? byIp.resetAt : 0,
      );
      if (blockedUntil === 0) return { allowed: true };
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((blockedUntil - clock()) / 1000)) };
    },
    async succeeded(account, ip) {
      await Promise.all([store.reset(accountKey(account)), store.decrement(ipKey(ip))]);
    },
  };
}
