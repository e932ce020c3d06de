import { createHash } from 'node:crypto';
import type { CounterStore } from '../accounts/counter-store.js';
import type { DeviceTokens } from '../accounts/device-token.js';
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import { GatehouseError } from '../errors.js';
import { type EventBus, publishRevokedSessions } from '../events/event-bus.js';
import type { Mailer } from '../mail/mailer.js';
import { addAccountNotice, type NoticeWriter, type SecurityNotices } from '../mail/security-notices.js';
import { assertSessionLive } from '../sessions/live-session.js';
import type { StepUpPolicy } from '../sessions/step-up.js';
import type { SessionStore } from '../storage/session-store.js';
import type { SpentChallengeStore } from '../storage/spent-challenge-store.js';
import type { UserLockMode, UserRecord, UserStore } from '../storage/user-store.js';
import { createSealer, type TokenSealer } from '../tokens/token-sealer.js';
import type { ChallengeFlow, MfaChallenge, MfaTokens } from './mfa-token.js';
import { requireProvenAddress } from './proven-address.js';
import { generateRecoveryCodes, hashRecoveryCode, normalizeRecoveryCode } from './recovery-codes.js';
import type { MfaStore } from './storage/mfa-store.js';
import type { PasskeyStore } from './storage/passkey-store.js';
import { generateTotpSecret, looksLikeTotpCode, matchTotpStep, totpUri } from './totp.js';

/** How a second factor was proven: RFC 8176 `amr` values (`otp`) plus our recovery codes. */
export type SecondFactorMethod = 'totp' | 'recovery_code';

/**
 * The RFC 8176 `amr` of a login or re-authentication with password and `method`: `otp` for a
 * TOTP code, and `mfa` either way (a recovery code is a look-up secret, which RFC 8176 has no
 * value for).
 */
export function amrOf(method: SecondFactorMethod): string[] {
  return method === 'totp' ? ['pwd', 'otp', 'mfa'] : ['pwd', 'mfa'];
}

/** An account's second factors, as its owner and admins see them. */
export interface MfaStatus {
  /** `on`: a confirmed authenticator (logins ask for a code); `pending`: enrolment not confirmed. */
  totp: 'off' | 'pending' | 'on';
  /** Unused recovery codes left. */
  recoveryCodesLeft: number;
  /** Registered passkeys (each signs in on its own, with every factor: see `PASSKEY_AMR`). */
  passkeys: number;
}

/**
 * A second factor presented by a signed-in session (to turn MFA off, renew recovery codes, or
 * re-authenticate), with what the change it authorized resolved with (`value`).
 */
export type SecondFactorCheck<T> =
  | { ok: true; method: SecondFactorMethod; value: T }
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number }
  /** The account's run of wrong codes is at MFA_MAX_CONSECUTIVE_FAILURES: an authenticator-app code refused unchecked. */
  | { ok: false; reason: 'locked' };

/** What a code presented at the cap is told: waiting does not help, another factor does. */
export const SECOND_FACTOR_LOCKED_MESSAGE =
  'Too many wrong codes in a row: this account refuses authenticator-app codes from new devices. Sign in ' +
  'with one of your recovery codes, a passkey, or a code on a device that signed in to it before (each ' +
  'lifts this), then change your password; without any, ask an administrator to reset your second factor.';

/**
 * The value of an accepted {@link SecondFactorCheck}; otherwise throws the refusal:
 * TOO_MANY_LOGIN_ATTEMPTS (with its Retry-After), SECOND_FACTOR_LOCKED, or INVALID_OTP naming
 * `field`, the request's field that carried the code.
 */
export function valueOrRefusal<T>(check: SecondFactorCheck<T>, field: string): T {
  if (check.ok) return check.value;
  if (check.reason === 'throttled') {
    throw new GatehouseError('TOO_MANY_LOGIN_ATTEMPTS', 'Too many wrong codes; try again later.', {
      retryAfterSeconds: check.retryAfterSeconds,
    });
  }
  if (check.reason === 'locked')
    throw new GatehouseError('SECOND_FACTOR_LOCKED', SECOND_FACTOR_LOCKED_MESSAGE);
  throw new GatehouseError('INVALID_OTP', 'The code is wrong, expired or already used.', {
    errors: [{ field, message: 'must be the current code of your authenticator app or a recovery code' }],
  });
}

/**
 * The stores a login's second step spends its factor on: those of the transaction that writes the
 * session (see `SessionStartOptions.spend`), so the spending commits with the session or not at all.
 */
export interface SecondFactorStores {
  mfa: Pick<
    MfaStore,
    'acceptTotpStep' | 'useRecoveryCode' | 'endRunBeforeRecoveryCode' | 'countRecoveryCodes'
  >;
  spent: Pick<SpentChallengeStore, 'claimChallenge'>;
  audit: Pick<AuditLog, 'record'>;
  /** The owner's `recovery_code_used` notice, committed with the sign-in that spends the code. */
  notices: NoticeWriter;
}

/**
 * A second factor checked but not yet spent: what {@link MfaService.completeChallenge} hands the
 * caller that starts the session.
 */
export interface SecondFactorProof {
  user: UserRecord;
  challenge: MfaChallenge;
  method: SecondFactorMethod;
  /**
   * Claims the `mfa_token` and spends the factor (records the TOTP step, or uses the recovery code
   * and audits `mfa_recovery_code_used` with `audit`'s client facts) on `stores`, ending the
   * account's run of wrong codes with it. Call it inside the
   * session's transaction. Throws when another request claimed the token or spent the code first,
   * so the transaction rolls back; {@link MfaService.completeChallenge} turns that into its answer.
   */
  spend(stores: SecondFactorStores, audit: Omit<AuditEntry, 'event'>): Promise<void>;
}

/** Outcome of {@link MfaService.completeChallenge}: on success, what its `start` resolved with. */
export type ChallengeCompletion<T> =
  | {
      ok: true;
      value: T;
      user: UserRecord;
      challenge: MfaChallenge;
      method: SecondFactorMethod;
      /** A fresh device token: device trust is granted only once every factor has been proven. */
      deviceToken: string;
    }
  /** The `mfa_token` is forged, expired, already used, for another flow, or spent its tries. */
  | { ok: false; reason: 'invalid_token' }
  | {
      ok: false;
      reason: 'invalid_otp';
      /**
       * The account the token names: the wrong code's audit entry is about it (attributed, and
       * erased with the account's personal data).
       */
      userId: string;
    }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number }
  /**
   * The account's run of wrong codes is at MFA_MAX_CONSECUTIVE_FAILURES and the client holds no
   * device token of it: an authenticator-app code is refused (not looked at, or, when wrong codes
   * racing it reached the cap first, neither spent nor told apart); recovery codes are still checked.
   */
  | { ok: false; reason: 'locked' };

/**
 * Where a second-factor attempt came from: the client facts of the `mfa_locked` audit entry it
 * writes when it is the wrong code that brings the account's run to the cap.
 */
export type AttemptOrigin = Pick<AuditEntry, 'ip' | 'userAgent'>;

/** The stores a second-factor change runs on inside one transaction. */
export interface MfaTransactionStores {
  /**
   * The account's row lock, taken first (ARCHITECTURE.md, "Lock order"): a change that spends a
   * code and then writes the account's factors must not hold a factor's row while it waits for
   * the account's, which a deletion holds while its cascade waits for that factor.
   */
  users: Pick<UserStore, 'lockUser' | 'findUserById'>;
  mfa: MfaStore;
  passkeys: Pick<PasskeyStore, 'deletePasskeys' | 'countPasskeys'>;
  audit: Pick<AuditLog, 'record'>;
  /** The owner's notices (a factor added, removed, or its codes locked), committed with the change. */
  notices: NoticeWriter;
  /**
   * A re-authentication's session (`auth_time`), moved in the transaction that spends its code; the
   * other sessions a factor's removal ends.
   */
  sessions: Pick<SessionStore, 'recordAuthentication' | 'revokeUserSessions' | 'isSessionLive'>;
}

/** What {@link MfaService.reset} did. */
export interface MfaReset {
  /** True when the account had a second factor to remove. */
  removed: boolean;
  /** The account's sessions it ended. */
  endedSessions: number;
}

/** TOTP enrolment, recovery codes, and the second step of a login (issue 13). */
export interface MfaService {
  /** The account's second factors. */
  status(userId: string): Promise<MfaStatus>;
  /** True when logins to the account must present a second factor. */
  isEnrolled(userId: string): Promise<boolean>;
  /**
   * Starts (or restarts) TOTP enrolment: a new secret, stored sealed and pending until
   * {@link MfaService.confirmTotp}. Throws EMAIL_NOT_VERIFIED until the account's address is proved
   * (`requireProvenAddress`), MFA_ALREADY_ENABLED when a confirmed one exists, and
   * STEP_UP_REQUIRED unless session `sessionId` authenticated within STEP_UP_MAX_AGE (with a second
   * factor, when the account holds a passkey: `StepUpPolicy.requireFactorChangeAuthentication`).
   */
  startTotpEnrolment(
    user: Pick<UserRecord, 'id' | 'email' | 'emailVerified'>,
    sessionId: string,
  ): Promise<{ secret: string; uri: string }>;
  /**
   * Confirms enrolment with a first code (proving the app holds the secret) and returns 10 new
   * recovery codes, shown once. Throws EMAIL_NOT_VERIFIED (as {@link MfaService.startTotpEnrolment}:
   * a pending enrolment on an unproven address is never confirmed), MFA_ENROLMENT_NOT_STARTED,
   * INVALID_OTP or STEP_UP_REQUIRED.
   */
  confirmTotp(
    userId: string,
    sessionId: string,
    code: string,
    audit: Omit<AuditEntry, 'event'>,
  ): Promise<string[]>;
  /**
   * Checks a TOTP or recovery code presented by a signed-in session (`sessionId`), limited per
   * session, and runs `apply` (the change the code authorizes) in the transaction that spends it (a
   * recovery code used, a TOTP step recorded: no replay): an outage, or `apply` throwing, spends
   * nothing and is not counted as a wrong code. A wrong code also counts toward the account's
   * MFA_MAX_CONSECUTIVE_FAILURES; at that cap an authenticator-app code is refused unchecked
   * (`locked`; a recovery code is still checked, see matchFactor): a session is
   * no trusted device, since a stolen session must not guess on past the cap. `origin` goes into
   * the `mfa_locked` audit entry. @default origin: none
   */
  verifyForSession<T>(
    userId: string,
    sessionId: string,
    otp: string,
    apply: (stores: MfaTransactionStores, method: SecondFactorMethod) => Promise<T>,
    origin?: AttemptOrigin,
  ): Promise<SecondFactorCheck<T>>;
  /**
   * Removes the authenticator and recovery codes, and ends every other session of the account
   * (and, with its credentials version, its device tokens). Needs a current TOTP or recovery code (`otp`,
   * checked as {@link MfaService.verifyForSession}): a stolen password or access token alone must
   * not remove the second factor. Throws MFA_NOT_ENABLED, INVALID_OTP, TOO_MANY_LOGIN_ATTEMPTS,
   * SECOND_FACTOR_LOCKED.
   */
  disable(userId: string, sessionId: string, otp: string, audit: Omit<AuditEntry, 'event'>): Promise<void>;
  /**
   * Replaces the recovery codes with 10 new ones, shown once; needs a current code as
   * {@link MfaService.disable} does, and throws the same.
   */
  regenerateRecoveryCodes(
    userId: string,
    sessionId: string,
    otp: string,
    audit: Omit<AuditEntry, 'event'>,
  ): Promise<string[]>;
  /**
   * Removes every second factor of an account (authenticator, recovery codes and passkeys) on an
   * administrator's word (a lost phone), and ends every session of the account, even when there
   * was nothing to remove (a retry after a failure), all in one transaction under the account's
   * row lock, audited there. The run of wrong codes goes with the authenticator's row.
   */
  reset(userId: string, audit: Omit<AuditEntry, 'event'>): Promise<MfaReset>;
  /** An `mfa_token` for a login whose password was right, valid for `MFA_TOKEN_TTL`. */
  issueChallenge(challenge: Omit<MfaChallenge, 'nonce' | 'expiresAt'>): string;
  /**
   * The second step of a login: opens `mfaToken`, checks `otp` (a TOTP or recovery code) under the
   * per-token and per-account (or per-device) caps, then calls `start` with the proof, which must
   * start the session in a transaction that runs `proof.spend` first: the token, the code and the
   * session commit together. When `start` fails (the database, the process), nothing is spent: the
   * same token and code work again, and the try is not counted against the caps. A wrong code is
   * counted (outside any transaction, so it stays counted), also toward the account's
   * MFA_MAX_CONSECUTIVE_FAILURES: at that cap a client without a device token of the account has
   * its authenticator-app codes refused unchecked (`locked`; recovery codes are still checked), while a trusted device still tries within its own lane (a
   * lockout someone holding only the password could aim at the owner's devices is no lockout to
   * build, OWASP Authentication Cheat Sheet). `origin` goes into the `mfa_locked` audit entry.
   * @default origin: none
   */
  completeChallenge<T>(
    mfaToken: string,
    otp: string,
    flow: ChallengeFlow,
    start: (proof: SecondFactorProof) => Promise<T>,
    origin?: AttemptOrigin,
  ): Promise<ChallengeCompletion<T>>;
}

/** Limits of {@link createMfaService}. */
export interface MfaLimits {
  /** `MFA_TOKEN_TTL`, ms. */
  tokenTtlMs: number;
  /** Wrong codes per `mfa_token`. */
  perToken: number;
  /** Wrong codes per account from clients without a device token, per window. */
  perAccount: number;
  /** Wrong codes per trusted device, or per signed-in session, per window. */
  perDevice: number;
  /** `LOGIN_FAILURE_WINDOW`, ms. */
  windowMs: number;
  /**
   * `MFA_MAX_CONSECUTIVE_FAILURES`: wrong codes in a row per account, from any client, before
   * untrusted clients and sessions are refused (NIST SP 800-63B §5.2.2: at most 100).
   */
  consecutive: number;
}

/** Dependencies of {@link createMfaService}, wired in `createGatehouse`. */
export interface MfaServiceDeps {
  store: MfaStore;
  passkeys: Pick<PasskeyStore, 'countPasskeys'>;
  /** Runs `work` in one database transaction over stores bound to it. */
  transaction<T>(work: (stores: MfaTransactionStores) => Promise<T>): Promise<T>;
  users: Pick<UserStore, 'findUserById'>;
  counters: CounterStore;
  /** Single use of `mfa_token`s: a table, never the evictable counter store. */
  spent: Pick<SpentChallengeStore, 'claimChallenge' | 'isChallengeSpent'>;
  tokens: MfaTokens;
  deviceTokens: Pick<DeviceTokens, 'issue'>;
  secretKey: Uint8Array;
  /**
   * `SECRET_KEY_PREVIOUS` while rotating: secrets sealed under it still open (start-up re-seals
   * them under `secretKey`, {@link resealTotpSecrets}). @default undefined
   */
  previousSecretKey?: Uint8Array | undefined;
  /**
   * Step-up for enrolment. Turning the factor off or renewing recovery codes needs a current code
   * instead: a fresh proof of the strongest factor the account has, which is a step-up in itself.
   */
  stepUp: Pick<StepUpPolicy, 'requireFactorChangeAuthentication' | 'recheckFactorAddition'>;
  /** `JWT_ISSUER`: the issuer the authenticator app shows. */
  issuer: string;
  limits: MfaLimits;
  clock: () => number;
  /**
   * Mails the notices a change committed (issue 12: "users get a notice when … a second factor is
   * removed"; also added, and the codes locked by wrong ones: `second_factor_locked`).
   */
  notices: Pick<SecurityNotices, 'flush'>;
  /** The `second_factor_locked` notice when the database refuses to store it (see `reportLocked`). */
  mailer: Pick<Mailer, 'send'>;
  /** Tells every instance of the sessions a factor's removal ended. */
  bus: Pick<EventBus, 'publish'>;
}

// HKDF purpose label of its own (RFC 5869 §3.2): TOTP secrets never open as any other sealed value.
const TOTP_SECRET_PURPOSE = 'gatehouse totp-secret v1';

/** What a TOTP secret of `userId` is sealed against (AAD): a secret copied to another row never opens. */
const totpContext = (userId: string) => `totp:${userId}`;

/** How many secrets {@link resealTotpSecrets} reads at a time. */
const RESEAL_PAGE = 500;

/**
 * Re-seals under `secretKey` every TOTP secret still sealed under `previousSecretKey` (a
 * `SECRET_KEY` rotation), as start-up does for the signing keys: else every authenticator stopped
 * working once the secret changed, and again once `SECRET_KEY_PREVIOUS` was removed (operator
 * red-team 2026-12-04). Compare-and-set per row, so instances starting together write each row
 * once. Returns how many it re-sealed.
 */
export async function resealTotpSecrets(
  store: Pick<MfaStore, 'listSealedSecrets' | 'replaceSealedSecret'>,
  secretKey: Uint8Array,
  previousSecretKey: Uint8Array,
): Promise<number> {
  const current = createSealer(secretKey, TOTP_SECRET_PURPOSE);
  const previous = createSealer(previousSecretKey, TOTP_SECRET_PURPOSE);
  let resealed = 0;
  let after = '';
  for (;;) {
    const page = await store.listSealedSecrets(after, RESEAL_PAGE);
    for (const { userId, sealedSecret } of page) {
      if (current.open(sealedSecret, totpContext(userId)) !== undefined) continue;
      const secret = previous.open(sealedSecret, totpContext(userId));
      if (secret === undefined) continue;
      const next = current.seal(secret, totpContext(userId));
      if (await store.replaceSealedSecret(userId, sealedSecret, next)) resealed += 1;
    }
    const last = page.at(-1);
    if (last === undefined || page.length < RESEAL_PAGE) return resealed;
    after = last.userId;
  }
}

function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 22);
}

/** A counter an attempt is charged to, and its cap. */
interface Lane {
  key: string;
  max: number;
  windowMs: number;
}

/** A second factor matched by reads, to be spent in the session's transaction. */
type PendingFactor = { method: 'totp'; step: number } | { method: 'recovery_code'; hash: string };

/** What a login's second step ends with inside its attempt: the session started, or a refusal. */
type Started<T> =
  | { user: UserRecord; method: SecondFactorMethod; value: T }
  | { refused: 'invalid_token' | 'locked' };

/**
 * Thrown by {@link SecondFactorProof.spend} inside the session's transaction to roll it back when
 * another request spent the token or the code first; caught by `completeChallenge`, never beyond.
 */
/** Whether `otp` has an authenticator app's shape (six digits, spaces ignored), right or wrong. */
function isAppCode(otp: string): boolean {
  return looksLikeTotpCode(otp.replace(/\s/g, ''));
}

class SpendRefused extends Error {
  constructor(readonly reason: 'invalid_token' | 'invalid_otp') {
    super(`second factor already spent (${reason})`);
    this.name = 'SpendRefused';
  }
}

/** The issuer label an app shows: the host of a URL issuer, else the issuer itself. */
function issuerLabel(issuer: string): string {
  try {
    return new URL(issuer).host || issuer;
  } catch {
    return issuer;
  }
}

/** Creates the {@link MfaService}. */
export function createMfaService(deps: MfaServiceDeps): MfaService {
  const { store, counters, limits, clock } = deps;
  const sealer: TokenSealer = createSealer(deps.secretKey, TOTP_SECRET_PURPOSE);
  const previousSealer =
    deps.previousSecretKey === undefined
      ? undefined
      : createSealer(deps.previousSecretKey, TOTP_SECRET_PURPOSE);
  // Under the previous secret too while rotating: a row start-up has not re-sealed (an old
  // instance's enrolment during a rolling deploy) still opens, and is re-sealed under the current
  // secret there and then (compare-and-set; a failure leaves it for the next use or start-up), so
  // removing SECRET_KEY_PREVIOUS later does not strand it (review 2026-12-04).
  const openSecret = (userId: string, sealed: string) => {
    const context = totpContext(userId);
    const current = sealer.open(sealed, context);
    if (current !== undefined || previousSealer === undefined) return current;
    const old = previousSealer.open(sealed, context);
    if (old !== undefined) {
      void store.replaceSealedSecret(userId, sealed, sealer.seal(old, context)).catch(() => {});
    }
    return old;
  };

  /**
   * In a removal's transaction: tells the owner, so a factor removed by someone holding a stolen
   * session (or by an admin on a forged request) does not go unnoticed.
   */
  const noticeRemoved = (stores: MfaTransactionStores, userId: string) =>
    addAccountNotice(stores, userId, 'second_factor_removed', { when: new Date(clock()).toISOString() });

  /**
   * What `otp` would spend, found by reads alone (the spending happens in the session's
   * transaction, {@link SecondFactorProof.spend}): a TOTP step later than the last accepted one, or
   * a well-formed recovery code (whether it is unused is known only when it is spent). `locked`,
   * without a look at the code, for an authenticator-app code when the account's run of wrong codes
   * is at `cap` (NIST SP 800-63B §5.2.2; no cap: a trusted device); recovery codes, 80 random bits,
   * are matched at any count. `replayed` for a right code of a step at or before the last accepted
   * one: refused, counted in the lanes but not in the run. A deliberate exception to counting
   * every failure: such a code can never be accepted, it exists only for the ±1-step window after
   * an accepted code, and a random guess hits one with a chance of at most 3 in a million.
   */
  const matchFactor = async (
    userId: string,
    otp: string,
    cap: number | undefined,
  ): Promise<PendingFactor | 'locked' | 'replayed' | undefined> => {
    const code = otp.replace(/\s/g, '');
    // The authenticator's row holds the run: read for every code, recovery codes included.
    const totp = await store.findTotp(userId);
    if (looksLikeTotpCode(code)) {
      // At the cap an authenticator's code (6 digits, 20 bits) is refused unchecked. A recovery
      // code is still checked: 80 random bits (NIST SP 800-63B §5.1.2.2 asks for rate limiting
      // only below 64), so the run's cap protects nothing there, and it is the owner's way back
      // when a thief of the password ran the count up (red-team 2026-12-04 F1: a reset by mail
      // also ends the device tokens, so without it an owner with no passkey was locked out).
      const confirmed = totp !== undefined && totp.confirmedAt !== null;
      if (cap !== undefined && confirmed && totp.consecutiveFailures >= cap) return 'locked';
      if (totp === undefined || totp.confirmedAt === null) return undefined;
      const secret = openSecret(userId, totp.sealedSecret);
      if (secret === undefined) return undefined;
      const step = matchTotpStep(secret, code, clock());
      if (step === undefined) return undefined;
      // A replay refused early (acceptTotpStep's compare-and-set stays the authority): a right code
      // used before, not a guess, so the run of wrong codes is not charged (a client retrying
      // after a timeout, or ten requests racing with one code, must not lock its owner out).
      if (totp.lastStep !== null && step <= totp.lastStep) return 'replayed';
      return { method: 'totp', step };
    }
    const recovery = normalizeRecoveryCode(code);
    return recovery === undefined ? undefined : { method: 'recovery_code', hash: hashRecoveryCode(recovery) };
  };

  /**
   * Spends `factor` on `mfa` (a transaction's store) and ends the account's run of wrong codes
   * with it: a TOTP step only while the run is below `cap` (false when another request spent the
   * step first, or when wrong codes committed meanwhile brought the run to the cap: the statements
   * serialize on the authenticator's row, so a right code never slips past the cap in a race); a
   * recovery code at any count (false when it is unknown or used).
   */
  const spendFactor = async (
    mfa: SecondFactorStores['mfa'],
    userId: string,
    factor: PendingFactor,
    cap: number | undefined,
  ) => {
    // The TOTP step's statement ends the run itself. A recovery code ends it first, then is used:
    // the authenticator's row before the recovery codes, the order every second-factor
    // transaction takes (ARCHITECTURE.md); a code found used rolls the end of the run back with it.
    if (factor.method === 'totp') return mfa.acceptTotpStep(userId, factor.step, cap);
    // A recovery code is accepted at the cap too (see matchFactor), and ends the run.
    await mfa.endRunBeforeRecoveryCode(userId);
    return mfa.useRecoveryCode(userId, factor.hash, clock());
  };

  /**
   * Why a matched authenticator-app step was not spent: the run reached the cap while it waited
   * (`locked`), or another request spent the step first, a right code racing itself, which is no
   * guess and charges no run (`replayed`: the lanes still count it).
   */
  const refusedStep = async (userId: string, cap: number | undefined): Promise<'locked' | 'replayed'> => {
    const totp = await store.findTotp(userId);
    return cap !== undefined && totp !== undefined && totp.consecutiveFailures >= cap ? 'locked' : 'replayed';
  };

  const retryAfter = (resetAt: number) => Math.max(1, Math.ceil((resetAt - clock()) / 1000));

  /**
   * Charges one attempt to every lane before checking (an atomic increment, so concurrent tries
   * cannot slip past a cap between a read and a write), then gives it back when the code was
   * right: only failures count.
   */
  const attempt = async <T>(
    lanes: Lane[],
    check: () => Promise<T | undefined>,
  ): Promise<
    | { ok: true; value: T }
    | { ok: false; reason: 'invalid' }
    | { ok: false; reason: 'throttled'; retryAfterSeconds: number }
  > => {
    const windows = await Promise.all(lanes.map((lane) => counters.increment(lane.key, lane.windowMs)));
    const over = windows.filter((window, i) => window.count > (lanes[i]?.max ?? 0));
    if (over.length > 0) {
      // A refused try is not a failure: it leaves the counters where they were.
      await Promise.all(lanes.map((lane) => counters.decrement(lane.key)));
      return {
        ok: false,
        reason: 'throttled',
        retryAfterSeconds: retryAfter(Math.max(...over.map((w) => w.resetAt))),
      };
    }
    let value: T | undefined;
    try {
      value = await check();
    } catch (error) {
      // An outage is not a wrong code: the try is given back (the check's writes rolled back, so
      // it taught the caller nothing), and the error goes on to the adapter (503).
      await Promise.all(lanes.map((lane) => counters.decrement(lane.key))).catch(() => undefined);
      throw error;
    }
    if (value === undefined) return { ok: false, reason: 'invalid' };
    await Promise.all(lanes.map((lane) => counters.decrement(lane.key)));
    return { ok: true, value };
  };

  /**
   * Counts a wrong code in the account's run (NIST SP 800-63B §5.2.2, MFA_MAX_CONSECUTIVE_FAILURES),
   * a database row that neither expires nor depends on Redis. Only below `cap` (no cap: a trusted
   * device, counted but never refused): `locked` when wrong codes racing this one brought the run
   * to the cap first, so the client is told what it would have been told a moment later, and not
   * whether its code was right. Counted after the check, outside any transaction: a right code,
   * an outage, or a refusal that is not the code's fault (a token claimed first) counts nothing.
   * `reachedCap`: this code brought the run to the cap (one per run: the counts are handed out one
   * at a time on the row), so the owner is told once.
   */
  const countWrongCode = async (
    userId: string,
    cap: number | undefined,
  ): Promise<{ locked: boolean; reachedCap: boolean }> => {
    const charge = await store.chargeConsecutiveFailure(userId, cap);
    if (!charge.charged) return { locked: charge.locked, reachedCap: false };
    return { locked: false, reachedCap: charge.count === limits.consecutive };
  };

  /**
   * The wrong code that brought the account's run to the cap: the owner is mailed (whoever typed
   * the codes knows the password, which is what they should change) and it is audited, the notice
   * and the entry in one transaction. The count committed before this runs: a write failing here
   * answers 503, and a retry is refused as locked, which is what the client would learn anyway; the
   * owner is then mailed from memory, the one way left (a crash at that moment loses it).
   */
  const reportLocked = async (
    userId: string,
    via: ChallengeFlow | 'session',
    origin: AttemptOrigin | undefined,
  ) => {
    const values = { when: new Date(clock()).toISOString(), failures: String(limits.consecutive) };
    try {
      await deps.transaction(async (stores) => {
        await stores.audit.record({
          event: 'mfa_locked',
          targetId: userId,
          ...origin,
          details: { via, consecutive_failures: limits.consecutive },
        });
        await addAccountNotice(stores, userId, 'second_factor_locked', values);
      });
    } catch (error) {
      const user = await deps.users.findUserById(userId).catch(() => undefined);
      if (user !== undefined) deps.mailer.send('second_factor_locked', user.email, values);
      throw error;
    }
    deps.notices.flush();
  };

  const accountLane = (userId: string): Lane => ({
    key: `mfa:account:${digest(userId)}`,
    max: limits.perAccount,
    windowMs: limits.windowMs,
  });
  const deviceLane = (deviceKey: string): Lane => ({
    key: `mfa:device:${digest(deviceKey)}`,
    max: limits.perDevice,
    windowMs: limits.windowMs,
  });

  /**
   * The lane a login's second step is charged to. The account's cap is the one an attacker who
   * knows the password could exhaust; a client that has completed a login before (a valid device
   * token at the first step) is charged to its own counter instead, so the owner's devices are never
   * locked out by someone else's tries (OWASP device cookies, as for passwords). When the device's
   * own counter is spent, it counts as untrusted. `trusted`: charged to a device's own lane, and so
   * not refused at the account's MFA_MAX_CONSECUTIVE_FAILURES either.
   */
  const loginLane = async (challenge: MfaChallenge): Promise<{ lane: Lane; trusted: boolean }> => {
    if (challenge.deviceId !== undefined) {
      const lane = deviceLane(`login:${challenge.deviceId}`);
      const window = await counters.peek(lane.key);
      if (window === undefined || window.count < lane.max) return { lane, trusted: true };
    }
    return { lane: accountLane(challenge.userId), trusted: false };
  };

  const verifyForSession = async <T>(
    userId: string,
    sessionId: string,
    otp: string,
    apply: (stores: MfaTransactionStores, method: SecondFactorMethod) => Promise<T>,
    origin?: AttemptOrigin,
    // `update` when `apply` ends the account's sessions: the account's gate and row are then taken
    // exclusive first. Taken `key share` and raised after the code was spent, a sign-in holding
    // the gate shared and waiting for that code's row deadlocked with it (40P01).
    accountLock: UserLockMode = 'key share',
  ): Promise<SecondFactorCheck<T>> => {
    // A stolen access token alone must not turn MFA off by guessing codes: limited per session
    // (the signed-in client), never by the account's windowed lane, which others could aim at its
    // owner. The account's run of wrong codes caps sessions too, as untrusted: a session is what a
    // thief of one would guess with, and its owner is not stuck (a passkey re-authentication, or a
    // sign-in with a code from a device that signed in before, ends the run).
    const cap = limits.consecutive;
    let reachedCap = false;
    const result = await attempt([deviceLane(`session:${sessionId}`)], async () => {
      // A refusal at the cap is no try of the session's either: `attempt` gives its lane back.
      // A wrong recovery code at the cap is a wrong code (the lanes count it), not "locked":
      // recovery codes are still checked there (see matchFactor).
      const wrongCode = async (recovery = false) => {
        const counted = await countWrongCode(userId, cap);
        reachedCap = counted.reachedCap;
        return counted.locked && !recovery ? ({ locked: true } as const) : undefined;
      };
      const factor = await matchFactor(userId, otp, cap);
      if (factor === 'locked') return { locked: true } as const;
      if (factor === 'replayed') return undefined; // counted in the lane, not in the run
      // Not six digits: a mistyped recovery code, a wrong code even at the cap (see wrongCode).
      if (factor === undefined) return wrongCode(!isAppCode(otp));
      try {
        // Spent first, in the change's own transaction (single use: RFC 6238 §5.2 for TOTP, whose
        // compare-and-set also stops two requests racing with one code).
        return await deps.transaction(async (stores) => {
          // The account's row first: `apply` may write recovery codes (a foreign key to it).
          await stores.users.lockUser(userId, accountLock);
          await assertSessionLive(stores.sessions, sessionId, userId, clock());
          if (!(await spendFactor(stores.mfa, userId, factor, cap))) throw new SpendRefused('invalid_otp');
          return { method: factor.method, value: await apply(stores, factor.method) };
        });
      } catch (error) {
        if (!(error instanceof SpendRefused)) throw error;
        if (factor.method === 'recovery_code') return wrongCode(true);
        return (await refusedStep(userId, cap)) === 'locked' ? ({ locked: true } as const) : undefined;
      }
    });
    if (reachedCap) await reportLocked(userId, 'session', origin);
    if (!result.ok) return result;
    if ('locked' in result.value) return { ok: false, reason: 'locked' };
    return { ok: true, method: result.value.method, value: result.value.value };
  };

  /**
   * Runs `apply` in the transaction that spends `otp`, which must be a current second factor of the
   * account (see {@link MfaService.disable}); throws otherwise. `audit`'s client facts are those of
   * an `mfa_locked` entry.
   */
  const requireSecondFactor = async <T>(
    userId: string,
    sessionId: string,
    otp: string,
    audit: Omit<AuditEntry, 'event'>,
    apply: (stores: MfaTransactionStores) => Promise<T>,
    accountLock: UserLockMode = 'key share',
  ): Promise<T> => {
    const totp = await store.findTotp(userId);
    if (totp === undefined || totp.confirmedAt === null) {
      throw new GatehouseError('MFA_NOT_ENABLED', 'This account has no second factor.');
    }
    const origin = { ip: audit.ip, userAgent: audit.userAgent };
    return valueOrRefusal(await verifyForSession(userId, sessionId, otp, apply, origin, accountLock), 'code');
  };

  const newRecoveryCodes = () => {
    const codes = generateRecoveryCodes();
    return { codes, hashes: codes.map((code) => hashRecoveryCode(normalizeRecoveryCode(code) ?? code)) };
  };

  return {
    async status(userId) {
      const [totp, recoveryCodesLeft, passkeys] = await Promise.all([
        store.findTotp(userId),
        store.countRecoveryCodes(userId),
        deps.passkeys.countPasskeys(userId),
      ]);
      const state = totp === undefined ? 'off' : totp.confirmedAt === null ? 'pending' : 'on';
      return { totp: state, recoveryCodesLeft, passkeys };
    },

    async isEnrolled(userId) {
      const totp = await store.findTotp(userId);
      return totp !== undefined && totp.confirmedAt !== null;
    },

    async startTotpEnrolment(user, sessionId) {
      requireProvenAddress(user);
      await deps.stepUp.requireFactorChangeAuthentication(sessionId);
      const secret = generateTotpSecret();
      const stored = await store.putPendingTotp(user.id, sealer.seal(secret, totpContext(user.id)), clock());
      if (!stored) {
        throw new GatehouseError(
          'MFA_ALREADY_ENABLED',
          'An authenticator is already set up; turn it off first.',
        );
      }
      return { secret, uri: totpUri(secret, user.email, issuerLabel(deps.issuer)) };
    },

    async confirmTotp(userId, sessionId, code, audit) {
      // Checked again here, not only when the enrolment started: a pending secret has no expiry,
      // and one started on an unproven address before that check existed (red team 2026-12d I4)
      // must not become a factor the first proof of the address would then strip.
      const user = await deps.users.findUserById(userId);
      if (user === undefined) {
        throw new GatehouseError('MFA_ENROLMENT_NOT_STARTED', 'Start an authenticator enrolment first.');
      }
      requireProvenAddress(user);
      const checked = await deps.stepUp.requireFactorChangeAuthentication(sessionId);
      const totp = await store.findTotp(userId);
      if (totp === undefined || totp.confirmedAt !== null) {
        throw new GatehouseError('MFA_ENROLMENT_NOT_STARTED', 'Start an authenticator enrolment first.');
      }
      const secret = openSecret(userId, totp.sealedSecret);
      const step = secret === undefined ? undefined : matchTotpStep(secret, code.replace(/\s/g, ''), clock());
      if (step === undefined) {
        throw new GatehouseError('INVALID_OTP', 'The code is wrong or has expired.', {
          errors: [{ field: 'code', message: 'must be the current code of your authenticator app' }],
        });
      }
      const { codes, hashes } = newRecoveryCodes();
      const now = clock();
      // The authenticator, its recovery codes and the audit row commit together: an account never
      // has MFA on without recovery codes.
      const confirmed = await deps.transaction(async (stores) => {
        const { users, mfa, audit: log } = stores;
        // The account's row before the authenticator's (lock order): the codes' insert needs it.
        // `no key update`, as a passkey's insert takes it: the two additions wait for each other,
        // so the second sees the first's factor below.
        await users.lockUser(userId, 'no key update');
        await assertSessionLive(stores.sessions, sessionId, userId, now);
        // The authenticator is still pending here, so the account's second factor can only be a passkey.
        await deps.stepUp.recheckFactorAddition(
          checked,
          async () => (await stores.passkeys.countPasskeys(userId)) > 0,
        );
        if (!(await mfa.confirmTotp(userId, totp.sealedSecret, step, now))) return false;
        await mfa.replaceRecoveryCodes(userId, hashes, now);
        await log.record({ ...audit, event: 'mfa_enabled', details: { factor: 'totp' } });
        await addAccountNotice(stores, userId, 'second_factor_added', {
          when: new Date(now).toISOString(),
          factor: 'An authenticator app',
        });
        return true;
      });
      if (!confirmed) {
        throw new GatehouseError('MFA_ENROLMENT_NOT_STARTED', 'Start an authenticator enrolment first.');
      }
      deps.notices.flush();
      return codes;
    },

    verifyForSession,

    async disable(userId, sessionId, otp, audit) {
      const ended = await requireSecondFactor(
        userId,
        sessionId,
        otp,
        audit,
        async (stores) => {
          const deleted = await stores.mfa.deleteFactors(userId);
          if (!deleted) return undefined;
          await stores.audit.record({ ...audit, event: 'mfa_disabled', details: { factor: 'totp' } });
          await noticeRemoved(stores, userId);
          // The other sessions end with the factor, as with a passkey's removal (red-team 2026-12s
          // M1): the owner turning it off may be taking the account back from whoever signed in with
          // it. The account's gate and row are held exclusive already (`update` below: the lock order).
          return stores.sessions.revokeUserSessions(userId, clock(), sessionId);
        },
        'update',
      );
      if (ended === undefined) return;
      deps.notices.flush();
      await publishRevokedSessions(deps.bus, ended);
    },

    async reset(userId, audit) {
      const { removed, ended } = await deps.transaction(async (stores) => {
        // The account's row first, exclusive (the lock order of every factor change). Without it,
        // and with the sessions ended only after the commit, a session opened with the lost factor
        // kept a passkey of its own: one registered between the commit and the revocation, or (on
        // PostgreSQL) one inserted before the reset and committed after its DELETE had looked
        // (red-team 2026-12u F1). A registration in flight now either commits before the factors
        // are read, or waits and then finds its session ended.
        await stores.users.lockUser(userId, 'update');
        // The authenticator's row takes the account's run of wrong codes with it (migration
        // `029a`): a new authenticator starts with none, in this very transaction.
        const totp = await stores.mfa.deleteFactors(userId);
        const removedPasskeys = await stores.passkeys.deletePasskeys(userId);
        const deleted = totp || removedPasskeys > 0;
        if (deleted) {
          await stores.audit.record({
            ...audit,
            event: 'mfa_reset',
            details: { ...audit.details, passkeys: removedPasskeys },
          });
          await noticeRemoved(stores, userId);
        }
        return { removed: deleted, ended: await stores.sessions.revokeUserSessions(userId, clock()) };
      });
      if (removed) deps.notices.flush();
      await publishRevokedSessions(deps.bus, ended);
      return { removed, endedSessions: ended.length };
    },

    async regenerateRecoveryCodes(userId, sessionId, otp, audit) {
      const { codes, hashes } = newRecoveryCodes();
      const now = clock();
      await requireSecondFactor(userId, sessionId, otp, audit, async (stores) => {
        await stores.mfa.replaceRecoveryCodes(userId, hashes, now);
        await stores.audit.record({ ...audit, event: 'mfa_recovery_codes_regenerated' });
        // OWASP MFA, ASVS V2.5.5: whoever replaced them holds a lasting way past the authenticator
        // app, and the owner's own codes stopped working (red-team 2026-12s M2).
        await addAccountNotice(stores, userId, 'recovery_codes_replaced', {
          when: new Date(now).toISOString(),
        });
      });
      deps.notices.flush();
      return codes;
    },

    issueChallenge(challenge) {
      return deps.tokens.issue({ ...challenge, expiresAt: clock() + limits.tokenTtlMs }).token;
    },

    async completeChallenge<T>(
      mfaToken: string,
      otp: string,
      flow: ChallengeFlow,
      start: (proof: SecondFactorProof) => Promise<T>,
      origin?: AttemptOrigin,
    ): Promise<ChallengeCompletion<T>> {
      const challenge = deps.tokens.open(mfaToken, flow, clock());
      if (challenge === undefined) return { ok: false, reason: 'invalid_token' };
      // A cheap refusal before any other work; the claim in the session's transaction decides.
      if (await deps.spent.isChallengeSpent('mfa', challenge.nonce))
        return { ok: false, reason: 'invalid_token' };
      const tokenLane: Lane = {
        key: `mfa:token:${challenge.nonce}`,
        max: limits.perToken,
        windowMs: limits.tokenTtlMs,
      };
      // A token that has used up its tries is dead: the client starts again from the password.
      const tries = await counters.peek(tokenLane.key);
      if (tries !== undefined && tries.count >= tokenLane.max) return { ok: false, reason: 'invalid_token' };
      const { lane, trusted } = await loginLane(challenge);
      const { userId } = challenge;
      // A trusted device's codes are checked and counted at the cap too, never refused by it.
      const cap = trusted ? undefined : limits.consecutive;
      let reachedCap = false;
      const result = await attempt<Started<T>>([tokenLane, lane], async () => {
        // Refused at the cap: no try of the token's or the lane's either (`attempt` gives them back).
        // A wrong recovery code at the cap is a wrong code (the lanes count it), not "locked":
        // recovery codes are still checked there (see matchFactor).
        const wrongCode = async (recovery = false): Promise<Started<T> | undefined> => {
          const counted = await countWrongCode(userId, cap);
          reachedCap = counted.reachedCap;
          return counted.locked && !recovery ? { refused: 'locked' } : undefined;
        };
        // Before any code is looked at or counted: every session of the account was ended since
        // the password step (a reset or password change, "log out everywhere", a disable…), so
        // the first factor this token stands for may be the old password; it finishes nothing
        // (red-team 2026-12d I3), and its wrong codes count nothing either (red-team 2026-12-04:
        // a thief's token minted before the owner's reset went on running up the count). The
        // session's transaction checks again (`credentialsVersion`), for a change that commits
        // while this completion runs.
        const user = await deps.users.findUserById(userId);
        if (user === undefined || !user.isActive) return { refused: 'invalid_token' };
        if (user.credentialsVersion !== challenge.credentialsVersion) return { refused: 'invalid_token' };
        const factor = await matchFactor(userId, otp, cap);
        if (factor === 'locked') return { refused: 'locked' };
        if (factor === 'replayed') return undefined; // counted in the lanes, not in the run
        // Not six digits: a mistyped recovery code, a wrong code even at the cap (see wrongCode).
        if (factor === undefined) return wrongCode(!isAppCode(otp));
        const spend = async (stores: SecondFactorStores, audit: Omit<AuditEntry, 'event'>) => {
          // Single use: the first completion claims the nonce; a second (a replayed request with
          // another valid code) finds it claimed. A database row kept until the token expires: a
          // marker in the counter store could be evicted by a flood of other keys, or missed by
          // another instance while Redis is down. Claimed first, so a replay is told the token
          // is used (not that its code is wrong), and waits on the first one's row until it ends.
          if (!(await stores.spent.claimChallenge('mfa', challenge.nonce, challenge.expiresAt))) {
            throw new SpendRefused('invalid_token');
          }
          // RFC 6238 §5.2: a code is accepted once. The compare-and-set refuses a step at or
          // before the last accepted one (a used recovery code alike), so two requests racing
          // with one code cannot both pass; nor does a right code once wrong ones racing it
          // brought the run to the cap.
          if (!(await spendFactor(stores.mfa, userId, factor, cap))) throw new SpendRefused('invalid_otp');
          if (factor.method === 'recovery_code') {
            await stores.audit.record({ ...audit, event: 'mfa_recovery_code_used' });
            // OWASP MFA: the owner hears of a sign-in past the authenticator app (a found printout, a
            // phished code), with the count left, committed with the session (red-team 2026-12s M2).
            await stores.notices.add('recovery_code_used', user.email, {
              when: new Date(clock()).toISOString(),
              left: String(await stores.mfa.countRecoveryCodes(userId)),
            });
          }
        };
        try {
          const value = await start({ user, challenge, method: factor.method, spend });
          if (factor.method === 'recovery_code') deps.notices.flush();
          return { user, method: factor.method, value };
        } catch (error) {
          if (!(error instanceof SpendRefused)) throw error;
          // A token claimed first is not the code's fault (given back). A recovery code refused is
          // unknown or used: a wrong code. A right step another request spent first is no guess
          // (the lanes count it, the run does not), unless the run reached the cap meanwhile.
          if (error.reason !== 'invalid_otp') return { refused: 'invalid_token' };
          if (factor.method === 'recovery_code') return wrongCode(true);
          return (await refusedStep(userId, cap)) === 'locked' ? { refused: 'locked' } : undefined;
        }
      });
      if (reachedCap) await reportLocked(userId, flow, origin);
      if (!result.ok) {
        if (result.reason === 'throttled') {
          // The token's own cap ends the token; the account's (or device's) asks to wait.
          const own = await counters.peek(tokenLane.key);
          if (own !== undefined && own.count >= tokenLane.max) return { ok: false, reason: 'invalid_token' };
          return result;
        }
        return { ok: false, reason: 'invalid_otp', userId };
      }
      const started = result.value;
      if ('refused' in started) return { ok: false, reason: started.refused };
      return {
        ok: true,
        value: started.value,
        user: started.user,
        challenge,
        method: started.method,
        deviceToken: deps.deviceTokens.issue(started.user),
      };
    },
  };
}
