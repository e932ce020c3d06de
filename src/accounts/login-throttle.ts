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

/** Counts failed logins per account and per IP. */
export interface LoginThrottle {
  /** Checked before the password is: a right password still fails while limited. */
  check(accountKey: string, ip: string): Promise<ThrottleDecision>;
  /** Records a failure against both keys. */
  recordFailure(accountKey: string, ip: string): Promise<void>;
  /** Clears the account's failures after a successful login (the IP's stay). */
  recordSuccess(accountKey: string): Promise<void>;
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
    async check(account, ip) {
      const [byAccount, byIp] = await Promise.all([store.peek(accountKey(account)), store.peek(ipKey(ip))]);
      const blockedUntil = Math.max(
        byAccount !== undefined && byAccount.count >= limits.perAccount ? byAccount.resetAt : 0,
        byIp !== undefined && byIp.count >= limits.perIp ? byIp.resetAt : 0,
      );
      if (blockedUntil === 0) return { allowed: true };
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((blockedUntil - clock()) / 1000)) };
    },
    async recordFailure(account, ip) {
      await Promise.all([
        store.increment(accountKey(account), limits.windowMs),
        store.increment(ipKey(ip), limits.windowMs),
      ]);
    },
    async recordSuccess(account) {
      await store.reset(accountKey(account));
    },
  };
}
