import type { UserRecord } from '../storage/user-store.js';
import type { AccountService } from './account-service.js';

/**
 * What a signed-in user presents to make a sensitive change (email change, account deletion):
 * their current password; accounts with a second factor also need a recent authentication
 * (`auth_time`, see {@link createStepUp}).
 */
export interface StepUpProof {
  currentPassword?: string | undefined;
}

/** The re-authentication check for sensitive changes (see {@link StepUpProof}). */
export interface StepUp {
  /**
   * Resolves when `proof` re-authenticates `user` on `sessionId`; throws INVALID_CURRENT_PASSWORD,
   * TOO_MANY_LOGIN_ATTEMPTS or TOO_MANY_REQUESTS (guesses limited per session).
   */
  confirm(user: UserRecord, proof: StepUpProof, sessionId: string): Promise<void>;
}

/**
 * For accounts with a second factor: whether the account has one, and the recent-authentication
 * check (RFC 9470 step-up) that then replaces the password.
 */
export interface SecondFactorStepUp {
  isEnrolled(userId: string): Promise<boolean>;
  requireRecentAuthentication(sessionId: string): Promise<void>;
}

/**
 * Creates the {@link StepUp} check. `current_password` is always required. It is proof enough
 * only for accounts without a second factor (issue 13): with one, a stolen password must not
 * change the email or delete the account, so the session must also have authenticated with every
 * factor within `STEP_UP_MAX_AGE` (else `STEP_UP_REQUIRED`; the client re-authenticates at
 * `POST /auth/reauthenticate`), checked first, before any hash is spent. The password is checked
 * as well, as for a password change: recency alone let a wrong `current_password` through
 * (red-team 2026-12c H2), so a session left open would do.
 */
export function createStepUp(
  accounts: Pick<AccountService, 'verifyCurrentPassword'>,
  secondFactor?: SecondFactorStepUp,
): StepUp {
  return {
    async confirm(user, proof, sessionId) {
      if (secondFactor !== undefined && (await secondFactor.isEnrolled(user.id))) {
        await secondFactor.requireRecentAuthentication(sessionId);
      }
      await accounts.verifyCurrentPassword(user, proof.currentPassword, sessionId);
    },
  };
}
