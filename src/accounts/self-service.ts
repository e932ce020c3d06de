import type { AuditLog } from '../audit/audit-log.js';
import { type Caller, recordCommitted, recordRefusal } from '../audit/record-committed.js';
import { GatehouseError } from '../errors.js';
import { amrOf, type MfaService } from '../mfa/mfa-service.js';
import { PASSKEY_AMR, type PasskeyAuthentication, type PasskeyService } from '../mfa/passkeys.js';
import type { SessionManager, SessionStartOptions } from '../sessions/session-manager.js';
import type { StepUpPolicy } from '../sessions/step-up.js';
import type { SessionRecord, SessionStore } from '../storage/session-store.js';
import type { UserRecord, UserStore } from '../storage/user-store.js';
import type { AccountService, ProfileChange, Registration } from './account-service.js';
import type { DeviceTokens } from './device-token.js';
import type { PasskeyAdmission, PasskeyThrottle } from './passkey-throttle.js';
import { effectiveRole, type Role } from './roles.js';
import { createScopePolicy, type ScopePolicy } from './scopes.js';

/** Input of {@link SelfService.signIn}. */
export interface BrowserSignInRequest {
  email: string;
  password: string;
  /** The device token this browser holds for the account, if any (OWASP device cookie). */
  deviceToken?: string | undefined;
  /** The session this browser is signed in with now, which a new sign-in ends (no fixation). */
  previousSessionId?: string | undefined;
}

/**
 * Outcome of {@link SelfService.signIn}. `throttled`: too many failed logins for this client and
 * account, IP or server; `busy`: too many checks of this account at once. Both say when to retry.
 */
export type BrowserSignIn =
  | {
      ok: true;
      user: UserRecord;
      /** The new cookie session. */
      session: SessionRecord;
      /** Its cookie token (shown once; only its hash is stored). */
      cookieToken: string;
      /** A fresh device token for this browser. */
      deviceToken: string;
    }
  | { ok: false; reason: 'invalid_credentials' | 'disabled' | 'unverified' }
  | { ok: false; reason: 'throttled' | 'busy'; retryAfterSeconds: number }
  /** The password was right; the account has a second factor: {@link SelfService.completeSignIn} next. */
  | { ok: false; reason: 'mfa_required'; mfaToken: string };

/** Input of {@link SelfService.completeSignIn}. */
export interface SecondFactorSignInRequest {
  /** The `mfa_token` {@link SelfService.signIn} answered with. */
  mfaToken: string;
  /** A TOTP code or an unused recovery code. */
  otp: string;
  /** The session this browser is signed in with now, which the new sign-in ends (no fixation). */
  previousSessionId?: string | undefined;
}

/** Outcome of {@link SelfService.completeSignIn}. */
export type SecondFactorSignIn =
  | Extract<BrowserSignIn, { ok: true }>
  /** `locked`: the account's run of wrong codes is at MFA_MAX_CONSECUTIVE_FAILURES (see `MfaService`). */
  | { ok: false; reason: 'invalid_token' | 'invalid_otp' | 'locked' }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number };

/** Input of {@link SelfService.signInWithPasskey}. */
export interface PasskeySignInRequest {
  /** The `passkey_token` of the sign-in options. */
  token: string;
  /** The authenticator's assertion (`navigator.credentials.get()`, as JSON). */
  response: Parameters<PasskeyService['authenticate']>[2];
  /** The session this browser is signed in with now, which the new sign-in ends (no fixation). */
  previousSessionId?: string | undefined;
  /** The browser's device cookie: its lane when the server-wide budget is spent (`passkey-throttle.ts`). */
  deviceToken?: string | undefined;
}

/**
 * Outcome of {@link SelfService.signInWithPasskey}. `throttled`: too many failed passkey sign-ins
 * (this address, this credential or server-wide), nothing verified.
 */
export type PasskeySignIn =
  | Extract<BrowserSignIn, { ok: true }>
  | { ok: false; reason: 'invalid' | 'disabled' | 'unverified' }
  | { ok: false; reason: 'throttled'; retryAfterSeconds: number };

/** A live session of the caller's account, marked when it is the one asking. */
export interface OwnSession extends SessionRecord {
  /** True for the session making the request. */
  current: boolean;
}

/**
 * What people do to their own account, signed in or signing up: register, browser sign-in and
 * sign-out, profile changes, and their own sessions. Each operation audits what it did: a change
 * to an existing account (a sign-in, a logout, ending sessions, a password change) in the change's
 * own transaction, so it never takes effect unrecorded; a refusal (nothing committed to go with)
 * and a sign-up after the fact ({@link recordCommitted}).
 */
export interface SelfService {
  /** Creates an account and audits it; throws EMAIL_TAKEN, WEAK_PASSWORD or VALIDATION_FAILED. */
  register(input: Registration, caller: Caller): Promise<UserRecord>;
  /**
   * Signs a browser in: checks the password (throttled as {@link AccountService.loginWithPassword}
   * does), ends the browser's previous session, and starts a cookie session with every scope the
   * role allows (a browser asks for none).
   */
  signIn(request: BrowserSignInRequest, caller: Caller): Promise<BrowserSignIn>;
  /**
   * The second step of a browser sign-in to an account with a second factor: checks the code
   * (capped per `mfa_token` and per account or trusted device, and refused unchecked at the
   * account's MFA_MAX_CONSECUTIVE_FAILURES unless the browser is a trusted device) and starts the
   * cookie session.
   */
  completeSignIn(request: SecondFactorSignInRequest, caller: Caller): Promise<SecondFactorSignIn>;
  /**
   * A passwordless browser sign-in with a passkey (discoverable credential, user verification
   * required): every factor in one step (`amr` {@link PASSKEY_AMR}), so no second-factor prompt.
   */
  signInWithPasskey(request: PasskeySignInRequest, caller: Caller): Promise<PasskeySignIn>;
  /** Ends the session `sessionId` of `userId` (logout). */
  signOut(userId: string, sessionId: string, caller: Caller): Promise<void>;
  /** Ends every session of `userId`; returns how many. */
  signOutEverywhere(userId: string, caller: Caller): Promise<number>;
  /**
   * Changes the user's name and/or password (the current one required, checked against the stored
   * hash, read fresh); a password change ends every other session. Throws USER_NOT_FOUND when the
   * account is gone, and what {@link AccountService.updateProfile} throws.
   */
  changeProfile(
    userId: string,
    change: ProfileChange,
    currentSessionId: string,
    caller: Caller,
  ): Promise<UserRecord>;
  /** The user's live sessions, `current` marking `currentSessionId`. */
  listSessions(userId: string, currentSessionId: string): Promise<OwnSession[]>;
  /**
   * A device token for the account as it stands now (its password and credentials version), or
   * undefined when it is gone or there are no device tokens. For the client that just ended every
   * session or changed a credential: that ended every device token of the account, its own
   * included, and a client without one is the first a stranger's failed logins lock out
   * (red-team 2026-12-06 RTL1).
   */
  deviceTokenFor(userId: string): Promise<string | undefined>;
  /** Whether `token` is a device token of the account as it stands now (see `DeviceTokens.verify`). */
  holdsDeviceToken(userId: string, token: string | undefined): Promise<boolean>;
  /**
   * Ends one of the user's sessions. Throws SESSION_NOT_FOUND for a missing, already ended or
   * someone else's session, alike, so the answer reveals nothing about other accounts.
   */
  endSession(userId: string, sessionId: string, caller: Caller): Promise<void>;
}

/** Dependencies of {@link createSelfService}, wired in `createGatehouse`. */
export interface SelfServiceDeps {
  /** Issues device tokens ({@link SelfService.deviceTokenFor}); absent in unit tests. */
  deviceTokens?: Pick<DeviceTokens, 'issue' | 'verify'> | undefined;
  /** The server's scopes, its apps' included. @default createScopePolicy() (the core's alone) */
  scopes?: ScopePolicy;
  accounts: Pick<AccountService, 'register' | 'loginWithPassword' | 'updateProfile'>;
  sessions: Pick<
    SessionManager,
    'startCookieSession' | 'revokeSessions' | 'revokeUserSessions' | 'listSessions'
  >;
  /** Fresh reads of the account (the password hash is never taken from a request's context). */
  users: Pick<UserStore, 'findUserById'>;
  sessionStore: Pick<SessionStore, 'findSession'>;
  mfa: Pick<MfaService, 'isEnrolled' | 'issueChallenge' | 'completeChallenge'>;
  /** Passwordless sign-in. @default none: signInWithPasskey answers `invalid` */
  passkeys?: Pick<PasskeyService, 'authenticate'>;
  /** The budget of failed passkey sign-ins (red-team 2026-12e J3). @default none: unlimited */
  passkeyThrottle?: PasskeyThrottle;
  stepUp: Pick<StepUpPolicy, 'requireRecentAuthentication' | 'requireSecondFactorAuthentication'>;
  /** REQUIRE_MFA_FOR_ROLES (see {@link effectiveRole}). @default [] */
  requireMfaForRoles?: readonly Role[];
  /** Read at each call (`audit.record`), so a replaced `record` is the one used. */
  audit: Pick<AuditLog, 'record'>;
}

/** Creates the {@link SelfService}. */
export function createSelfService(deps: SelfServiceDeps): SelfService {
  const { accounts, sessions, users, sessionStore, audit, mfa } = deps;
  const scopePolicy = deps.scopes ?? createScopePolicy();

  /**
   * Starts the cookie session of a completed sign-in, ending the browser's previous one. `user` is
   * the record the sign-in was decided on: if every session of the account is ended before this
   * one commits (a reset, "log out everywhere"…), it is not written (`credentialsVersion`,
   * red-team 2026-12d I3), unless `credentialsVersion` names the version to hold instead.
   */
  const startSession = (
    user: UserRecord,
    previous: string | undefined,
    caller: Caller,
    secondFactor: string | undefined,
    amr: string[],
    {
      passwordUpgrade,
      spend,
      credentialsVersion = user.credentialsVersion,
    }: Pick<SessionStartOptions, 'passwordUpgrade' | 'spend' | 'credentialsVersion'> = {},
  ) => {
    const { client } = caller;
    const role = effectiveRole(user.role, amr, deps.requireMfaForRoles ?? []);
    return sessions.startCookieSession(user.id, [...scopePolicy.forRole(role)], client, {
      ...(previous === undefined ? {} : { replaces: previous }),
      amr,
      passwordUpgrade,
      spend,
      credentialsVersion,
      audit: (started) => ({
        event: 'login_succeeded',
        actorId: user.id,
        targetId: user.id,
        ...client,
        details: {
          via: 'cookie',
          session: started.id,
          ...(secondFactor === undefined ? {} : { second_factor: secondFactor }),
        },
      }),
    });
  };

  return {
    async register(input, caller) {
      const user = await accounts.register(input);
      // After the insert, not with it: the account's row (one statement in AccountService.register,
      // shared with `create-user` and the import) records its own `created_at`, so a lost entry
      // loses no fact, and a sign-up that took effect must not answer 503 for it.
      await recordCommitted(audit, caller, {
        event: 'user_registered',
        actorId: user.id,
        targetId: user.id,
        ...caller.client,
      });
      return user;
    },

    async signIn(request, caller) {
      const { client } = caller;
      const login = await accounts.loginWithPassword(
        request.email,
        request.password,
        client.ip,
        request.deviceToken,
      );
      if (!login.ok) {
        if (login.reason === 'throttled' || login.reason === 'busy') return login;
        await recordRefusal(audit, caller, {
          event: 'login_failed',
          targetId: login.userId,
          ...client,
          details: { reason: login.reason, via: 'cookie' },
        });
        return { ok: false, reason: login.reason };
      }
      if (login.secondFactor) {
        // One factor proven: no session and no device token until the second (issue 13).
        const mfaToken = mfa.issueChallenge({
          userId: login.user.id,
          scopes: [],
          clientId: 'gatehouse',
          flow: 'cookie',
          deviceId: login.trustedDeviceId,
          credentialsVersion: login.user.credentialsVersion,
        });
        return { ok: false, reason: 'mfa_required', mfaToken };
      }
      // A login always mints a new session token and ends the one this browser had (no fixation).
      // Ending it, the new session and the audit entry are one write transaction (issue 10).
      const { session, cookieToken } = await startSession(
        login.user,
        request.previousSessionId,
        caller,
        undefined,
        ['pwd'],
        { passwordUpgrade: login.passwordUpgrade },
      );
      return { ok: true, user: login.user, session, cookieToken, deviceToken: login.deviceToken };
    },

    async completeSignIn(request, caller) {
      // Spending the code, claiming the mfa_token, ending the browser's previous session, the new
      // session and the audit rows are one transaction: an outage before the session is written
      // spends nothing, so the same token and code work on a retry.
      const result = await mfa.completeChallenge(
        request.mfaToken,
        request.otp,
        'cookie',
        (proof) =>
          startSession(proof.user, request.previousSessionId, caller, proof.method, amrOf(proof.method), {
            // The version the password step saw, not the one read at completion.
            credentialsVersion: proof.challenge.credentialsVersion,
            spend: (stores) =>
              proof.spend(stores, { actorId: proof.user.id, targetId: proof.user.id, ...caller.client }),
          }),
        caller.client,
      );
      if (!result.ok) {
        if (result.reason === 'invalid_otp') {
          // Outside the refused transaction: a wrong code stays on record.
          await recordRefusal(audit, caller, {
            event: 'mfa_failed',
            targetId: result.userId,
            ...caller.client,
            details: { via: 'cookie' },
          });
        }
        return result;
      }
      const { user } = result;
      const { session, cookieToken } = result.value;
      return { ok: true, user, session, cookieToken, deviceToken: result.deviceToken };
    },

    async signInWithPasskey(request, caller) {
      const { passkeyThrottle } = deps;
      // Decided before the signature is verified: that is the cost the budget bounds.
      const admission: PasskeyAdmission | undefined = await passkeyThrottle?.admit({
        deviceToken: request.deviceToken,
        ip: caller.client.ip,
      });
      if (admission !== undefined && !admission.allowed)
        return { ok: false, reason: 'throttled', retryAfterSeconds: admission.retryAfterSeconds };
      const result: PasskeyAuthentication =
        deps.passkeys === undefined
          ? { ok: false, reason: 'invalid' }
          : await deps.passkeys.authenticate(
              'login',
              request.token,
              request.response,
              undefined,
              admission?.ownerId,
            );
      if (admission !== undefined) {
        // Only a failed assertion counts; a disabled or unverified account's passkey verified.
        if (result.ok) await passkeyThrottle?.recordSuccess(admission.subject);
        else if (result.reason === 'invalid') await passkeyThrottle?.recordFailure(admission.subject);
      }
      if (!result.ok) {
        // An `invalid` answer is tallied per account and hour, as a wrong password is (audit-log.ts):
        // anyone can send one (red-team 2026-12e J3).
        await recordRefusal(audit, caller, {
          event: 'passkey_failed',
          ...(result.reason === 'invalid' && result.userId !== undefined ? { targetId: result.userId } : {}),
          ...caller.client,
          details: { via: 'cookie', reason: result.reason },
        });
        return result;
      }
      const { user } = result;
      const { session, cookieToken } = await startSession(
        user,
        request.previousSessionId,
        caller,
        'passkey',
        [...PASSKEY_AMR],
      );
      return { ok: true, user, session, cookieToken, deviceToken: result.deviceToken };
    },

    async signOut(userId, sessionId, caller) {
      // The entry commits with the revocation (DESIGN.md §5): a logout never takes effect
      // unrecorded, and a failing audit write answers 503 with the session still live.
      await sessions.revokeSessions([sessionId], () => ({
        event: 'logout',
        actorId: userId,
        targetId: userId,
        ...caller.client,
        details: { session: sessionId },
      }));
    },

    async holdsDeviceToken(userId, token) {
      if (token === undefined || deps.deviceTokens === undefined) return false;
      const account = await users.findUserById(userId);
      return account !== undefined && deps.deviceTokens.verify(token, account) !== undefined;
    },

    async deviceTokenFor(userId) {
      const account = await users.findUserById(userId);
      return account === undefined ? undefined : deps.deviceTokens?.issue(account);
    },

    async signOutEverywhere(userId, caller) {
      return sessions.revokeUserSessions(userId, undefined, (count) => ({
        event: 'logout_all',
        actorId: userId,
        targetId: userId,
        ...caller.client,
        details: { sessions: count },
      }));
    },

    async changeProfile(userId, change, currentSessionId, caller) {
      const user = await users.findUserById(userId);
      if (user === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
      // Step-up (issue 13): `current_password` proves a recent authentication only for an account
      // whose password is its only factor; with a second factor (an authenticator app or a passkey)
      // the session must have proved it within STEP_UP_MAX_AGE. Checked before any hash is spent.
      if (change.password !== undefined) {
        await deps.stepUp.requireSecondFactorAuthentication(currentSessionId);
      }
      // A new password and its `password_changed` entry commit together (in updateProfile's
      // transaction): a process dying after the commit cannot leave the change unrecorded.
      const updated = await accounts.updateProfile(user, change, currentSessionId, {
        event: 'password_changed',
        actorId: userId,
        targetId: userId,
        ...caller.client,
      });
      // Its `password_changed` notice is written in that transaction too, and mailed after it.
      return updated;
    },

    async listSessions(userId, currentSessionId) {
      return (await sessions.listSessions(userId)).map((session) => ({
        ...session,
        current: session.id === currentSessionId,
      }));
    },

    async endSession(userId, sessionId, caller) {
      const session = await sessionStore.findSession(sessionId);
      // Someone else's session answers exactly like a missing one.
      if (session === undefined || session.userId !== userId || session.revokedAt !== null) {
        throw new GatehouseError('SESSION_NOT_FOUND', 'No such session.');
      }
      await sessions.revokeSessions([sessionId], () => ({
        event: 'session_revoked',
        actorId: userId,
        targetId: userId,
        ...caller.client,
        details: { session: sessionId },
      }));
    },
  };
}
