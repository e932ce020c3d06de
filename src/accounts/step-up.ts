import type { UserRecord } from '../storage/user-store.js';
import type { AccountService } from './account-service.js';

/**
 * What a signed-in user presents to make a sensitive change (email change, account deletion):
 * for now their current password. Issue 13 (MFA) extends this with a fresh second factor or a
 * recent authentication (`auth_time`), here and in {@link createStepUp} only.
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

/** Creates the {@link StepUp} check over the account service's current-password check. */
export function createStepUp(accounts: Pick<AccountService, 'confirmCurrentPassword'>): StepUp {
  return {
    confirm: (user, proof, sessionId) =>
      accounts.confirmCurrentPassword(user, proof.currentPassword, sessionId),
  };
}
