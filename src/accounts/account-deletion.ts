import type { AuditEntry } from '../audit/audit-log.js';
import { GatehouseError } from '../errors.js';
import type { GatehouseTransaction } from '../gatehouse-transaction.js';
import type { SecurityNotices } from '../mail/security-notices.js';
import type { ClientInfo } from '../sessions/session-manager.js';
import type { LifecycleStores } from '../storage/lifecycle-stores.js';
import type { UserRecord } from '../storage/user-store.js';
import type { AnnounceAccountChange } from './announce-account-change.js';
import type { Role } from './roles.js';
import { assertMayManageUser } from './user-admin-service.js';

/**
 * Called inside the transaction that deletes an account, before the row goes: an app ends what
 * the account owns (Dicery closes what it hosts) in the same unit of work, and publishes with
 * `tx.afterCommit`. Throwing aborts the deletion, whoever asked for it.
 */
export type AccountDeletingHook = (tx: GatehouseTransaction, userId: string) => Promise<void>;

/**
 * Called once a deletion has been judged allowed, before its transaction and outside any: an app
 * deletes there, in as many short transactions as it likes, what would otherwise make the
 * deletion's one transaction long (Dicery empties the rooms the account hosts, which can hold
 * millions of rows: inside the transaction that held SQLite's only connection, and PostgreSQL's
 * request, for the whole of it). It may only do what the deletion does anyway, and what it did
 * stands if the deletion then fails: after a failure (the database away) a retry finishes it; a
 * deletion refused under the locks after all (a racing change of roles, the other of the last two
 * super admins deleting themselves at the same moment, an `onAccountDeleting` hook that refuses)
 * leaves the account with that work done. An app whose own hook may refuse a deletion should
 * refuse in a preparing hook registered before the others. Throwing aborts the deletion.
 */
export type AccountDeletionPreparingHook = (userId: string) => Promise<void>;

/**
 * Who deletes the account: its owner (`DELETE /users/me`, after the step-up the caller checked),
 * or an administrator (`DELETE /users/{id}`), judged by the administration rules under the
 * deletion's locks, whose own IP and user agent go on the audit row.
 */
export type AccountDeleter = { by: 'self' } | { by: 'admin'; actorId: string; client: ClientInfo };

/**
 * The one way an account is deleted (red-team 2026-12f K1: the admin route used to delete the row
 * alone, skipping the apps' hooks and the audit erasure). Every path (self-service, administration)
 * goes through {@link AccountDeletion.deleteAccount}, so they give the same guarantees.
 */
export interface AccountDeletion {
  /**
   * Deletes `userId`'s account in one transaction: locks the parties and every active super admin,
   * re-reads them (an administrator must still be allowed to manage the account: FORBIDDEN), refuses
   * the last active super admin (LAST_SUPER_ADMIN), runs the apps' hooks, ends every session
   * (revocation list and `sessions_revoked` after commit), strips IPs and user agents from the
   * account's audit rows and failed-login tallies, deletes the row and writes `user_deleted`.
   * A hook or a write that fails rolls all of it back. Before that transaction, when any
   * {@link AccountDeletionPreparingHook} is registered, the same checks run once without the
   * locks and then those hooks, each committing its own work. After commit: the announcements
   * and the `account_deleted` mail to the address. Throws USER_NOT_FOUND (only to administrators and the
   * owner), FORBIDDEN, LAST_SUPER_ADMIN, or what a hook threw.
   */
  deleteAccount(userId: string, deleter: AccountDeleter): Promise<void>;
  /** Adds a hook run when an account is deleted; returns its removal. */
  onAccountDeleting(hook: AccountDeletingHook): () => void;
  /** Adds a hook run before a deletion's transaction, once it is judged allowed; returns its removal. */
  onAccountDeletionPreparing(hook: AccountDeletionPreparingHook): () => void;
}

/** Dependencies of {@link createAccountDeletion}, wired in `createGatehouse`. */
export interface AccountDeletionDeps {
  /**
   * Runs a unit of work: `tx` is what the apps' hooks get (`Gatehouse.transaction`'s), `stores`
   * are the core's stores over the same transaction.
   */
  transaction: <T>(work: (tx: GatehouseTransaction, stores: LifecycleStores) => Promise<T>) => Promise<T>;
  /** After commit: the revocation list, then `sessions_revoked` and `user_changed` on the bus. */
  announce: AnnounceAccountChange;
  /** Mails the `account_deleted` notice the deletion committed. */
  notices: Pick<SecurityNotices, 'flush'>;
  clock: () => number;
}

function notFound(): GatehouseError {
  return new GatehouseError('USER_NOT_FOUND', 'User not found.');
}

/** Creates the {@link AccountDeletion}. */
export function createAccountDeletion(deps: AccountDeletionDeps): AccountDeletion {
  const { clock } = deps;
  const hooks = new Set<AccountDeletingHook>();
  const preparers = new Set<AccountDeletionPreparingHook>();

  return {
    async deleteAccount(userId, deleter) {
      const actorId = deleter.by === 'admin' ? deleter.actorId : userId;
      if (preparers.size > 0) {
        // Judged here too, so a refused deletion (an administrator who may not, the last super
        // admin) never has an app empty anything; judged again below under the locks.
        await deps.transaction(async (_tx, stores) => judgeDeletion(stores, actorId, userId, deleter));
        for (const prepare of preparers) await prepare(userId);
      }
      const revoked = await deps.transaction(async (tx, stores) => {
        await stores.lockParties(actorId, userId);
        const target = await judgeDeletion(stores, actorId, userId, deleter);
        for (const hook of hooks) await hook(tx, userId);
        // Revoked, not only cascaded away with the row: the revocation list then stops the
        // account's JWTs on every instance at once, without waiting for a user-cache eviction.
        const ended = await stores.sessions.revokeUserSessions(userId, clock());
        await stores.auditRetention.forgetPersonalData(userId);
        if (!(await stores.users.deleteUser(userId))) throw notFound();
        await tx.audit.record(deletionEntry(userId, target.role, deleter));
        // Also when an administrator deleted it: the owner learns what happened to their account
        // (and can object, if they did not ask for it). Stored with the deletion, so the notice
        // outlives the account's row and a crash right after the commit.
        await stores.notices.add('account_deleted', target.email, { when: new Date(clock()).toISOString() });
        return ended;
      });
      deps.notices.flush();
      await deps.announce(userId, revoked);
    },

    onAccountDeleting(hook) {
      hooks.add(hook);
      return () => hooks.delete(hook);
    },

    onAccountDeletionPreparing(hook) {
      preparers.add(hook);
      return () => preparers.delete(hook);
    },
  };
}

/**
 * Whether `actorId` may delete `userId` now, as `stores` read it: returns the account, or throws
 * FORBIDDEN, USER_NOT_FOUND or LAST_SUPER_ADMIN.
 */
async function judgeDeletion(
  stores: LifecycleStores,
  actorId: string,
  userId: string,
  deleter: AccountDeleter,
): Promise<UserRecord> {
  const target = await stores.users.findUserById(userId);
  if (deleter.by === 'admin') {
    // The actor as stored now (under the lock, in the deletion's transaction), not as the guard
    // saw them; judged before
    // "not found", so only an administrator learns whether an id exists.
    assertMayManageUser(await stores.users.findUserById(actorId), target);
    // One's own account only through self-service deletion, whose step-up asks for the
    // password (and second factor): else a stolen admin token deletes its owner's account
    // with no re-authentication at all (fixk1's report: the admin route skipped it).
    if (actorId === userId) {
      throw new GatehouseError(
        'FORBIDDEN',
        'Delete your own account at DELETE /users/me, which asks for your password.',
      );
    }
  }
  if (target === undefined) throw notFound();
  if (
    target.role === 'super_admin' &&
    target.isActive &&
    (await stores.users.countActiveSuperAdmins()) <= 1
  ) {
    throw new GatehouseError(
      'LAST_SUPER_ADMIN',
      'This is the last active super_admin: make another account super_admin first.',
    );
  }
  return target;
}

/**
 * The `user_deleted` row, written after the account's rows lost their IPs and user agents.
 *
 * Retention decision (red-team 2026-12f K1): the row keeps the account's id and role, never its
 * email address, whoever deleted it. The deletion answers an erasure request (GDPR art. 17) as
 * often as it removes an abusive account, and the address is personal data the log would keep for
 * `AUDIT_RETENTION` after the person asked for it to go; art. 5(1)(c) (data minimisation) asks
 * what the row needs, and accountability needs who acted, on which account, when: the
 * administrator's id, IP and user agent (their own data) and the deleted account's id, which
 * the account's earlier rows also carry. An operator who must prove a particular erasure keeps
 * the request (and its address) in their ticketing system, outside this log.
 */
function deletionEntry(userId: string, role: Role, deleter: AccountDeleter): AuditEntry {
  if (deleter.by === 'self') {
    return { event: 'user_deleted', actorId: userId, targetId: userId, details: { self: true } };
  }
  return {
    event: 'user_deleted',
    actorId: deleter.actorId,
    targetId: userId,
    ...deleter.client,
    details: { role },
  };
}
