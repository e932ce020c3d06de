import { hash } from 'node:crypto';
import { addressBucket } from '../lib/address-bucket.js';
import { BoundedMap } from '../lib/bounded-map.js';
import { type CounterStore, type HashedCounterKey, hashedCounterKey } from './counter-store.js';

/**
 * Limits on failed password checks (RFC 6749 §10.10 and §4.3.2: protect the password grant against
 * brute force), split by trust as in OWASP's device-cookie design.
 */
export interface LoginThrottleLimits {
  /** Failures from untrusted clients per account within the window; only untrusted clients are then refused. */
  perAccount: number;
  /** Failures from untrusted clients per client IP within the window. */
  perIp: number;
  /**
   * Failures from untrusted clients server-wide within the window (one IPv6 /48 adds at most
   * `perIp`). Beyond it the breaker is open: an untrusted login is refused unless its username is
   * an email and its client address has fewer than {@link OPEN_BREAKER_FAILURES_PER_IP} failures
   * and its IPv6 /48 fewer than {@link OPEN_BREAKER_FAILURES_PER_NETWORK} (the account's own limit
   * applies as always; another client's failures never lock it).
   */
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
  | { readonly trust: 'trusted'; readonly deviceKey: string }
  | { readonly trust: 'untrusted'; readonly accountKey: string | undefined; readonly ip: string };

/**
 * Client addresses whose two counter keys are kept between attempts (see `addressCounters`):
 * ≈ 0.4 KiB each, so at most ≈ 0.4 MiB.
 */
export const ADDRESS_KEY_CACHE_SIZE = 1024;

/**
 * Accounts (normalized emails) whose three counter keys are kept between attempts (see
 * `accountCounters`): ≈ 0.5 KiB each, so at most ≈ 0.5 MiB.
 */
export const ACCOUNT_KEY_CACHE_SIZE = 1024;

/** An account's counter keys, hashed: its untrusted failures, its logins, its second-factor stops. */
interface AccountCounters {
  failures: HashedCounterKey;
  successes: HashedCounterKey;
  challenges: HashedCounterKey;
}

/** The counters a {@link LoginSubject} is judged on, their keys hashed once. */
type SubjectCounters =
  | { trust: 'trusted'; device: HashedCounterKey }
  | {
      trust: 'untrusted';
      ip: HashedCounterKey;
      network: HashedCounterKey;
      account: HashedCounterKey | undefined;
    };

/**
 * The account a login is for (its normalized email): its successful logins and its
 * stopped-at-the-second-factor ones, which the attempt checks and then counts.
 */
export interface LoginAccount {
  readonly accountKey: string;
}

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
  checkLogins(account: LoginAccount): Promise<ThrottleDecision>;
  /** Counts a successful login to the account. */
  recordLogin(account: LoginAccount): Promise<void>;
  /**
   * Whether an untrusted client may still try a password on the account (a second-factor one)
   * whose right passwords from untrusted clients stop at the second factor. Reads only. Their own
   * allowance (`successesPerAccount` as well), apart from {@link checkLogins}': a right password
   * alone is all a thief of it has, and spending the account's allowance with it would keep the
   * owner's trusted devices out (OWASP: a lockout must not be aimable at the owner). So only
   * untrusted clients wait on it.
   */
  checkChallenges(account: LoginAccount): Promise<ThrottleDecision>;
  /** Counts a right password from an untrusted client that stopped at the second factor. */
  recordChallenge(account: LoginAccount): Promise<void>;
  /**
   * Whether `/authorize` may issue account `userId` another code for app `clientId` now: the
   * account's successful-login allowance (`successesPerAccount` per window) again, per app,
   * spent by codes exchanged (only the app or the person can), never by codes issued. Each
   * exchanged code writes a `login_succeeded` row with the caller's user agent, and a signed-in
   * person (or a script holding their cookie) looping `/authorize` and `/token` hashes no password:
   * only the live-code caps held them, ≈ 100 codes a minute, 230 000 audit rows a day per account
   * kept for `AUDIT_RETENTION` (an outside tester's measurement). Per app, so an app bouncing the
   * browser through silent `/authorize` visits uses up its own allowance only, never the
   * person's sign-ins to others (red-team 2026-12f K2); and counted at exchange, so a site
   * bouncing it without ever getting the codes spends nothing. Reads only.
   */
  checkAppSignIns(userId: string, clientId: string): Promise<ThrottleDecision>;
  /** Counts a code of `clientId` exchanged for `userId`'s tokens (a session started). */
  recordAppSignIn(userId: string, clientId: string): Promise<void>;
  /**
   * Whether a signed-in session (`sessionKey`) may check its account's current password again now:
   * {@link CURRENT_PASSWORD_CHECKS_PER_SESSION} checks per window, right ones included. Reads only.
   */
  checkSessionChecks(sessionKey: string): Promise<ThrottleDecision>;
  /** Counts one check of the current password by the session, right or wrong. */
  recordSessionCheck(sessionKey: string): Promise<void>;
  /**
   * Forgets the account's failed-login count (untrusted clients) and its successful logins in the
   * window, after its owner proved control of the address by a password reset: the lockout an
   * attacker caused ends with it, whether by wrong passwords or by spending the logins with one
   * that was right until the reset.
   */
  clearAccount(accountKey: string): Promise<void>;
}

/**
 * Counter keys are fixed-size digests, so a 4 KiB username or a long IPv6 literal costs the same
 * bytes as any other, and the store never holds the identifier itself.
 */
function digest(value: string): string {
  return hash('sha256', value, 'base64url').slice(0, 22);
}

/**
 * While the server-wide breaker is open, the failures a client address (IPv6 /64) may have in the
 * window and still be admitted (at most `perIp`): a credential-stuffing run spreads over accounts,
 * so this is what still throttles it once the breaker no longer refuses everyone.
 */
export const OPEN_BREAKER_FAILURES_PER_IP = 3;

/**
 * While the breaker is open, the failures one IPv6 /48 (a site; an IPv4 address is its own) may
 * have in the window and still be admitted: without it, a host with a routed /48 would get
 * {@link OPEN_BREAKER_FAILURES_PER_IP} guesses from each of its 65 536 /64s, and the open breaker
 * would not slow a spray at all. Ten addresses' worth, so that during an attack the other
 * customers of a carrier's shared /48 are not all shut out by one of them at once.
 */
export const OPEN_BREAKER_FAILURES_PER_NETWORK = 10 * OPEN_BREAKER_FAILURES_PER_IP;

/**
 * Checks of the current password (a password or email change, a deletion, a re-authentication)
 * one signed-in session may make per window, right answers included. Only wrong ones counted
 * before (a right one cleared the count), so whoever held an account's password could re-check it
 * without end from as many sessions as its logins allowed, each check an argon2 hash in the lane
 * kept for trusted devices (red-team 2026-12g A1: ten sessions stalled every other login). Per
 * session, so no other session of the account (a thief's included) can spend the owner's.
 */
export const CURRENT_PASSWORD_CHECKS_PER_SESSION = 10;

/**
 * Creates a {@link LoginThrottle} over a {@link CounterStore}. `namespace` prefixes its counter
 * keys: password logins use `login`, passkey sign-ins a throttle of their own (`passkey-login`,
 * see `passkey-throttle.ts`), so neither kind of failure spends the other's budget.
 */
export function createLoginThrottle(
  store: CounterStore,
  limits: LoginThrottleLimits,
  clock: () => number,
  namespace = 'login',
): LoginThrottle {
  const deviceKey = (key: string) => `${namespace}:device:${digest(key)}`;
  const ipKey = (ip: string) => `${namespace}:ip:${digest(addressBucket(ip))}`;
  // One IPv6 /48 (a site) feeds the breaker as one client at most: a host with a routed /56 or /48
  // could otherwise trip it alone from 200 of its /64s (red-team F9).
  const networkKey = (ip: string) => `${namespace}:net:${digest(addressBucket(ip, 48))}`;
  const GLOBAL = hashedCounterKey(`${namespace}:global`);
  // A login reads its subject's counters twice (before and inside the account's gate) and then
  // counts or clears them: each key is built and hashed once per subject, not on every call (an
  // untrusted login made 20 SHA-256 for its counters; with the address and account keys below, a
  // returning account from a known address makes none). The subject object lives for one attempt
  // and its fields are readonly, so the keys cannot go stale; the store receives the same hashed
  // keys it would have computed (Redis key names unchanged).
  const counters = new WeakMap<LoginSubject, SubjectCounters>();
  // An address's two keys (its /64 or IPv4 bucket, its /48) are pure functions of the address,
  // and logins come again and again from the same ones (a NAT, a carrier's gateway, a user's
  // home line, an attacker's flood): kept between attempts, they spare four SHA-256 and two
  // address parses per login (issue 10). Bounded (oldest evicted): whoever sends from many
  // addresses only makes later attempts hash again, since an evicted entry comes back equal.
  const addresses = new BoundedMap<string, { ip: HashedCounterKey; network: HashedCounterKey }>(
    ADDRESS_KEY_CACHE_SIZE,
  );
  const addressCounters = (ip: string) => {
    let keys = addresses.get(ip);
    if (keys === undefined) {
      keys = { ip: hashedCounterKey(ipKey(ip)), network: hashedCounterKey(networkKey(ip)) };
      addresses.set(ip, keys);
    }
    return keys;
  };
  // An account's three keys (its failures, its successful logins, its stopped-at-the-second-factor
  // ones) are pure functions of its email key, and an attempt uses all three: made together from
  // one digest of the email, and kept between attempts as the addresses' are (issue 10: an
  // untrusted login hashed the same email three times and each key once more, six SHA-256 per
  // attempt; a returning account now none, a new one four). Bounded the same way.
  const accounts = new BoundedMap<string, AccountCounters>(ACCOUNT_KEY_CACHE_SIZE);
  const accountCounters = (accountKey: string): AccountCounters => {
    let keys = accounts.get(accountKey);
    if (keys === undefined) {
      const digested = digest(accountKey);
      keys = {
        failures: hashedCounterKey(`${namespace}:account:${digested}`),
        successes: hashedCounterKey(`${namespace}:success:${digested}`),
        challenges: hashedCounterKey(`${namespace}:challenge:${digested}`),
      };
      accounts.set(accountKey, keys);
    }
    return keys;
  };
  const countersOf = (subject: LoginSubject): SubjectCounters => {
    let keys = counters.get(subject);
    if (keys === undefined) {
      keys =
        subject.trust === 'trusted'
          ? { trust: 'trusted', device: hashedCounterKey(deviceKey(subject.deviceKey)) }
          : {
              trust: 'untrusted',
              ...addressCounters(subject.ip),
              account:
                subject.accountKey === undefined ? undefined : accountCounters(subject.accountKey).failures,
            };
      counters.set(subject, keys);
    }
    return keys;
  };
  const loginsKey = (account: LoginAccount) => accountCounters(account.accountKey).successes;
  const appSignInsKey = (userId: string, clientId: string) =>
    hashedCounterKey(`${namespace}:app:${digest(`${userId}\n${clientId}`)}`);
  const challengesKey = (account: LoginAccount) => accountCounters(account.accountKey).challenges;
  const sessionChecksKey = (sessionKey: string) =>
    hashedCounterKey(`${namespace}:session-check:${digest(sessionKey)}`);
  const retryAfter = (resetAt: number) => Math.max(1, Math.ceil((resetAt - clock()) / 1000));
  const openBreakerPerIp = Math.min(limits.perIp, OPEN_BREAKER_FAILURES_PER_IP);
  const successes = limits.successesPerAccount ?? Number.POSITIVE_INFINITY;
  const checkSuccesses = async (key: HashedCounterKey): Promise<ThrottleDecision> => {
    if (successes === Number.POSITIVE_INFINITY) return { allowed: true };
    const local = store.synchronous?.();
    const window = local === undefined ? await store.peek(key) : local.peek(key);
    if (window === undefined || window.count < successes) return { allowed: true };
    return { allowed: false, retryAfterSeconds: retryAfter(window.resetAt) };
  };
  const countSuccess = async (key: HashedCounterKey) => {
    if (successes === Number.POSITIVE_INFINITY) return;
    const local = store.synchronous?.();
    if (local === undefined) await store.increment(key, limits.windowMs);
    else local.increment(key, limits.windowMs);
  };
  return {
    checkLogins: (account) => checkSuccesses(loginsKey(account)),
    recordLogin: (account) => countSuccess(loginsKey(account)),
    checkChallenges: (account) => checkSuccesses(challengesKey(account)),
    recordChallenge: (account) => countSuccess(challengesKey(account)),
    checkAppSignIns: (userId, clientId) => checkSuccesses(appSignInsKey(userId, clientId)),
    recordAppSignIn: (userId, clientId) => countSuccess(appSignInsKey(userId, clientId)),
    async checkSessionChecks(sessionKey) {
      const key = sessionChecksKey(sessionKey);
      const local = store.synchronous?.();
      const window = local === undefined ? await store.peek(key) : local.peek(key);
      if (window === undefined || window.count < CURRENT_PASSWORD_CHECKS_PER_SESSION)
        return { allowed: true };
      return { allowed: false, retryAfterSeconds: retryAfter(window.resetAt) };
    },
    async recordSessionCheck(sessionKey) {
      const key = sessionChecksKey(sessionKey);
      const local = store.synchronous?.();
      if (local === undefined) await store.increment(key, limits.windowMs);
      else local.increment(key, limits.windowMs);
    },
    async check(subject) {
      const keys = countersOf(subject);
      // In-process counters answer synchronously: no promise per read (issue 10).
      const local = store.synchronous?.();
      if (keys.trust === 'trusted') {
        const device = local === undefined ? await store.peek(keys.device) : local.peek(keys.device);
        return device !== undefined && device.count >= limits.perDevice
          ? { allowed: false, retryAfterSeconds: retryAfter(device.resetAt) }
          : { allowed: true };
      }
      const [ip, account, global, network] =
        local === undefined
          ? await Promise.all([
              store.peek(keys.ip),
              keys.account === undefined ? undefined : store.peek(keys.account),
              store.peek(GLOBAL),
              store.peek(keys.network),
            ])
          : [
              local.peek(keys.ip),
              keys.account === undefined ? undefined : local.peek(keys.account),
              local.peek(GLOBAL),
              local.peek(keys.network),
            ];
      const full = [
        ip !== undefined && ip.count >= limits.perIp ? ip : undefined,
        account !== undefined && account.count >= limits.perAccount ? account : undefined,
      ].filter((window) => window !== undefined);
      if (global !== undefined && global.count >= limits.global) {
        // The breaker is open. Refusing every untrusted login would hand anyone who can make
        // `global` failures a server-wide lock-out of new devices (red-team F9); degrade instead:
        // an address (IPv6 /64) gets OPEN_BREAKER_FAILURES_PER_IP failures in the window instead
        // of `perIp`, which is what throttles a run spread over many accounts. The account's
        // failures are judged only by `perAccount`, as with the breaker closed: requiring an
        // account with no failure at all let one stranger's wrong guess lock its owner's new
        // devices out for the window (F9's remainder). A username that is no email has no
        // account counter to be judged by, so it waits for the breaker to close. The address's
        // site (IPv6 /48) has an allowance too, or a routed /48's 65 536 /64s would each get theirs.
        const quiet =
          keys.account !== undefined &&
          (ip === undefined || ip.count < openBreakerPerIp) &&
          (network === undefined || network.count < OPEN_BREAKER_FAILURES_PER_NETWORK);
        if (!quiet) full.push(global);
      }
      if (full.length === 0) return { allowed: true };
      return { allowed: false, retryAfterSeconds: retryAfter(Math.max(...full.map((w) => w.resetAt))) };
    },
    async recordFailure(subject) {
      const keys = countersOf(subject);
      const local = store.synchronous?.();
      if (local !== undefined) {
        if (keys.trust === 'trusted') {
          local.increment(keys.device, limits.windowMs);
          return;
        }
        const network = local.increment(keys.network, limits.windowMs);
        local.increment(keys.ip, limits.windowMs);
        if (keys.account !== undefined) local.increment(keys.account, limits.windowMs);
        if (network.count <= limits.perIp) local.increment(GLOBAL, limits.windowMs);
        return;
      }
      if (keys.trust === 'trusted') {
        await store.increment(keys.device, limits.windowMs);
        return;
      }
      const [network] = await Promise.all([
        store.increment(keys.network, limits.windowMs),
        store.increment(keys.ip, limits.windowMs),
        keys.account === undefined ? undefined : store.increment(keys.account, limits.windowMs),
      ]);
      if (network.count <= limits.perIp) await store.increment(GLOBAL, limits.windowMs);
    },
    async clearAccount(key) {
      // Its successful logins too: someone who knew the old password (or squatted the address
      // before its owner proved it) could otherwise spend the window's logins and keep the owner
      // out of the account they just recovered.
      const { failures, successes, challenges } = accountCounters(key);
      await Promise.all([store.reset(failures), store.reset(successes), store.reset(challenges)]);
    },
    async recordSuccess(subject) {
      const keys = countersOf(subject);
      // The account's owner proved the password: their other untrusted clients need not wait out
      // failures made before. The IP and global counters stay: they measure the flood, not the account.
      const key = keys.trust === 'trusted' ? keys.device : keys.account;
      if (key === undefined) return;
      const local = store.synchronous?.();
      if (local === undefined) await store.reset(key);
      else local.reset(key);
    },
  };
}
