import type { Kysely } from 'kysely';
import type { NoticeWriter, SecurityNotices } from '../mail/security-notices.js';
import { type AccountTokenStore, createAccountTokenStore } from './account-token-store.js';
import { type AuditRetentionStore, createAuditRetentionStore } from './audit-retention-store.js';
import { lockAccountsAndSuperAdmins } from './lock-user-row.js';
import type { Schema } from './schema.js';
import { createSessionStore, type SessionStore } from './session-store.js';
import { createUserStore, type UserStore } from './user-store.js';

/** What {@link LifecycleStores.forgetSignInMethods} removed. */
export interface ForgottenSignInMethods {
  /** A TOTP authenticator (confirmed or pending) and its recovery codes were removed. */
  totp: boolean;
  passkeys: number;
  /** Remembered OAuth consents (connected apps). */
  apps: number;
}

/** The stores an account-lifecycle change works with, all bound to its one transaction. */
export interface LifecycleStores {
  users: UserStore;
  sessions: Pick<SessionStore, 'revokeUserSessions' | 'findSession'>;
  tokens: AccountTokenStore;
  auditRetention: Pick<AuditRetentionStore, 'forgetPersonalData'>;
  /** Security notices that commit with the change, mailed after it (`SecurityNotices.flush`). */
  notices: NoticeWriter;
  /**
   * Removes every way into `userId`'s account but the password and the mailbox: TOTP and recovery
   * codes, passkeys, remembered OAuth consents and unused authorization codes (red-team 2026-12c
   * H3: for the first proof of an address, when whoever set them up may not be its owner).
   * Sessions are the caller's to revoke (they need broadcasting).
   */
  forgetSignInMethods(userId: string): Promise<ForgottenSignInMethods>;
  /**
   * Locks the rows of `actorId` (who asks: the account itself, or an administrator) and `targetId`
   * and every active super admin's ({@link lockAccountsAndSuperAdmins}), so a concurrent demotion
   * or deletion waits and then reads this change's result: two last super admins deleting
   * themselves, or each other, at once cannot both succeed.
   */
  lockParties(actorId: string, targetId: string): Promise<void>;
}

/** Builds {@link LifecycleStores} over a transaction (the core's side of `runCoreTransaction`). */
export function createLifecycleStores(
  trx: Kysely<Schema>,
  notices: Pick<SecurityNotices, 'writer'>,
): LifecycleStores {
  return {
    notices: notices.writer(trx),
    users: createUserStore(trx),
    sessions: createSessionStore(trx),
    tokens: createAccountTokenStore(trx),
    auditRetention: createAuditRetentionStore(trx),
    async forgetSignInMethods(userId) {
      // The authenticator's row before the recovery codes: the second-factor lock order.
      const totp = await trx.deleteFrom('mfa_totp').where('user_id', '=', userId).executeTakeFirst();
      await trx.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute();
      const passkeys = await trx.deleteFrom('passkeys').where('user_id', '=', userId).executeTakeFirst();
      const apps = await trx.deleteFrom('oauth_consents').where('user_id', '=', userId).executeTakeFirst();
      // A code approved before the proof would still start an app session for 60 s after it.
      await trx.deleteFrom('oauth_codes').where('user_id', '=', userId).execute();
      return {
        totp: Number(totp.numDeletedRows) > 0,
        passkeys: Number(passkeys.numDeletedRows),
        apps: Number(apps.numDeletedRows),
      };
    },
    lockParties: (actorId, targetId) => lockAccountsAndSuperAdmins(trx, [actorId, targetId]),
  };
}
