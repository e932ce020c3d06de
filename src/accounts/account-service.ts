import { randomUUID } from 'node:crypto';
import { type AuditEntry, createAuditLog } from '../audit/audit-log.js';
import { GatehouseError } from '../errors.js';
import { type EventBus, publishRevokedSessions } from '../events/event-bus.js';
import type { NoticeWriter, SecurityNotices } from '../mail/security-notices.js';
import type { MfaStore } from '../mfa/storage/mfa-store.js';
import { createLimiter } from '../passwords/limit-concurrency.js';
import { createLoginPasswordCheck } from '../passwords/login-password-check.js';
import type { PasswordHasher } from '../passwords/password-hasher.js';
import { createPasswordPolicy, type PasswordPolicy } from '../passwords/password-policy.js';
import type { RefusalFloor } from '../passwords/refusal-floor.js';
import type { PasswordUpgrade } from '../sessions/session-manager.js';
import type { AccountTokenStore } from '../storage/account-token-store.js';
import type { AuditRetentionStore } from '../storage/audit-retention-store.js';
import type { AuditStore } from '../storage/audit-store.js';
import type { SessionStore } from '../storage/session-store.js';
import type { UserRecord, UserStore } from '../storage/user-store.js';
import { describeDisplayTextRejection, normalizeDisplayText } from '../text/display-text.js';
import type { DeviceTokens } from './device-token.js';
import type { KeyedGate } from './keyed-gate.js';
import type { LoginAccount, LoginSubject, LoginThrottle } from './login-throttle.js';
import { normalizeEmail } from './normalize-email.js';
import type { Role } from './roles.js';
import type { UserCache } from './user-cache.js';

/** Input of account registration (`AccountService.register`, `gatehouse.users.register`). */
export interface Registration {
  email: string;
  password: string;
  fullName?: string | null | undefined;
  role?: Role;
  /**
   * True when the caller vouches for the address, as an operator creating an account does
   * (`gatehouse create-user`): the account can set up a second factor without a confirmation mail.
   * Sign-ups never set it (`POST /auth/register` builds its own input).
   */
  emailVerified?: boolean;
}

/**
 * Outcome of a password login. `throttled`: too many failures for this (untrusted) client and
 * account, IP or server, refused before any hash was computed. `busy`: too many checks for this
 * account are already waiting; it says nothing about failures, so even a right password may get it.
 */
export type PasswordLogin =
  | {
      ok: true;
      user: UserRecord;
      /**
       * A fresh device token for this client to present on its next login (OWASP device cookie).
       * For an account with a second factor, hand it out only once that factor is proven too.
       */
      deviceToken: string;
      /**
       * Set when the stored hash is a legacy (imported) or older-parameter one: the new argon2id
       * hash, for the caller to store in the login's own transaction
       * (`SessionStartOptions.passwordUpgrade`). A caller that starts no session may drop it;
       * the next login offers it again.
       */
      passwordUpgrade?: PasswordUpgrade;
      /** The counter key of the valid device token this client presented, if it was trusted. */
      trustedDeviceId?: string | undefined;
      /**
       * The account has a second factor its password sign-ins must prove
       * (`AccountServiceDeps.secondFactor`): the caller asks for it before any session.
       */
      secondFactor: boolean;
    }
  | { ok: false; reason: 'invalid_credentials' | 'disabled' | 'unverified'; userId?: string }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number }
  | { ok: false; reason: 'busy'; retryAfterSeconds: number };

/** Changes a user may make to their own account. */
export interface ProfileChange {
  fullName?: string | null | undefined;
  password?: string | undefined;
  currentPassword?: string | undefined;
}

/** Registration, login and self-service account changes. */
export interface AccountService {
  /** Creates an account; throws EMAIL_TAKEN, WEAK_PASSWORD or VALIDATION_FAILED. */
  register(input: Registration): Promise<UserRecord>;
  /**
   * Checks an email and password in constant-ish time: unknown emails verify a dummy hash, and
   * "disabled" is only revealed once the password was right.
   */
  loginWithPassword(
    email: string,
    password: string,
    ip: string,
    deviceToken?: string | undefined,
  ): Promise<PasswordLogin>;
  /**
   * Changes name and/or password; a password change ends every other session of the user, in the
   * transaction that writes the new hash. The current-password check is limited per session (the
   * signed-in client is a trusted one), never by the account's lockout, so failures elsewhere
   * cannot stop its owner changing the password. The password is replaced only while the stored
   * hash is still the one checked: a reset (or a change of owner) committed meanwhile wins, and
   * this answers INVALID_CURRENT_PASSWORD. `passwordAudit`, the entry of a password change, is
   * written in that same transaction (nothing is written for a name-only change): a failing audit
   * write rolls the change back. @default no entry
   */
  updateProfile(
    user: UserRecord,
    change: ProfileChange,
    currentSessionId: string,
    passwordAudit?: AuditEntry,
  ): Promise<UserRecord>;
  /**
   * Checks the signed-in user's current password (a password change, a re-authentication): wrong
   * answers limited per session with the device limit, every check by the session's own allowance
   * (`CURRENT_PASSWORD_CHECKS_PER_SESSION`), one at a time per session, in the reserved hashing
   * lane, never by the account's lockout. Throws INVALID_CURRENT_PASSWORD, TOO_MANY_LOGIN_ATTEMPTS
   * or TOO_MANY_REQUESTS.
   */
  verifyCurrentPassword(user: UserRecord, password: string | undefined, sessionId: string): Promise<void>;
  /** Applies a change made on behalf of the user and tells every instance. */
  applyUserChange(id: string, patch: Parameters<UserStore['updateUser']>[1]): Promise<UserRecord | undefined>;
}

/** The stores a profile change runs on inside one transaction. */
export interface ProfileStores {
  users: Pick<UserStore, 'updateUser' | 'replacePasswordHash' | 'lockUser'>;
  sessions: Pick<SessionStore, 'revokeUserSessions'>;
  /** The password change's audit row, committed with it. */
  audit: AuditStore;
  /** What an audit log built over this unit needs besides rows. */
  auditTallies: Pick<AuditRetentionStore, 'recordLoginFailure'>;
  /** The account's run of wrong second-factor codes, which a new password ends. */
  mfa: Pick<MfaStore, 'clearConsecutiveFailures'>;
  /** The account's mailed links: a new password ends its password-reset links. */
  tokens: Pick<AccountTokenStore, 'deleteUserTokens'>;
  /** The `password_changed` notice, committed with the new password. */
  notices: NoticeWriter;
}

/** Dependencies of {@link createAccountService}. */
export interface AccountServiceDeps {
  users: UserStore;
  userCache: UserCache;
  hasher: PasswordHasher;
  /**
   * Runs `work` in one database transaction over stores bound to it: a new password and the end
   * of the other sessions commit together.
   */
  transaction<T>(work: (stores: ProfileStores) => Promise<T>): Promise<T>;
  throttle: LoginThrottle;
  /**
   * Whether an account's password sign-ins need a second factor (a confirmed authenticator app),
   * read once the password was right: an untrusted client's right password then counts against
   * the account's challenges, not its logins (`LoginThrottle.checkChallenges`), and the answer
   * goes back as {@link PasswordLogin}'s `secondFactor`.
   */
  secondFactor: {
    /** When the account's authenticator app was confirmed (epoch ms); undefined without one. */
    confirmedAt(userId: string): Promise<number | undefined>;
  };
  /** One password check per account (untrusted clients) or per device at a time. */
  gate: KeyedGate;
  deviceTokens: DeviceTokens;
  bus: EventBus;
  clock: () => number;
  /** Mails the notices a change committed (`password_changed`). */
  notices: Pick<SecurityNotices, 'flush'>;
  /** Rules for new passwords. @default createPasswordPolicy() (15 characters minimum) */
  passwordPolicy?: PasswordPolicy;
  /** `REQUIRE_VERIFIED_EMAIL`: a right password of an unverified account logs in nothing. @default false */
  requireVerifiedEmail?: boolean;
  /**
   * How long a refused sign-in's password check lasts at least, so that it does not tell an
   * imported account by its old hash's time. @default no floor (unit tests without imports)
   */
  refusalFloor?: Pick<RefusalFloor, 'get' | 'observe'>;
}

/** Most code points in a `full_name`. */
export const FULL_NAME_MAX_LENGTH = 200;

/**
 * Applies the shared display-text rule ({@link normalizeDisplayText}) to a `full_name`; empty
 * (or only spaces) becomes null, since the name is optional.
 */
export function normalizeFullName(raw: string | null | undefined): string | null {
  if (raw === null || raw === undefined) return null;
  const result = normalizeDisplayText(raw, FULL_NAME_MAX_LENGTH);
  if (result.ok) return result.text;
  if (result.reason === 'empty') return null;
  const message = describeDisplayTextRejection(result.reason, FULL_NAME_MAX_LENGTH);
  throw new GatehouseError('VALIDATION_FAILED', `full_name ${message}`, {
    errors: [{ field: 'full_name', message }],
  });
}

function checkedPassword(policy: PasswordPolicy, raw: string, field: string, email: string): string {
  const check = policy.check(raw, { email });
  if (!check.ok)
    throw new GatehouseError('WEAK_PASSWORD', check.reason, { errors: [{ field, message: check.reason }] });
  return check.password;
}

/** Current-password checks that may wait for the instance's one slot; more are answered 429. */
export const CURRENT_PASSWORD_CHECKS_WAITING = 32;

/** Creates the {@link AccountService}. */
export function createAccountService(deps: AccountServiceDeps): AccountService {
  const { users, hasher, clock } = deps;
  const passwordPolicy = deps.passwordPolicy ?? createPasswordPolicy();
  // Current-password checks hash one at a time on this instance, whatever the accounts and
  // sessions asking (at most CURRENT_PASSWORD_CHECKS_WAITING waiting, then 429): each session's
  // allowance bounds how many, not how many at once, and the reserved lane they hash in is the one
  // kept for trusted devices, so a burst from an account's hundred sessions must not fill it
  // (second review of red-team 2026-12g A1). One slot serves ≈ 70 checks a second.
  const currentPasswordSlot = createLimiter(1, CURRENT_PASSWORD_CHECKS_WAITING, () => {
    throw new GatehouseError('TOO_MANY_REQUESTS', 'Too many password checks at once; try again shortly.', {
      retryAfterSeconds: 1,
    });
  });

  const checkLoginPassword = createLoginPasswordCheck({
    hasher,
    floor: deps.refusalFloor ?? { get: async () => 0, observe: () => {} },
  });

  /** A sign-in's answer, and for a refusal the wait that makes it last the refusal floor. */
  interface CheckedPassword {
    login: PasswordLogin;
    padRefusal?: () => Promise<void>;
  }
  /**
   * Waits out a refusal's padding, outside the account's (or device's) gate: the gate serializes
   * password checks, and holding it through the padding would let a stranger's refused attempts
   * delay the owner's sign-in by a floor each.
   */
  const settle = async (checked: CheckedPassword): Promise<PasswordLogin> => {
    await checked.padRefusal?.();
    return checked.login;
  };

  /**
   * Verifies `password` for `user` (a dummy hash when there is none, so timing does not reveal
   * which emails have accounts), counts only a real failure, and issues a device token on success.
   */
  const checkPassword = async (
    subject: LoginSubject,
    user: UserRecord | undefined,
    password: string,
    raw: string,
    loginAccount: LoginAccount,
    /** The account's factor as the attempt already read it (a device token's check), if it did. */
    factorRead?: { confirmedAt: number | undefined },
  ): Promise<CheckedPassword> => {
    const lane = subject.trust === 'trusted' ? 'reserved' : 'shared';
    const check = await checkLoginPassword(user?.passwordHash, password, raw, lane);
    /**
     * Every refusal alike: tallied as a failure at once (a request waiting out its padding is
     * already counted, so a burst cannot pass the limits by more than before), then padded to the
     * refusal floor by the caller, once the account's gate is free.
     */
    const refuse = async (
      reason: 'invalid_credentials' | 'disabled' | 'unverified',
    ): Promise<CheckedPassword> => {
      await deps.throttle.recordFailure(subject);
      const login: PasswordLogin =
        user === undefined ? { ok: false, reason } : { ok: false, reason, userId: user.id };
      return { login, padRefusal: check.padRefusal };
    };
    if (user === undefined || !check.matches) return refuse('invalid_credentials');
    // REQUIRE_VERIFIED_EMAIL: an unverified account's right password is tallied as a failure, as a
    // wrong one is: the routes answer both alike, and a lockout reached by one but not the other
    // (or a quicker answer: hence the padding) would tell a stranger who chose the password at
    // sign-up whether the address had an account.
    // (A mailed link's follower, who proves the address, clears the tally.)
    // A disabled account's right password gains nothing, and is counted as a failure too:
    // counted as a success (which clears the counters) it let whoever holds a disabled account's
    // password hash and write an audit row per request without end (red-team 2026-12g A3).
    if (!user.isActive) return refuse('disabled');
    if (deps.requireVerifiedEmail === true && !user.emailVerified) return refuse('unverified');
    await deps.throttle.recordSuccess(subject);
    const confirmedAt =
      factorRead === undefined ? await deps.secondFactor.confirmedAt(user.id) : factorRead.confirmedAt;
    const secondFactor = confirmedAt !== undefined;
    // A right password from an untrusted client that stops at the second factor is all a thief
    // of the password gets: counted apart, so it cannot spend the logins the owner's trusted
    // devices need (red-team 2026-12e MFA #4). A trusted device's is counted as a login: only a
    // completed sign-in hands out device tokens.
    if (secondFactor && subject.trust === 'untrusted') await deps.throttle.recordChallenge(loginAccount);
    else await deps.throttle.recordLogin(loginAccount);
    const trustedDeviceId = subject.trust === 'trusted' ? subject.deviceKey : undefined;
    if (!hasher.needsRehash(user.passwordHash)) {
      return {
        login: { ok: true, user, deviceToken: deps.deviceTokens.issue(user), trustedDeviceId, secondFactor },
      };
    }
    // Upgrade imported and older-parameter hashes while we hold the plaintext (the NFKC form,
    // which every later check uses). Hashed here, outside any transaction; stored by the caller
    // in the login's transaction, only if the hash is still the one just verified.
    const passwordUpgrade = {
      userId: user.id,
      from: user.passwordHash,
      to: await hasher.hash(password, lane),
    };
    // Bound to the hash the login stores (a device token dies with the hash it was issued under).
    const deviceToken = deps.deviceTokens.issue({
      id: user.id,
      emailVerified: user.emailVerified,
      passwordHash: passwordUpgrade.to,
      credentialsVersion: user.credentialsVersion,
    });
    return { login: { ok: true, user, deviceToken, trustedDeviceId, passwordUpgrade, secondFactor } };
  };

  const verifyCurrentPassword: AccountService['verifyCurrentPassword'] = async (
    user,
    password,
    sessionId,
  ) => {
    const current = password?.normalize('NFKC');
    // Guessing the current password is guessing the password: a stolen short-lived token must
    // not become a permanent takeover by brute force. The signed-in session is the client
    // here, so it gets a trusted-device counter of its own and hashes in the reserved lane.
    const subject: LoginSubject = { trust: 'trusted', deviceKey: `session:${sessionId}` };
    const sessionKey = `session:${sessionId}`;
    // Every check, right or wrong, also counts on the session's own allowance
    // (CURRENT_PASSWORD_CHECKS_PER_SESSION): a right one cleared the count, so an account's
    // sessions re-checked their password without end, an argon2 hash each in the lane kept for
    // trusted devices (red-team 2026-12g A1). Per session, so nobody else (a thief signed in with
    // the password included) can spend the owner's: the signed-in owner can always change it.
    const refusal = async (): Promise<GatehouseError | undefined> => {
      const guesses = await deps.throttle.check(subject);
      if (!guesses.allowed) {
        return new GatehouseError('TOO_MANY_LOGIN_ATTEMPTS', 'Too many wrong passwords; try again later.', {
          retryAfterSeconds: guesses.retryAfterSeconds,
        });
      }
      const checks = await deps.throttle.checkSessionChecks(sessionKey);
      if (checks.allowed) return undefined;
      return new GatehouseError(
        'TOO_MANY_REQUESTS',
        'Too many password checks from this session; try again later.',
        {
          retryAfterSeconds: checks.retryAfterSeconds,
        },
      );
    };
    // Read before the gate too: a refused session never waits in it.
    const early = await refusal();
    if (early !== undefined) throw early;
    const outcome = await deps.gate.run(sessionKey, async () => {
      // Again inside the gate, where no other check of this session runs: exact.
      const refused = await refusal();
      if (refused !== undefined) return refused;
      // A missing value guesses nothing: no hash, no count.
      if (current === undefined) return 'wrong';
      const right = await currentPasswordSlot(() => hasher.verify(user.passwordHash, current, 'reserved'));
      await deps.throttle.recordSessionCheck(sessionKey);
      await (right ? deps.throttle.recordSuccess(subject) : deps.throttle.recordFailure(subject));
      return right ? 'right' : 'wrong';
    });
    if (!outcome.ok) {
      throw new GatehouseError('TOO_MANY_REQUESTS', 'Too many password checks at once; try again shortly.', {
        retryAfterSeconds: 1,
      });
    }
    if (outcome.value instanceof GatehouseError) throw outcome.value;
    if (outcome.value === 'wrong') {
      throw new GatehouseError('INVALID_CURRENT_PASSWORD', 'current_password is missing or wrong.', {
        errors: [{ field: 'current_password', message: 'must be your current password' }],
      });
    }
  };

  const applyUserChange: AccountService['applyUserChange'] = async (id, patch) => {
    const updated = await users.updateUser(id, patch, clock());
    deps.userCache.evict(id);
    await deps.bus.publish({ type: 'user_changed', userId: id });
    return updated;
  };

  return {
    async register(input) {
      const email = normalizeEmail(input.email);
      if (email === undefined) {
        throw new GatehouseError('VALIDATION_FAILED', 'email is not a valid address', {
          errors: [{ field: 'email', message: 'must be a valid email address' }],
        });
      }
      const fullName = normalizeFullName(input.fullName);
      const password = checkedPassword(passwordPolicy, input.password, 'password', email.display);
      const now = clock();
      const user: UserRecord = {
        id: randomUUID(),
        email: email.display,
        emailKey: email.key,
        fullName,
        passwordHash: await hasher.hash(password),
        role: input.role ?? 'user',
        isActive: true,
        emailVerified: input.emailVerified === true,
        createdAt: now,
        updatedAt: now,
        credentialsVersion: 0,
      };
      // The unique index decides races: of 50 concurrent sign-ups exactly one row is written.
      const inserted = await users.insertUser(user);
      if (!inserted.ok) throw new GatehouseError('EMAIL_TAKEN', 'An account with this email already exists.');
      return user;
    },

    async loginWithPassword(rawEmail, rawPassword, ip, presentedDevice) {
      const email = normalizeEmail(rawEmail);
      const password = rawPassword.normalize('NFKC');
      // A username that is not an email can match no account: it gets no per-account counter (so
      // made-up strings cannot grow the store), only the IP and global ones. A valid address is
      // counted whether or not it has an account, or the 429 would reveal which accounts exist.
      if (email === undefined) {
        const subject: LoginSubject = { trust: 'untrusted', accountKey: undefined, ip };
        const decision = await deps.throttle.check(subject);
        if (!decision.allowed)
          return { ok: false, reason: 'throttled', retryAfterSeconds: decision.retryAfterSeconds };
        const check = await checkLoginPassword(undefined, password, rawPassword, 'shared');
        await deps.throttle.recordFailure(subject);
        await check.padRefusal();
        return { ok: false, reason: 'invalid_credentials' };
      }
      // Successful logins are limited per account whoever logs in (only a right password counts,
      // so nobody else can spend it): refused here, before any database read or hash.
      // One object for the attempt: the success counter it checks here and counts on success.
      const loginAccount: LoginAccount = { accountKey: email.key };
      const logins = await deps.throttle.checkLogins(loginAccount);
      if (!logins.allowed)
        return { ok: false, reason: 'throttled', retryAfterSeconds: logins.retryAfterSeconds };
      // OWASP device cookies: a client that presents a valid device token for this account is
      // judged on its own counter; when that counter is exhausted it is treated as untrusted.
      const user = presentedDevice === undefined ? undefined : await users.findUserByEmailKey(email.key);
      let device = user === undefined ? undefined : deps.deviceTokens.verify(presentedDevice, user);
      let factorRead: { confirmedAt: number | undefined } | undefined;
      // Trust comes only after every factor (issue 13): a token issued before the account's
      // authenticator app was confirmed is a reward for the password alone, and a thief who signed
      // in before the owner turned the app on would keep a lane of guesses per token (password
      // and codes) besides the account's (red-team 2026-12e MFA #2). Tokens carry whole seconds, so
      // one issued in the second of the confirmation is not trusted either: it may come before it
      // (red-team 2026-12h M4). An owner's sign-in in that same second, after it, loses nothing but
      // the token's lane, until the next sign-in's token.
      if (device !== undefined && user !== undefined) {
        factorRead = { confirmedAt: await deps.secondFactor.confirmedAt(user.id) };
        const { confirmedAt } = factorRead;
        if (confirmedAt !== undefined && device.issuedAt <= Math.floor(confirmedAt / 1000) * 1000)
          device = undefined;
      }
      if (device !== undefined && user !== undefined) {
        const trusted: LoginSubject = { trust: 'trusted', deviceKey: device.deviceId };
        const owner = user;
        const attempt = await deps.gate.run(`device:${device.deviceId}`, async () => {
          if (!(await deps.throttle.check(trusted)).allowed) return undefined;
          return checkPassword(trusted, owner, password, rawPassword, loginAccount, factorRead);
        });
        if (!attempt.ok) return { ok: false, reason: 'busy', retryAfterSeconds: 1 };
        if (attempt.value !== undefined) return settle(attempt.value);
      }
      const untrusted: LoginSubject = { trust: 'untrusted', accountKey: email.key, ip };
      // Checked (read only) before anything else: a refused attempt costs no database read, no
      // hash, and counts nowhere. Untrusted clients also wait on the account's second-factor
      // challenges (see LoginThrottle.checkChallenges); trusted devices never do.
      const early = await deps.throttle.check(untrusted);
      if (!early.allowed)
        return { ok: false, reason: 'throttled', retryAfterSeconds: early.retryAfterSeconds };
      const challenges = await deps.throttle.checkChallenges(loginAccount);
      if (!challenges.allowed)
        return { ok: false, reason: 'throttled', retryAfterSeconds: challenges.retryAfterSeconds };
      // Looked up outside the gate: with a slow or frozen database each request waits out its own
      // timeout (and answers 503) instead of queueing behind the other requests for this account
      // one timeout at a time.
      const account = user ?? (await users.findUserByEmailKey(email.key));
      const attempt = await deps.gate.run(`account:${email.key}`, async (): Promise<CheckedPassword> => {
        // Checked again inside the gate, where no other check of this account runs: exact.
        const decision = await deps.throttle.check(untrusted);
        if (!decision.allowed)
          return { login: { ok: false, reason: 'throttled', retryAfterSeconds: decision.retryAfterSeconds } };
        // The factor read above is this account's only when the account is the one it was read for.
        return checkPassword(
          untrusted,
          account,
          password,
          rawPassword,
          loginAccount,
          account === user ? factorRead : undefined,
        );
      });
      return attempt.ok ? settle(attempt.value) : { ok: false, reason: 'busy', retryAfterSeconds: 1 };
    },

    async updateProfile(user, change, currentSessionId, passwordAudit) {
      const patch: Parameters<UserStore['updateUser']>[1] = {};
      if (change.fullName !== undefined) patch.fullName = normalizeFullName(change.fullName);
      /** The stored hash the current password was checked against. */
      let checked: string | undefined;
      if (change.password !== undefined) {
        // Checked against the stored hash (not a cached one), and replaced below only while it is
        // still that hash: a reset, or a verification link's change of owner, that commits while
        // this request hashes must not be undone by it. Before, a squatter's password change in
        // flight across the owner's take-over set the squatter's new password on the owner's
        // account (red-team 2026-12d I9, found while fixing it).
        // The new password's policy first: a change refused anyway costs no hash of the current
        // one (red-team 2026-12g A1: a weak new password with the right current one was a free
        // hash per request).
        const next = checkedPassword(passwordPolicy, change.password, 'password', user.email);
        const stored = await users.findUserById(user.id);
        if (stored === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
        await verifyCurrentPassword(stored, change.currentPassword, currentSessionId);
        checked = stored.passwordHash;
        // Hashed before the transaction: hashing never holds one open.
        patch.passwordHash = await hasher.hash(next, 'reserved');
      }
      const { updated, revoked } = await deps.transaction(async (stores) => {
        // The lock order (ARCHITECTURE.md): a password change ends the other sessions, which
        // takes the user row FOR UPDATE; taken first, so it is never strengthened from the
        // replacement's FOR NO KEY UPDATE while a sign-in holds the row's share and waits.
        if (patch.passwordHash !== undefined) await stores.users.lockUser(user.id, 'update');
        if (
          checked !== undefined &&
          patch.passwordHash !== undefined &&
          !(await stores.users.replacePasswordHash(user.id, checked, patch.passwordHash, clock()))
        ) {
          throw new GatehouseError(
            'INVALID_CURRENT_PASSWORD',
            'current_password is no longer the password.',
            {
              errors: [{ field: 'current_password', message: 'was changed meanwhile' }],
            },
          );
        }
        const updated = await stores.users.updateUser(user.id, patch, clock());
        if (updated === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
        // OWASP Session Management: a new password ends every other session, in the transaction
        // that writes it and after it (red-team 2026-12d I3: ending them first left a gap where a
        // sign-in with the old password started a session that nothing ended). Moving the
        // credentials version with them also stops the sign-ins in flight.
        const revoked =
          patch.passwordHash === undefined
            ? []
            : await stores.sessions.revokeUserSessions(user.id, clock(), currentSessionId);
        // The password someone guessed codes behind is dead: their run of wrong codes ends with
        // it (MFA_MAX_CONSECUTIVE_FAILURES), in the change's transaction, after the account's row.
        if (patch.passwordHash !== undefined) await stores.mfa.clearConsecutiveFailures(user.id);
        // So are the reset links mailed before it: a link someone else saw (a shared mailbox, a
        // forwarded mail) was still a takeover for PASSWORD_RESET_TTL after the owner reacted by
        // changing the password (red-team 2026-12g A4). A reset already ends them all.
        if (patch.passwordHash !== undefined) await stores.tokens.deleteUserTokens(user.id, 'reset_password');
        // The entry commits with the change, or neither does: a process dying between a commit
        // and an audit write after it would leave a password change unrecorded.
        if (patch.passwordHash !== undefined && passwordAudit !== undefined) {
          await createAuditLog(stores.audit, clock, stores.auditTallies).record(passwordAudit);
        }
        // The owner hears of it even if this process dies right after the commit.
        if (patch.passwordHash !== undefined) {
          await stores.notices.add('password_changed', updated.email, {
            when: new Date(clock()).toISOString(),
          });
        }
        return { updated, revoked };
      });
      if (patch.passwordHash !== undefined) deps.notices.flush();
      // After the commit: a broadcast never goes out for a change that rolled back.
      await publishRevokedSessions(deps.bus, revoked);
      deps.userCache.evict(user.id);
      await deps.bus.publish({ type: 'user_changed', userId: user.id });
      return updated;
    },

    applyUserChange,
    verifyCurrentPassword,
  };
}
