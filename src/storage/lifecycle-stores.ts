import type { Kysely } from 'kysely';
import { type AccountTokenStore, createAccountTokenStore } from './account-token-store.js';
import { type AuditRetentionStore, createAuditRetentionStore } from './audit-retention-store.js';
import type { Schema } from './schema.js';
import { createSessionStore, type SessionStore } from './session-store.js';
import { createUserStore, type UserStore } from './user-store.js';

/** The stores an account-lifecycle change works with, all bound to its one transaction. */
export interface LifecycleStores {
  users: UserStore;
  sessions: Pick<SessionStore, 'revokeUserSessions'>;
  tokens: AccountTokenStore;
  auditRetention: Pick<AuditRetentionStore, 'forgetPersonalData'>;
  /**
   * Locks `userId`'s row and every active super admin's (PostgreSQL `FOR UPDATE`, in id order), so
   * a concurrent demotion or deletion waits and then reads this change's result: two last super
   * admins deleting themselves at once cannot both succeed. SQLite runs a transaction on its one
   * connection with nothing interleaved.
   */
  lockAccount(userId: string): Promise<void>;
}

/** Builds {@link LifecycleStores} over a transaction (the core's side of `runCoreTransaction`). */
export function createLifecycleStores(trx: Kysely<Schema>, dialect: 'sqlite' | 'postgres'): LifecycleStores {
  return {
    users: createUserStore(trx),
    sessions: createSessionStore(trx),
    tokens: createAccountTokenStore(trx),
    auditRetention: createAuditRetentionStore(trx),
    async lockAccount(userId) {
      if (dialect !== 'postgres') return;
      await trx
        .selectFrom('users')
        .select('id')
        .where((eb) =>
          eb.or([eb('id', '=', userId), eb.and([eb('role', '=', 'super_admin'), eb('is_active', '=', 1)])]),
        )
        .orderBy('id')
        .forUpdate()
        .execute();
    },
  };
}
