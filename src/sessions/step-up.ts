import { GatehouseError } from '../errors.js';
import type { SessionRecord, SessionStore } from '../storage/session-store.js';

/**
 * Step-up for sensitive changes (OWASP ASVS 5 V6, issue 13): a change needs an authentication
 * within `STEP_UP_MAX_AGE`, whatever token the client holds. Other modules' routes (email change,
 * account deletion) call {@link StepUpPolicy.requireRecentAuthentication} before their change.
 */
export interface StepUpPolicy {
  /**
   * Resolves when the session `sessionId` authenticated (logged in or re-authenticated) within
   * `STEP_UP_MAX_AGE`; otherwise throws STEP_UP_REQUIRED, which the adapter answers 401 with
   * `WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age=…` (RFC 9470 §3).
   * Reads the session row (not the token's `auth_time`), so a re-authentication counts at once,
   * on every instance, without new tokens.
   */
  requireRecentAuthentication(sessionId: string): Promise<void>;
  /**
   * For a change to the account's factors (adding an authenticator app or a passkey, removing a
   * passkey): {@link requireRecentAuthentication}, and, when the account already holds a second
   * factor (a confirmed authenticator app or a passkey), a session whose `amr` proves one
   * (`mfa`). NIST SP 800-63B §6.1.2.1: binding an authenticator needs an authentication at the
   * level it will serve; a password alone must not add (or take away) what signs in with every
   * factor: a passkey planted by a password thief would then pass REQUIRE_MFA_FOR_ROLES, and an
   * authenticator app they set up would lock the owner out of password sign-in. Throws
   * STEP_UP_REQUIRED either way (the remedy is `POST /auth/reauthenticate`, with the second
   * factor: a code or a passkey, which records `mfa` on the session).
   */
  requireFactorChangeAuthentication(sessionId: string): Promise<FactorChangeAuthentication>;
  /**
   * {@link requireFactorChangeAuthentication}'s factor rule again, in the transaction that adds a
   * factor, once it holds the account's row lock (`FOR NO KEY UPDATE` on PostgreSQL, which two
   * such transactions cannot hold at once; SQLite runs one transaction at a time): throws
   * STEP_UP_REQUIRED when the session did not prove a second factor and the account now holds
   * one (`holdsSecondFactor`, read in that transaction). Without it, two additions racing from a
   * password-only session each passed the first check and each added a factor (red team
   * 2026-12t S2).
   */
  recheckFactorAddition(
    checked: FactorChangeAuthentication,
    holdsSecondFactor: () => Promise<boolean>,
  ): Promise<void>;
  /**
   * For a sensitive change that a password alone proves on an account without a second factor (a
   * new password): resolves at once for such an account; for one holding a second factor (an
   * authenticator app or a passkey), as {@link requireFactorChangeAuthentication}. On a
   * passkey-only account the password still signs in alone, so it must not also change the password
   * (or, through `createStepUp`, the address or the account's existence) that the passkey's owner
   * would need to take the account back.
   */
  requireSecondFactorAuthentication(sessionId: string): Promise<void>;
  /** `STEP_UP_MAX_AGE` in seconds. */
  readonly maxAgeSeconds: number;
}

/** What {@link StepUpPolicy.requireFactorChangeAuthentication} found, to check again in the write. */
export interface FactorChangeAuthentication {
  /** The session proved a second factor (its `amr` holds `mfa`): no factor the account holds stops the change. */
  readonly provedSecondFactor: boolean;
}

/** Dependencies of {@link createStepUpPolicy}. */
export interface StepUpPolicyDeps {
  sessions: Pick<SessionStore, 'findSession'>;
  maxAgeSeconds: number;
  clock: () => number;
  /**
   * Whether the account holds a second factor (a confirmed authenticator app or a passkey), for
   * {@link StepUpPolicy.requireFactorChangeAuthentication}. Required: a missing one would let
   * every password-only session change every factor.
   */
  hasSecondFactor: (userId: string) => Promise<boolean>;
}

/** Creates the {@link StepUpPolicy}. */
export function createStepUpPolicy(deps: StepUpPolicyDeps): StepUpPolicy {
  const { maxAgeSeconds, clock } = deps;
  const stepUpRequired = (message: string) =>
    new GatehouseError('STEP_UP_REQUIRED', message, {
      challenge: {
        scheme: 'Bearer',
        error: 'insufficient_user_authentication',
        description: 'A more recent authentication is required',
        maxAge: maxAgeSeconds,
      },
    });
  const factorRequired = () =>
    stepUpRequired(
      'This change needs a sign-in with your second factor. Re-authenticate at POST /auth/reauthenticate with a ' +
        'code from your authenticator app, or at POST /auth/reauthenticate/passkey with a passkey, then retry.',
    );
  /** `session` when it authenticated within `STEP_UP_MAX_AGE`; throws STEP_UP_REQUIRED otherwise. */
  const recent = (session: SessionRecord | undefined): SessionRecord => {
    if (session !== undefined && clock() - (session.authTime ?? session.createdAt) <= maxAgeSeconds * 1000)
      return session;
    throw stepUpRequired(
      'This change needs a recent sign-in. Re-authenticate at POST /auth/reauthenticate, then retry.',
    );
  };
  const recentSession = async (sessionId: string) => recent(await deps.sessions.findSession(sessionId));
  return {
    maxAgeSeconds,
    async requireRecentAuthentication(sessionId) {
      await recentSession(sessionId);
    },
    async requireFactorChangeAuthentication(sessionId) {
      const session = await recentSession(sessionId);
      if (session.amr?.includes('mfa') === true) return { provedSecondFactor: true };
      if (!(await deps.hasSecondFactor(session.userId))) return { provedSecondFactor: false };
      throw factorRequired();
    },
    async recheckFactorAddition(checked, holdsSecondFactor) {
      if (!checked.provedSecondFactor && (await holdsSecondFactor())) throw factorRequired();
    },
    async requireSecondFactorAuthentication(sessionId) {
      const session = await deps.sessions.findSession(sessionId);
      // A session that ended answers as a stale one: the guard in front refuses it anyway.
      if (session !== undefined && !(await deps.hasSecondFactor(session.userId))) return;
      if (recent(session).amr?.includes('mfa') !== true) throw factorRequired();
    },
  };
}
