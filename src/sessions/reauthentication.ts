import type { AccountService } from '../accounts/account-service.js';
import type { AuditEntry } from '../audit/audit-log.js';
import type { Caller } from '../audit/record-committed.js';
import { GatehouseError } from '../errors.js';
import { amrOf, type MfaService, type MfaTransactionStores, valueOrRefusal } from '../mfa/mfa-service.js';
import { PASSKEY_AMR, type PasskeyService } from '../mfa/passkeys.js';
import type { UserStore } from '../storage/user-store.js';

/** What the client proves at `POST /auth/reauthenticate`. */
export interface ReauthenticationRequest {
  /** The account's password. */
  currentPassword?: string | undefined;
  /** A TOTP or recovery code, for accounts with a second factor. */
  otp?: string | undefined;
}

/** Re-authentication of a signed-in session (step-up, RFC 9470). */
export interface Reauthentication {
  /**
   * Checks the factors the account requires (its password; and a TOTP or recovery code when it has
   * a second factor: every factor, as at login) and moves the session's `auth_time` to now.
   * Throws INVALID_CURRENT_PASSWORD, INVALID_OTP, TOO_MANY_LOGIN_ATTEMPTS, SECOND_FACTOR_LOCKED,
   * SESSION_NOT_FOUND.
   */
  reauthenticate(
    userId: string,
    sessionId: string,
    request: ReauthenticationRequest,
    caller: Caller,
  ): Promise<{ authTime: number; amr: string[] }>;
  /**
   * Re-authenticates with one of the account's passkeys instead (an assertion to the options of
   * `PasskeyService.authenticationOptions('reauthenticate', …)` for this very session): every
   * factor at once, whatever the account has (`amr` `PASSKEY_AMR`). Throws PASSKEY_INVALID,
   * SESSION_NOT_FOUND.
   */
  reauthenticateWithPasskey(
    userId: string,
    sessionId: string,
    passkey: { token: string; response: Parameters<PasskeyService['authenticate']>[2] },
    caller: Caller,
  ): Promise<{ authTime: number; amr: string[] }>;
}

/** Dependencies of {@link createReauthentication}. */
export interface ReauthenticationDeps {
  accounts: Pick<AccountService, 'verifyCurrentPassword'>;
  mfa: Pick<MfaService, 'isEnrolled' | 'verifyForSession'>;
  users: Pick<UserStore, 'findUserById'>;
  /**
   * Runs `work` in one database transaction over stores bound to it: a re-authentication's new
   * `auth_time` and its audit entry commit together or not at all.
   */
  transaction<T>(work: (stores: Pick<MfaTransactionStores, 'sessions' | 'audit'>) => Promise<T>): Promise<T>;
  /** For {@link Reauthentication.reauthenticateWithPasskey}. @default none: it always refuses */
  passkeys?: Pick<PasskeyService, 'authenticate'>;
  clock: () => number;
}

/** Creates the {@link Reauthentication} service. */
export function createReauthentication(deps: ReauthenticationDeps): Reauthentication {
  const entry = (userId: string, sessionId: string, amr: string[], caller: Caller): AuditEntry => ({
    event: 'reauthenticated',
    actorId: userId,
    targetId: userId,
    ...caller.client,
    details: { session: sessionId, amr: amr.join(' ') },
  });
  const ended = () => new GatehouseError('SESSION_NOT_FOUND', 'This session has ended; sign in again.');

  /**
   * Moves the session's `auth_time` to now with `amr`, and audits it, in one transaction: a
   * process dying after the commit can no longer leave a step-up unrecorded.
   */
  const record = (userId: string, sessionId: string, amr: string[], caller: Caller) =>
    deps.transaction((stores) => recordIn(stores, userId, sessionId, amr, caller));

  /** {@link record} inside the transaction that spends the second factor (`stores`). */
  const recordIn = async (
    stores: Pick<MfaTransactionStores, 'sessions' | 'audit'>,
    userId: string,
    sessionId: string,
    amr: string[],
    caller: Caller,
  ) => {
    const now = deps.clock();
    if (!(await stores.sessions.recordAuthentication(sessionId, amr, now))) throw ended();
    await stores.audit.record(entry(userId, sessionId, amr, caller));
    return { authTime: now, amr };
  };

  return {
    async reauthenticate(userId, sessionId, request, caller) {
      const user = await deps.users.findUserById(userId);
      if (user === undefined) throw new GatehouseError('USER_NOT_FOUND', 'User not found.');
      const enrolled = await deps.mfa.isEnrolled(userId);
      // The code is asked first when one is due, and checked only after the password: a wrong
      // password then spends no TOTP step.
      if (enrolled && request.otp === undefined) {
        throw new GatehouseError('INVALID_OTP', 'This account has a second factor: send otp too.', {
          errors: [{ field: 'otp', message: 'is required for this account' }],
        });
      }
      await deps.accounts.verifyCurrentPassword(user, request.currentPassword, sessionId);
      if (!enrolled) return record(userId, sessionId, ['pwd'], caller);
      // The code is spent in the transaction that moves auth_time (and audits it): an outage, or
      // a session ended meanwhile, spends no recovery code.
      const check = await deps.mfa.verifyForSession(
        userId,
        sessionId,
        request.otp ?? '',
        (stores, method) => recordIn(stores, userId, sessionId, amrOf(method), caller),
        caller.client,
      );
      return valueOrRefusal(check, 'otp');
    },

    async reauthenticateWithPasskey(userId, sessionId, passkey, caller) {
      const result =
        deps.passkeys === undefined
          ? ({ ok: false, reason: 'invalid' } as const)
          : await deps.passkeys.authenticate('reauthenticate', passkey.token, passkey.response, {
              userId,
              sessionId,
            });
      if (!result.ok) {
        throw new GatehouseError(
          'PASSKEY_INVALID',
          'The passkey could not be verified, or the ceremony expired: start again.',
        );
      }
      return record(userId, sessionId, [...PASSKEY_AMR], caller);
    },
  };
}
