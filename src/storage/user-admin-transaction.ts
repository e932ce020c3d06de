import type { NoticeWriter, SecurityNotices } from '../mail/security-notices.js';
import { createMfaStore, type MfaStore } from '../mfa/storage/mfa-store.js';
import { type AccountTokenStore, createAccountTokenStore } from './account-token-store.js';
import { type AuditRetentionStore, createAuditRetentionStore } from './audit-retention-store.js';
import { type AuditStore, createAuditStore } from './audit-store.js';
import { lockAccountsAndSuperAdmins } from './lock-user-row.js';
import type { Database } from './open-database.js';
import { createSessionStore, type SessionStore } from './session-store.js';
import { createUserStore, type UserStore } from './user-store.js';

/** The stores an account change works with, all bound to the change's one transaction. */
export interface UserAdminStores {
  /** Accounts, read and written in the transaction. */
  users: UserStore;
  /** Session revocations that commit with the change. */
  sessions: Pick<SessionStore, 'revokeUserSessions'>;
  /** Audit rows that commit with the change. */
  audit: AuditStore;
  /** The failed-login tallies (what an audit log built over this unit needs besides rows). */
  auditTallies: Pick<AuditRetentionStore, 'recordLoginFailure'>;
  /** The account's run of wrong second-factor codes, which a new password ends. */
  mfa: Pick<MfaStore, 'clearConsecutiveFailures'>;
  /** The account's mailed links, which a new password ends the reset links of. */
  tokens: Pick<AccountTokenStore, 'deleteUserTokens'>;
  /** Security notices that commit with the change (a password changed), mailed after it. */
  notices: NoticeWriter;
  /**
   * Locks the actor's and the target's rows and every active super admin's
   * ({@link lockAccountsAndSuperAdmins}), so a concurrent change of any of them waits for this
   * transaction and then reads its result.
   */
  lockParties(actorId: string, targetId: string): Promise<void>;
}

/** Runs `work` in one transaction over {@link UserAdminStores}: all of it commits or none. */
export type UserAdminTransaction = <T>(work: (stores: UserAdminStores) => Promise<T>) => Promise<T>;

/**
 * The unit of work of administrative account changes (`UserAdminService`): a change, the sessions
 * it ends and its audit rows commit together or not at all (`Database.transaction`).
 */
export function createUserAdminTransaction(
  database: Database,
  notices: Pick<SecurityNotices, 'writer'>,
): UserAdminTransaction {
  return (work) =>
    database.transaction((trx) =>
      work({
        users: createUserStore(trx),
        sessions: createSessionStore(trx),
        audit: createAuditStore(trx),
        auditTallies: createAuditRetentionStore(trx),
        mfa: createMfaStore(trx),
        tokens: createAccountTokenStore(trx),
        notices: notices.writer(trx),
        lockParties: (actorId, targetId) => lockAccountsAndSuperAdmins(trx, [actorId, targetId]),
      }),
    );
}
