import { createHash, randomBytes } from 'node:crypto';
import type { AuditEntry } from '../audit/audit-log.js';
import { type Caller, recordRefusal } from '../audit/record-committed.js';
import { GatehouseError } from '../errors.js';
import type { CoreWarn } from '../events/redis-connections.js';
import type { GatehouseTransaction } from '../gatehouse-transaction.js';
import { addressBucket } from '../lib/address-bucket.js';
import { createFairWorkQueue } from '../lib/fair-work-queue.js';
import type { Mailer } from '../mail/mailer.js';
import type { SecurityNotices } from '../mail/security-notices.js';
import type { PasswordHasher } from '../passwords/password-hasher.js';
import type { PasswordPolicy } from '../passwords/password-policy.js';
import type { AccountTokenPurpose, AccountTokenStore } from '../storage/account-token-store.js';
import type { LifecycleStores } from '../storage/lifecycle-stores.js';
import { isUniqueViolation } from '../storage/open-database.js';
import type { SessionRecord, SessionStore } from '../storage/session-store.js';
import type { UserRecord, UserStore } from '../storage/user-store.js';
import type { AccountDeletion } from './account-deletion.js';
import type { AccountService, Registration } from './account-service.js';
import type { AnnounceAccountChange } from './announce-account-change.js';
import type { CounterStore } from './counter-store.js';
import type { DeviceTokens } from './device-token.js';
import type { LoginThrottle } from './login-throttle.js';
import { maskEmail } from './mask-email.js';
import { normalizeEmail } from './normalize-email.js';
import type { SelfService } from './self-service.js';
import { createStepUp, type SecondFactorStepUp, type StepUpProof } from './step-up.js';
import { type AdminActor, assertMayManageUser } from './user-admin-service.js';

/**
 * What a forgot-password requester may show to be counted as the account's owner: the device
 * token a past login to the account gave this client (the browser's device cookie, or the
 * `device_token` of a password grant). Checked only in the background, after the 202.
 */
export interface ResetRequestProof {
  deviceToken?: string | undefined;
}

/**
 * Whose budget an account mail is counted on (red-team F2). `stranger`: an anonymous request
 * (forgot-password, a sign-up that finds the address taken). `owner`: a request that could only
 * come from the account's owner or an administrator: the signed-in owner, an admin action, or a
 * forgot-password from a client holding a device token for the account, or from an address
 * (IPv4, IPv6 /64) the account has a live session from. Each lane has its own per-client share
 * and its own ceiling, so strangers together can fill only theirs: the owner's reset still goes out.
 */
export type MailLane = 'stranger' | 'owner';

/**
 * What a request following a mailed verification or email-change link brings besides the token
 * (red-team 2026-12d I9). The link proves that the clicker reads the mailbox, not that they chose
 * the account's password: whoever signed up first may be a stranger. So without a session of the
 * account the link needs the account's current password (the person who signed up elsewhere), or,
 * for a verification only, a new password (the address's owner takes the account over).
 */
export interface LinkFollower {
  /** The request's own sign-in, if any: a session of the account needs nothing more. */
  holder?: { userId: string; sessionId: string } | undefined;
  /**
   * The account's current password, checked as a login checks it (`loginWithPassword`: the same
   * per-account, per-IP and global limits, the same generic INVALID_CREDENTIALS), so the link is
   * no unlimited password oracle. Checked whenever sent, unless the address is already verified
   * (a verification then has nothing left to confirm).
   */
  currentPassword?: string | undefined;
  /** The device token the client holds for the account: its own failure counter, as at a login. */
  deviceToken?: string | undefined;
}

/** A {@link LinkFollower} of a verification link, which may also choose a new password. */
export interface VerificationFollower extends LinkFollower {
  /**
   * "I did not create this account" (or "I forgot its password"): a change of owner, in one
   * transaction with the proof: {@link forgetPreProofAccess}, the password replaced by this one
   * (the reset's policy), every session ended. Not with `currentPassword`; refused on an address
   * already verified (EMAIL_ALREADY_VERIFIED: a reset is the way there).
   */
  newPassword?: string | undefined;
}

/** Outcome of {@link AccountLifecycle.register}: the new account, or `accepted` when nothing may be told. */
export type LifecycleRegistration = { status: 'created'; user: UserRecord } | { status: 'accepted' };

/**
 * Email verification, password reset, email change and account deletion (issue 12). Every link
 * holds a token of 256 random bits, stored only as its SHA-256, single use, expiring, and bound to
 * its purpose and to the address it was mailed to. Mail is queued after the change committed
 * and never delays or fails the request.
 */
export interface AccountLifecycle {
  /**
   * Signs up: with `REQUIRE_VERIFIED_EMAIL` off, as {@link SelfService.register} plus a
   * verification mail; on, answers `accepted` whether or not the address has an account, and
   * mails its owner instead of creating a second one (no account enumeration).
   */
  register(input: Registration, caller: Caller): Promise<LifecycleRegistration>;
  /**
   * Starts a password reset for `email` in the background and returns at once, before any
   * lookup, so the answer (and its timing) is the same for every address. Beyond
   * `ACCOUNT_MAILS_PER_HOUR` mails per address from one client, or the address's ceiling, the
   * request is silently dropped. A requester that shows it is the owner (`proof`, or an address
   * the account has a live session from) is counted apart from strangers: see {@link MailLane}.
   */
  requestPasswordReset(email: string, caller: Caller, proof?: ResetRequestProof): void;
  /**
   * Sets a new password with a reset token: ends every session of the account, clears its login
   * lockout, confirms its address, and mails a notice. Second factors are left as they are: a
   * reset never removes or bypasses one. Throws INVALID_LINK_TOKEN or WEAK_PASSWORD (the token
   * then stays usable). Answers a device token for the account under its new password (undefined
   * without device tokens, or when the account changed again meanwhile): the client that followed
   * the link proved the mailbox and chose the password, and the reset ended every device token it
   * had, so without one a stranger's failed logins re-locked the account the moment the reset
   * cleared it (red-team 2026-12-06 RTL1).
   */
  resetPassword(
    token: string,
    password: string,
    caller: Caller,
  ): Promise<{ deviceToken: string | undefined }>;
  /** Mails a verification link to the signed-in user's address (dropped beyond the per-address cap). */
  requestVerification(userId: string, caller: Caller): Promise<void>;
  /**
   * Marks the address verified. An unverified account's link needs one of (see
   * {@link VerificationFollower}): `holder` a session of this account (the ordinary sign-up,
   * nothing else changes); `currentPassword` (verified as it is, nothing removed); `newPassword`
   * (a change of owner). With none: VERIFICATION_NEEDS_PASSWORD, and the link stays usable.
   * Throws INVALID_LINK_TOKEN, INVALID_CREDENTIALS, TOO_MANY_LOGIN_ATTEMPTS, TOO_MANY_REQUESTS,
   * WEAK_PASSWORD, EMAIL_ALREADY_VERIFIED or VALIDATION_FAILED (both passwords); every refusal
   * leaves the link usable. @default follower: none
   */
  verifyEmail(token: string, caller: Caller, follower?: VerificationFollower): Promise<UserRecord>;
  /**
   * Asks to move the account to `newEmail` (the current password required, through the step-up
   * check): a confirmation link to the new address, a notice to the current one. The address
   * changes only on {@link AccountLifecycle.confirmEmailChange}. A taken address answers EMAIL_TAKEN, or
   * (with `REQUIRE_VERIFIED_EMAIL`) the same as a free one, its owner being mailed instead.
   */
  requestEmailChange(
    userId: string,
    newEmail: string,
    proof: StepUpProof,
    sessionId: string,
    caller: Caller,
  ): Promise<UserRecord>;
  /**
   * Applies an email change, while the session that asked for it is live (red-team 2026-12d I1).
   * Without a session of the account (`follower.holder`) it needs the account's
   * `currentPassword` (red-team 2026-12d I9: a stranger's account must not become a verified
   * account of the victim's address because the victim clicked); without either,
   * EMAIL_CHANGE_NEEDS_PASSWORD and the link stays usable. Throws INVALID_LINK_TOKEN,
   * INVALID_CREDENTIALS, TOO_MANY_LOGIN_ATTEMPTS, TOO_MANY_REQUESTS or EMAIL_TAKEN (taken since
   * it was asked). @default follower: none
   */
  confirmEmailChange(token: string, caller: Caller, follower?: LinkFollower): Promise<UserRecord>;
  /**
   * Deletes the caller's own account: the step-up check, then the one deletion routine
   * ({@link AccountDeletion.deleteAccount}): its sessions end, apps' hooks run in the same
   * transaction (Dicery closes what it hosts), audit rows keep the id but lose the IPs and user
   * agents. Throws LAST_SUPER_ADMIN for the last active super admin.
   */
  deleteOwnAccount(userId: string, proof: StepUpProof, sessionId: string, caller: Caller): Promise<void>;
  /** An admin re-sends the verification mail of an account they may manage. */
  resendVerificationFor(actor: AdminActor, userId: string, caller: Caller): Promise<void>;
  /** An admin mails a reset link to an account they may manage (the password stays until it is used). */
  sendResetFor(actor: AdminActor, userId: string, caller: Caller): Promise<void>;
  /** Resolves when background requests and queued mail are done (tests). */
  idle(): Promise<void>;
  /**
   * Resolves when the background look-ups (forgot-password requests answered 202) have run and
   * queued their mail: a graceful shutdown waits for them, bounded, before draining the mailer.
   */
  backgroundIdle(): Promise<void>;
}

/** Dependencies of {@link createAccountLifecycle}, wired in `createGatehouse`. */
export interface AccountLifecycleDeps {
  users: Pick<UserStore, 'findUserById' | 'findUserByEmailKey'>;
  tokens: Pick<AccountTokenStore, 'findToken'>;
  /**
   * Runs a unit of work: `tx` is `Gatehouse.transaction`'s (its audit log), `stores` are the core's
   * stores over the same transaction.
   */
  transaction: <T>(work: (tx: GatehouseTransaction, stores: LifecycleStores) => Promise<T>) => Promise<T>;
  /** `loginWithPassword` checks a password sent with a mailed link, under the login's limits. */
  accounts: Pick<AccountService, 'verifyCurrentPassword' | 'loginWithPassword'>;
  /** Step-up for accounts with a second factor (see {@link createStepUp}); absent in unit tests. */
  secondFactor?: SecondFactorStepUp | undefined;
  selfService: Pick<SelfService, 'register'>;
  hasher: Pick<PasswordHasher, 'hash'>;
  passwordPolicy: PasswordPolicy;
  throttle: Pick<LoginThrottle, 'clearAccount'>;
  counters: Pick<CounterStore, 'increment'>;
  /** Checks a forgot-password requester's device token (see {@link ResetRequestProof}); absent in unit tests. */
  deviceTokens?: Pick<DeviceTokens, 'verify' | 'issue'> | undefined;
  /**
   * The account's live sessions, whose addresses count as the owner's (see {@link MailLane}), and
   * the session that asked for an email change (checked before a password is asked for); absent
   * in unit tests.
   */
  sessions?: Pick<SessionStore, 'listLiveSessions' | 'findSession'> | undefined;
  /** After commit: the revocation list, then `sessions_revoked` and `user_changed` on the bus. */
  announce: AnnounceAccountChange;
  /** The one deletion routine, shared with the administrators' deletion. */
  deletion: Pick<AccountDeletion, 'deleteAccount'>;
  mailer: Mailer;
  /** Mails the notices a change committed (the stores' `notices` write them). */
  notices: Pick<SecurityNotices, 'flush' | 'idle'>;
  clock: () => number;
  warn: CoreWarn;
  settings: {
    requireVerifiedEmail: boolean;
    /** Seconds. */
    emailVerificationTtl: number;
    /** Seconds. */
    passwordResetTtl: number;
    accountMailsPerHour: number;
  };
}

/**
 * Most forgot-password look-ups running or waiting in the background; when full, the oldest
 * waiting request of the client address holding the most makes room (see {@link createFairWorkQueue}).
 */
export const MAX_BACKGROUND_RESETS = 64;

/**
 * How many clients' worth of `accountMailsPerHour` one email address receives per hour at most,
 * per {@link MailLane}. Each client (address bucket) has its own share, so a stranger cannot spend
 * the owner's (red-team F2); this ceiling bounds the inbox against many clients at once. Strangers
 * with this many addresses can fill the stranger lane's ceiling, never the owner's; so an inbox
 * gets at most twice this many shares an hour.
 */
export const ACCOUNT_MAIL_CEILING_FACTOR = 10;

/**
 * Email-change requests an account may make per hour, and a requesting network (an IPv4 address,
 * an IPv6 /48) for all its accounts together. Each request mails a link to an address of the
 * requester's choosing: the per-address budget (`mayMail`) bounds one inbox, not how many inboxes.
 * Without these, a free account sent 600 links to 600 strangers in 15 minutes, and one network's
 * sign-ups tens of thousands an hour, from the operator's relay and reputation (red-team 2026-12l N4).
 * The account's count is taken before the password check, the network's after a right password
 * (wrong ones from strangers behind a shared address must not spend it).
 */
export const EMAIL_CHANGES_PER_ACCOUNT_PER_HOUR = 5;
/** See {@link EMAIL_CHANGES_PER_ACCOUNT_PER_HOUR}. */
export const EMAIL_CHANGES_PER_NETWORK_PER_HOUR = 20;

/** Forgot-password look-ups running at once (each is a read, a write and a queued mail). */
export const MAX_RUNNING_RESETS = 8;

/**
 * The source a request's background work and mail are counted under for fairness: its client's
 * network (an IPv4 address, an IPv6 /48). Per /64, one /48 was 65 536 "clients" of one message
 * each, and a fair queue shared out among them crowds everyone's reset mail out as surely as an
 * unfair one (red-team 2026-12d I8). A site's network weighs as one client, as for the mail
 * shares (`mayMail`), the login breaker and the sign-up limit; RFC 6177 §3 (a site gets a /48).
 */
export function callerSource(caller: Caller): string {
  return `ip:${addressBucket(caller.client.ip, 48)}`;
}

/**
 * Pre-account hijacking (Sudhodanan & Paverd, USENIX Security 2022; red-team 2026-12c H3): with
 * `REQUIRE_VERIFIED_EMAIL=false` an account is usable before its address is proven, so a stranger
 * may sign up with someone's address first and set up a way in (a passkey, a TOTP authenticator
 * holding the recovery codes, an app's consent) that would outlive the owner claiming the account.
 * The first proof of the address (a reset link, or a verification link followed without a session
 * of the account) therefore counts as a change of owner: in the proof's transaction every session
 * ends and every sign-in method but the new password and the mailbox is removed. Device tokens are
 * stateless: one issued before the proof is marked so and stops verifying once the address is
 * proven, and every one is bound to the password hash, so a reset ends them too (`device-token.ts`):
 * the stranger keeps no lane past the owner's lockout either.
 */
async function forgetPreProofAccess(stores: LifecycleStores, userId: string, now: number) {
  const removed = await stores.forgetSignInMethods(userId);
  const ended = await stores.sessions.revokeUserSessions(userId, now);
  return { removed, ended };
}

/** The audit details of a first proof: what it removed. */
function firstProofDetails({ removed, ended }: Awaited<ReturnType<typeof forgetPreProofAccess>>) {
  return {
    first_proof: true,
    totp_removed: removed.totp,
    passkeys_removed: removed.passkeys,
    apps_removed: removed.apps,
    sessions_ended: ended.length,
  };
}

/** SHA-256 of a link token, as stored. */
export function hashLinkToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

function invalidLink(): GatehouseError {
  return new GatehouseError(
    'INVALID_LINK_TOKEN',
    'This link is invalid, used or expired; ask for a new one.',
  );
}

/**
 * A wrong current password sent with a link: the login's generic refusal (the code a wrong
 * password answers at `/auth/login`), under the field the page asked it in.
 */
function wrongPassword(): GatehouseError {
  return new GatehouseError('INVALID_CREDENTIALS', 'The password is wrong.', {
    errors: [{ field: 'current_password', message: 'is not the account’s password' }],
  });
}

/** A link followed without a session of the account and without its password (the link stays usable). */
function needsPassword(code: 'VERIFICATION_NEEDS_PASSWORD' | 'EMAIL_CHANGE_NEEDS_PASSWORD'): GatehouseError {
  return new GatehouseError(
    code,
    code === 'VERIFICATION_NEEDS_PASSWORD'
      ? 'You are not signed in to this account here: enter its password, or choose a new one if you did not create it.'
      : 'You are not signed in to this account here: enter its password to confirm the change.',
    { errors: [{ field: 'current_password', message: 'is required without a session of the account' }] },
  );
}

function alreadyVerified(): GatehouseError {
  return new GatehouseError(
    'EMAIL_ALREADY_VERIFIED',
    'This address is already confirmed. To choose a new password, use “Forgot password”.',
  );
}

/**
 * Whether a link of `purpose` still belongs to `user`: a verification or reset link was mailed
 * to the account's address and dies when it changes; an email-change link was mailed to the new
 * one, and applies only from the account it was asked for.
 */
function sentToAccount(record: { purpose: AccountTokenPurpose; emailKey: string }, user: UserRecord) {
  return record.purpose === 'change_email' || record.emailKey === user.emailKey;
}

/**
 * Whether an email change still applies (red-team 2026-12d I1): the account is active and the
 * session that asked for it is live.
 */
function changeApplies(
  link: { record: { sessionId: string | null }; user: UserRecord },
  asking: SessionRecord | undefined,
  now: number,
): boolean {
  return (
    link.user.isActive &&
    link.record.sessionId !== null &&
    asking !== undefined &&
    asking.userId === link.user.id &&
    asking.revokedAt === null &&
    asking.expiresAt > now
  );
}

/** The audit detail of how a link's follower showed they hold the account. */
type LinkProof = 'session' | 'current_password' | 'new_password' | 'already_verified';

function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 22);
}

/** Creates the {@link AccountLifecycle}. */
export function createAccountLifecycle(deps: AccountLifecycleDeps): AccountLifecycle {
  const { users, mailer, clock, settings, warn } = deps;
  const stepUp = createStepUp(deps.accounts, deps.secondFactor);
  const background = createFairWorkQueue({
    maxRunning: MAX_RUNNING_RESETS,
    maxQueued: MAX_BACKGROUND_RESETS,
    warn,
  });
  const ttlMs = (purpose: AccountTokenPurpose) =>
    (purpose === 'reset_password' ? settings.passwordResetTtl : settings.emailVerificationTtl) * 1000;
  const hours = String(Math.round(settings.emailVerificationTtl / 360) / 10);

  /**
   * Counts one mail to `emailKey` this hour on behalf of `caller` in `lane`; false beyond a cap.
   * Keyed by a digest, so the counter store never holds the address.
   *
   * Red-team F2: one budget per address let a stranger's three forgot-password requests use up the
   * owner's mails for an hour. The budget is per address *and* requesting client (address
   * bucket), so a stranger spends only their own share; the address's total is capped at
   * {@link ACCOUNT_MAIL_CEILING_FACTOR} shares, which bounds what many clients together can send to
   * one inbox (mail bombing). A refused share is not counted in the total, so one client cannot
   * spend the ceiling either. Ten stranger addresses could still fill that ceiling, so shares and
   * ceiling are kept per {@link MailLane}: strangers never reach the owner's.
   */
  const mayMail = async (
    emailKey: string,
    caller: Caller,
    lane: MailLane = 'stranger',
    /** Whose share: a device token's id when the requester holds one; else the client's network. */
    deviceId?: string,
  ) => {
    // The stranger lane keeps its original keys, so counts made before an upgrade still hold.
    const address = lane === 'stranger' ? digest(emailKey) : `${digest(emailKey)}:owner`;
    // A share per IPv6 /48, not /64 (red-team G3): one host with a routed /56 or /48 is many /64s,
    // and ten of them filled the ceiling. A site weighs as one client, as for the login breaker.
    // A requester holding a device token of the account has a share of its own (red-team
    // 2026-12-06 RTL4): a neighbour behind the owner's NAT, promoted to the owner's lane by the
    // owner's session from that address, spent the network's share and the owner's own request,
    // device cookie and all, sent nothing.
    const client =
      deviceId === undefined ? `ip:${addressBucket(caller.client.ip, 48)}` : `device:${deviceId}`;
    const share = await deps.counters.increment(`mail:address:${address}:${digest(client)}`, 3600_000);
    if (share.count > settings.accountMailsPerHour) return false;
    const total = await deps.counters.increment(`mail:address:${address}`, 3600_000);
    return total.count <= settings.accountMailsPerHour * ACCOUNT_MAIL_CEILING_FACTOR;
  };

  /** Counts an email-change request under `key`; 429 with Retry-After beyond `max` an hour. */
  const chargeEmailChange = async (key: string, max: number) => {
    const window = await deps.counters.increment(key, 3600_000);
    if (window.count > max) {
      throw new GatehouseError('TOO_MANY_REQUESTS', 'Too many email change requests; try again later.', {
        retryAfterSeconds: Math.max(1, Math.ceil((window.resetAt - clock()) / 1000)),
      });
    }
  };

  /**
   * The lane of a forgot-password request for `user` (see {@link MailLane}): the owner's when the
   * requester holds a device token for the account, or its address (bucket) is one the account
   * has a live session from. A session list that cannot be read counts as a stranger's request:
   * the fallback is the budget every request had before.
   */
  const resetLane = async (
    user: UserRecord,
    caller: Caller,
    proof: ResetRequestProof | undefined,
  ): Promise<{ lane: MailLane; deviceId?: string }> => {
    const device = deps.deviceTokens?.verify(proof?.deviceToken, user);
    if (device !== undefined) return { lane: 'owner', deviceId: device.deviceId };
    if (deps.sessions === undefined) return { lane: 'stranger' };
    const bucket = addressBucket(caller.client.ip);
    try {
      const live = await deps.sessions.listLiveSessions(user.id, clock());
      return {
        lane: live.some((session) => session.ip !== null && addressBucket(session.ip) === bucket)
          ? 'owner'
          : 'stranger',
      };
    } catch (error) {
      warn('Sessions not read for a reset request; counted as a stranger', {
        error: error instanceof Error ? error.message : String(error),
      });
      return { lane: 'stranger' };
    }
  };

  /**
   * How many live links of a purpose an account keeps. An email change: one, the newest request
   * is the one that applies. A reset or verification: what both mail lanes' ceilings can send to
   * the address in two adjacent hourly windows (the counters' windows are fixed, so a flood timed
   * on a boundary sends two windows' worth within minutes), so no reset link (≤ 30 minutes) is
   * pushed out while it lives. Before, a stranger's forgot-password request killed the link the
   * owner had just been mailed. Verification links live longer, but only the owner and admins add
   * them after sign-up. Using a reset link still ends them all.
   */
  const linksKept = (purpose: AccountTokenPurpose) =>
    purpose === 'change_email' ? 1 : 4 * ACCOUNT_MAIL_CEILING_FACTOR * settings.accountMailsPerHour;

  /** A fresh token for `user` in `tx`, beside their newest ones of this purpose ({@link linksKept}). */
  const issue = async (
    stores: LifecycleStores,
    userId: string,
    purpose: AccountTokenPurpose,
    email: { display: string; key: string },
    sessionId: string | null = null,
  ) => {
    // 256 bits from the CSPRNG (OWASP Forgot Password Cheat Sheet; the issue asks ≥ 128).
    const token = randomBytes(32).toString('base64url');
    const now = clock();
    // The lock order (ARCHITECTURE.md): the account's row before the links it deletes, whose
    // deletion locks their rows while the insert's foreign key waits for the account's.
    // Deleted since it was read (before the mail budget was checked, say): its link's key would
    // name no account (23503).
    if ((await stores.users.lockUser(userId, 'key share')) === undefined) {
      throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
    }
    await stores.tokens.storeToken(
      {
        tokenHash: hashLinkToken(token),
        userId,
        purpose,
        emailKey: email.key,
        email: email.display,
        createdAt: now,
        expiresAt: now + ttlMs(purpose),
        sessionId,
      },
      linksKept(purpose),
    );
    return token;
  };

  /** After commit: this instance's revocation list, then the broadcasts (failures reported, not thrown). */
  const { announce } = deps;

  const sendVerification = async (
    user: UserRecord,
    audit: AuditEntry | undefined,
    caller: Caller,
    lane: MailLane,
  ) => {
    if (!(await mayMail(user.emailKey, caller, lane))) return;
    const token = await deps.transaction(async (tx, stores) => {
      const value = await issue(stores, user.id, 'verify_email', {
        display: user.email,
        key: user.emailKey,
      });
      if (audit !== undefined) await tx.audit.record(audit);
      return value;
    });
    mailer.send(
      'verify_email',
      user.email,
      { link: mailer.link('verify-email', token), hours },
      { source: callerSource(caller), fromStranger: lane === 'stranger' },
    );
  };

  const sendReset = async (
    user: UserRecord,
    caller: Caller,
    actorId: string,
    lane: MailLane,
    deviceId?: string,
  ) => {
    if (!(await mayMail(user.emailKey, caller, lane, deviceId))) return;
    const token = await deps.transaction(async (tx, stores) => {
      const value = await issue(stores, user.id, 'reset_password', {
        display: user.email,
        key: user.emailKey,
      });
      await tx.audit.record({
        event: 'password_reset_requested',
        actorId,
        targetId: user.id,
        ...caller.client,
      });
      return value;
    });
    mailer.send(
      'reset_password',
      user.email,
      {
        link: mailer.link('reset-password', token),
        minutes: String(Math.round(settings.passwordResetTtl / 60)),
      },
      { source: callerSource(caller), fromStranger: lane === 'stranger' },
    );
  };

  /**
   * A live link token and its account, without using it up: checked before any hash or password
   * check, so a made-up token costs one indexed read, and a refusal leaves the link usable.
   */
  const findLink = async (token: string, purpose: AccountTokenPurpose) => {
    const record = await deps.tokens.findToken(hashLinkToken(token), purpose, clock());
    const user = record === undefined ? undefined : await users.findUserById(record.userId);
    if (record === undefined || user === undefined || !sentToAccount(record, user)) throw invalidLink();
    return { record, user };
  };

  /** Consumes a link token in `tx` and returns it with its account, checked against the address it was sent to. */
  const consume = async (stores: LifecycleStores, token: string, purpose: AccountTokenPurpose) => {
    const hash = hashLinkToken(token);
    // The lock order (ARCHITECTURE.md): the account's row first, FOR UPDATE (the link's change
    // updates it, and a reset ends every session), and only then the link's row. Spending the link
    // first deadlocked with a deletion holding the user row and deleting the account's links by
    // cascade (40P01, test/http/lock-order.test.ts). So: which account (a plain read), its lock,
    // then the single-use spend, which still decides a race between two followers.
    const found = await stores.tokens.findToken(hash, purpose, clock());
    if (found === undefined) throw invalidLink();
    const user = await stores.users.lockUser(found.userId, 'update');
    const record = await stores.tokens.consumeToken(hash, purpose, clock());
    if (record === undefined) throw invalidLink();
    // Bound to the address: a link mailed to an address the account no longer has is dead
    // (verify, reset), and an email change applies only from the address it was asked from.
    if (user === undefined || !sentToAccount(record, user)) throw invalidLink();
    return { record, user };
  };

  /**
   * Checks the account's current password sent with a mailed link (red-team 2026-12d I9) as a
   * login checks it: `loginWithPassword`'s per-account, per-IP and global failure limits (a
   * device token's own counter when the client holds one), the hashing lanes, the same generic
   * refusal; a wrong password is tallied as a failed login. Whoever holds the link may guess the
   * password no faster than at the login form. Returns the hash the password matched, for the
   * caller to compare inside its transaction (a password changed meanwhile is not the one
   * checked). A right password counts as a login toward `LOGIN_MAX_SUCCESSES_PER_ACCOUNT`, or, from an
   * untrusted client on an account with an authenticator app, toward its challenges
   * (`LoginThrottle.checkChallenges`: the same size; only untrusted clients wait on it).
   */
  const checkAccountPassword = async (
    user: UserRecord,
    password: string,
    caller: Caller,
    follower: LinkFollower,
  ) => {
    const seen = user.passwordHash;
    const login = await deps.accounts.loginWithPassword(
      user.email,
      password,
      caller.client.ip,
      follower.deviceToken,
    );
    if (login.ok || login.reason === 'disabled' || login.reason === 'unverified') {
      // A right password (disabled or unverified accounts are only told so once it was right).
      // Another account under the address can only mean it moved meanwhile: the link is dead.
      if ((login.ok ? login.user.id : login.userId) !== user.id) throw invalidLink();
      return seen;
    }
    if (login.reason === 'throttled') {
      throw new GatehouseError('TOO_MANY_LOGIN_ATTEMPTS', 'Too many wrong passwords; try again later.', {
        retryAfterSeconds: login.retryAfterSeconds,
      });
    }
    if (login.reason === 'busy') {
      throw new GatehouseError('TOO_MANY_REQUESTS', 'Too many password checks at once; try again shortly.', {
        retryAfterSeconds: login.retryAfterSeconds,
      });
    }
    const entry: AuditEntry = {
      event: 'login_failed',
      targetId: user.id,
      ...caller.client,
      details: { reason: 'invalid_credentials', via: 'email_link' },
    };
    // After the refusal is decided: a tally lost to another failure must not turn it into a 500,
    // and with the database unavailable the refusal waits for it (503), never a refusal that leaves
    // no trace (review of operator red-team 2026-12h F2).
    await recordRefusal(
      { record: (refusal) => deps.transaction((tx) => tx.audit.record(refusal)) },
      caller,
      entry,
    );
    throw wrongPassword();
  };

  /**
   * Sets a new password through a mailed link: a reset link, or a verification link whose
   * follower never chose the account's password (red-team 2026-12d I9's change of owner). One
   * transaction: the link used, the password replaced, the address verified, on a first proof
   * everything set up before it forgotten ({@link forgetPreProofAccess}), every session and the
   * account's other links ended. The link stays usable on any refusal (weak password, a
   * verification of an address verified meanwhile).
   */
  const setPasswordByLink = async (
    token: string,
    purpose: 'reset_password' | 'verify_email',
    rawPassword: string,
    caller: Caller,
  ) => {
    // Checked before any hash: a made-up token costs one indexed read.
    const { user: owner } = await findLink(token, purpose);
    const viaVerification = purpose === 'verify_email';
    if (viaVerification && owner.emailVerified) throw alreadyVerified();
    const check = deps.passwordPolicy.check(rawPassword, { email: owner.email });
    if (!check.ok) {
      throw new GatehouseError('WEAK_PASSWORD', check.reason, {
        errors: [{ field: viaVerification ? 'new_password' : 'password', message: check.reason }],
      });
    }
    const passwordHash = await deps.hasher.hash(check.password);
    const { user, revoked } = await deps.transaction(async (tx, stores) => {
      const { user } = await consume(stores, token, purpose);
      // Verified since the look-up (by its own session, say): a change of owner no longer applies.
      if (viaVerification && user.emailVerified) throw alreadyVerified();
      // Following the link proved the address, so it counts as verified.
      const updated = await stores.users.updateUser(user.id, { passwordHash, emailVerified: true }, clock());
      if (updated === undefined) throw invalidLink();
      // The first proof of the address: whatever was set up before it may be a stranger's.
      const firstProof = user.emailVerified
        ? undefined
        : await forgetPreProofAccess(stores, user.id, clock());
      // OWASP Forgot Password Cheat Sheet: end every session after a reset, and the account's
      // other links (a pending email change also dies with the session that asked for it).
      const ended = firstProof?.ended ?? (await stores.sessions.revokeUserSessions(user.id, clock()));
      // Not the end of a run of wrong codes (MFA_MAX_CONSECUTIVE_FAILURES): a reset proves the
      // mailbox alone, and someone holding the password and the mailbox would otherwise get a
      // fresh run of guesses at the second factor per reset (review 2026-12-04 #6). Only a second
      // factor accepted (a trusted device's code, a passkey) or an admin reset ends it.
      await stores.tokens.deleteUserTokens(user.id);
      const proofDetails = firstProof === undefined ? {} : firstProofDetails(firstProof);
      await tx.audit.record({
        event: viaVerification ? 'email_verified' : 'password_reset',
        actorId: user.id,
        targetId: user.id,
        ...caller.client,
        ...(viaVerification
          ? { details: { ...proofDetails, proof: 'new_password' satisfies LinkProof } }
          : firstProof === undefined
            ? {}
            : { details: proofDetails }),
      });
      await stores.notices.add('password_changed', updated.email, { when: new Date(clock()).toISOString() });
      return { user: updated, revoked: ended };
    });
    deps.notices.flush();
    await announce(user.id, revoked);
    // The lockout an attacker may have caused ends: the owner just proved the address.
    await deps.throttle.clearAccount(user.emailKey).catch((error: unknown) =>
      warn('login lockout not cleared after a reset', {
        error: error instanceof Error ? error.message : String(error),
      }),
    );
    return user;
  };

  return {
    async register(input, caller) {
      if (!settings.requireVerifiedEmail) {
        const user = await deps.selfService.register(input, caller);
        await sendVerification(user, undefined, caller, 'stranger');
        return { status: 'created', user };
      }
      try {
        const user = await deps.selfService.register(input, caller);
        await sendVerification(user, undefined, caller, 'stranger');
      } catch (error) {
        if (!(error instanceof GatehouseError) || error.code !== 'EMAIL_TAKEN') throw error;
        // The hash was computed before the insert failed: both paths cost the same.
        const email = normalizeEmail(input.email);
        const owner = email === undefined ? undefined : await users.findUserByEmailKey(email.key);
        if (owner !== undefined && (await mayMail(owner.emailKey, caller))) {
          mailer.send(
            'account_exists',
            owner.email,
            { link: mailer.link('forgot-password') },
            // Anyone can name a taken address.
            { source: callerSource(caller), fromStranger: true },
          );
        }
      }
      return { status: 'accepted' };
    },

    requestPasswordReset(rawEmail, caller, proof) {
      background.push(callerSource(caller), 'password reset request', async () => {
        const email = normalizeEmail(rawEmail);
        if (email === undefined) return;
        const user = await users.findUserByEmailKey(email.key);
        if (user === undefined || !user.isActive) return;
        const { lane, deviceId } = await resetLane(user, caller, proof);
        await sendReset(user, caller, user.id, lane, deviceId);
      });
    },

    async resetPassword(token, rawPassword, caller) {
      const { id } = await setPasswordByLink(token, 'reset_password', rawPassword, caller);
      // Read again: ending the sessions moved the credentials version the token is bound to. The
      // reset has committed and its link is spent, so a failed read must not fail the request (a
      // retry would only say the link is used): no device token then.
      try {
        const account = await users.findUserById(id);
        return { deviceToken: account === undefined ? undefined : deps.deviceTokens?.issue(account) };
      } catch (error) {
        warn('no device token after a reset: the account could not be read', {
          error: error instanceof Error ? error.message : String(error),
        });
        return { deviceToken: undefined };
      }
    },

    async requestVerification(userId, caller) {
      const user = await users.findUserById(userId);
      if (user === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
      if (user.emailVerified) return;
      await sendVerification(
        user,
        {
          event: 'verification_requested',
          actorId: userId,
          targetId: userId,
          ...caller.client,
        },
        caller,
        'owner',
      );
    },

    async verifyEmail(token, caller, follower = {}) {
      const { currentPassword, newPassword } = follower;
      if (currentPassword !== undefined && newPassword !== undefined) {
        const message = 'send current_password or new_password, not both';
        throw new GatehouseError('VALIDATION_FAILED', message, {
          errors: [
            { field: 'current_password', message },
            { field: 'new_password', message },
          ],
        });
      }
      if (newPassword !== undefined) return setPasswordByLink(token, 'verify_email', newPassword, caller);
      const found = await findLink(token, 'verify_email');
      const checked =
        currentPassword === undefined || found.user.emailVerified
          ? undefined
          : await checkAccountPassword(found.user, currentPassword, caller, follower);
      // How the follower holds the account, if they do (red-team 2026-12d I9: a mailbox alone is
      // not the account; before, it counted as a change of owner that kept the stranger's password).
      const proofOf = (user: UserRecord): LinkProof | undefined =>
        user.emailVerified
          ? 'already_verified'
          : checked !== undefined && user.passwordHash === checked
            ? 'current_password'
            : follower.holder?.userId === user.id
              ? 'session'
              : undefined;
      if (proofOf(found.user) === undefined) throw needsPassword('VERIFICATION_NEEDS_PASSWORD');
      const user = await deps.transaction(async (tx, stores) => {
        const { user } = await consume(stores, token, 'verify_email');
        // Read again in the link's transaction: a password changed since it was checked is not
        // the one the follower knows (rolled back, the link stays usable).
        const proof = proofOf(user);
        if (proof === undefined)
          throw checked === undefined ? needsPassword('VERIFICATION_NEEDS_PASSWORD') : wrongPassword();
        const updated = await stores.users.updateUser(user.id, { emailVerified: true }, clock());
        if (updated === undefined) throw invalidLink();
        await tx.audit.record({
          event: 'email_verified',
          actorId: user.id,
          targetId: user.id,
          ...caller.client,
          details: { proof },
        });
        return updated;
      });
      await announce(user.id, []);
      // Before the address was proved, a right password counted as a failed login (it is
      // answered as one under REQUIRE_VERIFIED_EMAIL): the owner's own tries end with the proof.
      await deps.throttle.clearAccount(user.emailKey).catch((error: unknown) =>
        warn('login lockout not cleared after a verification', {
          error: error instanceof Error ? error.message : String(error),
        }),
      );
      return user;
    },

    async requestEmailChange(userId, rawEmail, proof, sessionId, caller) {
      const email = normalizeEmail(rawEmail);
      if (email === undefined) {
        throw new GatehouseError('VALIDATION_FAILED', 'email is not a valid address', {
          errors: [{ field: 'email', message: 'must be a valid email address' }],
        });
      }
      const user = await users.findUserById(userId);
      if (user === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
      // Before the step-up: a request that changes nothing costs no password hash (red-team
      // 2026-12g A1: right-password checks that changed nothing were a free flood of hashes).
      if (email.key === user.emailKey) {
        throw new GatehouseError('VALIDATION_FAILED', 'email is already your address', {
          errors: [{ field: 'email', message: 'is already your address' }],
        });
      }
      // Per account before the password check (no hash for a refused request); per requesting
      // network only once the password was right, so that strangers behind a shared address (a
      // campus NAT) cannot spend its allowance with wrong passwords (review of N4).
      await chargeEmailChange(`email-change:account:${digest(user.id)}`, EMAIL_CHANGES_PER_ACCOUNT_PER_HOUR);
      await stepUp.confirm(user, proof, sessionId);
      await chargeEmailChange(
        `email-change:${digest(callerSource(caller))}`,
        EMAIL_CHANGES_PER_NETWORK_PER_HOUR,
      );
      const taken = await users.findUserByEmailKey(email.key);
      if (taken !== undefined) {
        if (!settings.requireVerifiedEmail)
          throw new GatehouseError('EMAIL_TAKEN', 'An account with this email already exists.');
        if (await mayMail(taken.emailKey, caller)) {
          // As a request for a free address replaces the account's pending change link, so does
          // this one: a link left alive told the asker, on following it, which case this was.
          // The asker's own address hears of the request as it would for a free address: a notice
          // there only when the address was free told any signed-in account which addresses have
          // accounts, which REQUIRE_VERIFIED_EMAIL must not (red-team finding).
          await deps.transaction(async (_tx, stores) => {
            await stores.users.lockUser(user.id, 'key share');
            await stores.tokens.deleteUserTokens(user.id, 'change_email');
            await stores.notices.add('email_change_requested', user.email, {
              new_email: email.display,
              account_email: user.email,
            });
          });
          mailer.send(
            'account_exists',
            taken.email,
            { link: mailer.link('forgot-password') },
            // Anyone can name a taken address.
            { source: callerSource(caller), fromStranger: true },
          );
          deps.notices.flush();
        }
        return user;
      }
      if (!(await mayMail(email.key, caller))) return user;
      const token = await deps.transaction(async (tx, stores) => {
        // Bound to the asking session: whatever ends it (a reset, a password change, "log out
        // everywhere", the owner ending it) ends the change too (red-team 2026-12d I1).
        const value = await issue(stores, user.id, 'change_email', email, sessionId);
        await tx.audit.record({
          event: 'email_change_requested',
          actorId: userId,
          targetId: userId,
          ...caller.client,
        });
        await stores.notices.add('email_change_requested', user.email, {
          new_email: email.display,
          account_email: user.email,
        });
        return value;
      });
      mailer.send(
        'confirm_email_change',
        email.display,
        {
          link: mailer.link('confirm-email', token),
          new_email: email.display,
          hours,
          account_email: maskEmail(user.email),
        },
        // Counted under the requester's network in the mail queue's fair share, as reset mail is;
        // any account holder can name this address, so it never pushes out the address's own mail.
        { source: callerSource(caller), fromStranger: true },
      );
      deps.notices.flush();
      return user;
    },

    async confirmEmailChange(token, caller, follower = {}) {
      const found = await findLink(token, 'change_email');
      // A dead link says so before any password is asked for or checked.
      const { sessionId } = found.record;
      if (deps.sessions !== undefined) {
        const asking = sessionId === null ? undefined : await deps.sessions.findSession(sessionId);
        if (!changeApplies(found, asking, clock())) throw invalidLink();
      }
      // Red-team 2026-12d I9's neighbouring path: a stranger asks to move their account to the
      // victim's address, and the victim's click on "Use this address" would make it a verified
      // account of that address, password and passkeys the stranger's. Whoever follows the link
      // must hold the account: a session of it, or its password.
      const { currentPassword } = follower;
      const checked =
        currentPassword === undefined
          ? undefined
          : await checkAccountPassword(found.user, currentPassword, caller, follower);
      if (checked === undefined && follower.holder?.userId !== found.user.id)
        throw needsPassword('EMAIL_CHANGE_NEEDS_PASSWORD');
      const after = await deps
        .transaction(async (tx, stores) => {
          const { record, user } = await consume(stores, token, 'change_email');
          // Only while the session that asked is live and the account active: otherwise whoever
          // asked (an intruder the owner has since locked out) could still move the account.
          const asking =
            record.sessionId === null ? undefined : await stores.sessions.findSession(record.sessionId);
          if (!changeApplies({ record, user }, asking, clock())) throw invalidLink();
          // The password checked must still be the account's (rolled back, the link stays usable).
          if (checked !== undefined && user.passwordHash !== checked) throw wrongPassword();
          const updated = await stores.users.updateUser(
            user.id,
            { email: record.email, emailKey: record.emailKey, emailVerified: true },
            clock(),
          );
          if (updated === undefined) throw invalidLink();
          // Links mailed to the old address die with it.
          await stores.tokens.deleteUserTokens(user.id);
          await tx.audit.record({
            event: 'email_changed',
            actorId: user.id,
            targetId: user.id,
            ...caller.client,
            details: { proof: (checked === undefined ? 'session' : 'current_password') satisfies LinkProof },
          });
          await stores.notices.add('email_changed', user.email, {
            new_email: updated.email,
            account_email: user.email,
          });
          return updated;
        })
        .catch((error: unknown) => {
          // The unique index decides a race with a sign-up for the same address.
          if (error instanceof GatehouseError) throw error;
          if (isUniqueViolation(error))
            throw new GatehouseError('EMAIL_TAKEN', 'An account with this email already exists.');
          throw error;
        });
      deps.notices.flush();
      await announce(after.id, []);
      return after;
    },

    async deleteOwnAccount(userId, proof, sessionId, _caller) {
      const user = await users.findUserById(userId);
      if (user === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
      await stepUp.confirm(user, proof, sessionId);
      await deps.deletion.deleteAccount(userId, { by: 'self' });
    },

    async resendVerificationFor(actor, userId, caller) {
      const target = await users.findUserById(userId);
      // A missing account is judged as any account would be: only admins learn it is missing.
      assertMayManageUser(actor, target);
      if (target === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
      if (target.emailVerified) return;
      await sendVerification(
        target,
        {
          event: 'verification_requested',
          actorId: actor.id,
          targetId: userId,
          ...caller.client,
        },
        caller,
        'owner',
      );
    },

    async sendResetFor(actor, userId, caller) {
      const target = await users.findUserById(userId);
      // A missing account is judged as any account would be: only admins learn it is missing.
      assertMayManageUser(actor, target);
      if (target === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
      await sendReset(target, caller, actor.id, 'owner');
    },

    async idle() {
      await background.idle();
      await deps.notices.idle();
      await mailer.idle();
    },

    backgroundIdle: () => background.idle(),
  };
}
