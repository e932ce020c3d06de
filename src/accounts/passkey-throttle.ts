import type { UserRecord, UserStore } from '../storage/user-store.js';
import type { CounterStore } from './counter-store.js';
import { type DeviceTokens, deviceTokenAccount } from './device-token.js';
import { createLoginThrottle, type LoginSubject, type LoginThrottleLimits } from './login-throttle.js';

/** What a passkey sign-in presents before its assertion is verified. */
export interface PasskeyAttempt {
  /** The device cookie the browser holds, if any. */
  deviceToken: string | undefined;
  /** The client's address. */
  ip: string;
}

/**
 * Whether a passkey sign-in may spend a signature verification now, and on which counters its
 * outcome is recorded. `ownerId`: the sign-in runs in a trusted device's lane, which holds only for
 * that account's passkeys (a credential of any other account is refused unverified).
 */
export type PasskeyAdmission =
  | { allowed: true; subject: LoginSubject; ownerId?: string }
  | { allowed: false; retryAfterSeconds: number };

/**
 * The server-wide budget of failed passkey sign-ins (red-team 2026-12e J3's remainder): a failed
 * assertion against a registered passkey costs a signature verification, and the per-address
 * limits alone (`passkey:ip:`, `passkey:net:`) let a botnet with many /48s make them without end.
 * It is the password login's breaker (`LoginThrottle`, on counters of its own) with the same
 * settings and the same lanes:
 * - untrusted: judged per address, per /48 and globally; with the breaker open an address still
 *   gets a few failures (`OPEN_BREAKER_FAILURES_PER_IP`), so a stranger's flood does not shut
 *   every owner's new device out. No limit per account or credential: a passkey's signature
 *   cannot be guessed, so such a lock would protect nothing, and whoever learned a credential id
 *   could shut its owner's new devices out with it;
 * - trusted: a browser whose device cookie verifies for its account (OWASP "Slow Down Online
 *   Guessing Attacks with Device Cookies") is judged on its own counter only, so nobody else's
 *   failures lock the owner's known device out.
 *
 * The untrusted lane comes first, unlike the password path: a device cookie names one account, and
 * a browser may hold passkeys of several. The trusted lane is the fallback when the untrusted one
 * refuses, and then verifies that account's passkeys only, so a cookie of the attacker's own account
 * buys no verifications against anyone else's.
 */
export interface PasskeyThrottle {
  /** Decides the attempt's lane; reads counters (and the device's account when it needs the lane). */
  admit(attempt: PasskeyAttempt): Promise<PasskeyAdmission>;
  /** Counts a failed assertion (`invalid`) on the lane's counters. */
  recordFailure(subject: LoginSubject): Promise<void>;
  /** An assertion verified: clears a trusted device's counter (never the address's or global). */
  recordSuccess(subject: LoginSubject): Promise<void>;
}

/** Dependencies of {@link createPasskeyThrottle}. */
export interface PasskeyThrottleDeps {
  /** The counters (keys under `passkey-login:`, apart from the password logins'). */
  counters: CounterStore;
  /** The password logins' limits (LOGIN_MAX_FAILURES_*); `perAccount` is not used. */
  limits: Omit<LoginThrottleLimits, 'perAccount' | 'successesPerAccount'>;
  deviceTokens: Pick<DeviceTokens, 'verify'>;
  users: Pick<UserStore, 'findUserById'>;
  /** Epoch ms. */
  clock: () => number;
}

/**
 * Every untrusted passkey sign-in is judged as one "account": with the breaker open, the login
 * throttle admits an address's few failures only for a sign-in with an account key, and a
 * passkey's account is known only once its assertion verified. One key, never limited.
 */
const ANY_PASSKEY = 'any passkey';

/** Creates the {@link PasskeyThrottle}. */
export function createPasskeyThrottle(deps: PasskeyThrottleDeps): PasskeyThrottle {
  const throttle = createLoginThrottle(
    deps.counters,
    { ...deps.limits, perAccount: Number.POSITIVE_INFINITY },
    deps.clock,
    'passkey-login',
  );
  /** The device cookie's account and counter key, when it verifies for that account. */
  const trustedDevice = async (token: string | undefined) => {
    const accountId = deviceTokenAccount(token);
    if (accountId === undefined) return undefined;
    const user: UserRecord | undefined = await deps.users.findUserById(accountId);
    const device = user === undefined ? undefined : deps.deviceTokens.verify(token, user);
    return device === undefined ? undefined : { accountId, deviceKey: device.deviceId };
  };
  return {
    async admit({ deviceToken, ip }) {
      const untrusted: LoginSubject = { trust: 'untrusted', accountKey: ANY_PASSKEY, ip };
      const decision = await throttle.check(untrusted);
      if (decision.allowed) return { allowed: true, subject: untrusted };
      const device = await trustedDevice(deviceToken);
      if (device !== undefined) {
        const trusted: LoginSubject = { trust: 'trusted', deviceKey: device.deviceKey };
        if ((await throttle.check(trusted)).allowed)
          return { allowed: true, subject: trusted, ownerId: device.accountId };
      }
      return decision;
    },
    recordFailure: (subject) => throttle.recordFailure(subject),
    // The untrusted lane's one account counter is never limited: nothing to clear there.
    recordSuccess: async (subject) => {
      if (subject.trust === 'trusted') await throttle.recordSuccess(subject);
    },
  };
}
