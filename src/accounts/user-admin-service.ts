import { type AuditEntry, type AuditLog, createAuditLog } from '../audit/audit-log.js';
import { GatehouseError } from '../errors.js';
import type { EventBus, GatehouseEvent } from '../events/event-bus.js';
import type { RevocationList } from '../sessions/revocation-list.js';
import type { ClientInfo } from '../sessions/session-manager.js';
import type { RevokedSession } from '../storage/session-store.js';
import type { UserAdminTransaction } from '../storage/user-admin-transaction.js';
import type { UserPatch, UserQuery, UserRecord, UserStore } from '../storage/user-store.js';
import type { AccountDeletion } from './account-deletion.js';
import { normalizeFullName } from './account-service.js';
import { createAccountChangeAnnouncer } from './announce-account-change.js';
import type { LoginThrottle } from './login-throttle.js';
import { isRole, ROLES, type Role, roleAtLeast } from './roles.js';

/**
 * The administrator making a request, as the guard knows them: only who they are and their role
 * (never a password hash). Changes re-read the actor inside their transaction anyway.
 */
export type AdminActor = Pick<UserRecord, 'id' | 'role' | 'isActive'>;

/** What an administrator may change on an account; absent fields stay as they are. */
export interface UserChange {
  fullName?: string | null | undefined;
  role?: Role | undefined;
  isActive?: boolean | undefined;
}

/**
 * Administration of other people's accounts, with the rules of issue #4:
 *
 * - admins and super admins manage accounts; plain users manage none (FORBIDDEN);
 * - an admin manages only accounts below their own role, i.e. plain users: only a super admin
 *   grants or removes `admin` / `super_admin`, or touches an admin or a super admin;
 * - nobody demotes, disables or deletes the last active super admin (LAST_SUPER_ADMIN);
 * - a role change, a disable or a delete ends every session of that user at once.
 *
 * Admins may read every account (super admins included), so answering FORBIDDEN for a super
 * admin they may not change reveals nothing they could not list.
 */
export interface UserAdminService {
  /** A page of accounts; throws FORBIDDEN unless `actor` is an admin. */
  listUsers(actor: AdminActor, query: UserQuery): Promise<{ items: UserRecord[]; total: number }>;
  /** One account; throws FORBIDDEN or USER_NOT_FOUND. */
  getUser(actor: AdminActor, id: string): Promise<UserRecord>;
  /** Applies `change`; throws VALIDATION_FAILED, FORBIDDEN, USER_NOT_FOUND or LAST_SUPER_ADMIN. */
  updateUser(actor: AdminActor, id: string, change: UserChange, client: ClientInfo): Promise<UserRecord>;
  /**
   * Deletes an account through the one deletion routine ({@link AccountDeletion.deleteAccount}):
   * the apps' hooks run, its sessions are revoked, its audit rows lose their IPs and user agents,
   * and the `user_deleted` row keeps the account's id and role but not its address. Throws
   * FORBIDDEN, USER_NOT_FOUND, LAST_SUPER_ADMIN or what an app's hook threw.
   */
  deleteUser(actor: AdminActor, id: string, client: ClientInfo): Promise<void>;
}

/** Dependencies of {@link createUserAdminService}, wired in `createGatehouse`. */
export interface UserAdminServiceDeps {
  /** Reads outside a change (listing, one account). */
  users: Pick<UserStore, 'listUsers' | 'findUserById'>;
  /**
   * The change, its session revocations and its audit rows commit in one transaction of it
   * (`createUserAdminTransaction(database)`).
   */
  transaction: UserAdminTransaction;
  /**
   * The one deletion routine, shared with self-service deletion: it applies the same
   * administration rules ({@link assertMayManageUser}) under its own locks.
   */
  deletion: Pick<AccountDeletion, 'deleteAccount'>;
  /** This instance's revocation list: told about revoked sessions right after the commit. */
  revocations: Pick<RevocationList, 'add'>;
  /**
   * After commit: `sessions_revoked` and `user_changed` on this bus tell every instance (this
   * one included) to drop the sessions and evict the cached user.
   */
  bus: Pick<EventBus, 'publish'>;
  clock: () => number;
  /**
   * The login throttle: an account enabled again starts with a clean slate. Its holder's right
   * password was counted as a failure while it was disabled (it gains nothing then), so without
   * this the owner could stay locked out of new devices for `LOGIN_FAILURE_WINDOW` after an admin
   * let them back in. Optional for embedders that build the service alone.
   */
  throttle?: Pick<LoginThrottle, 'clearAccount'>;
  /**
   * Called when a broadcast after commit fails (e.g. Redis is down). The change has committed and
   * still succeeds: this instance already applied it, and the others catch up through their
   * periodic database reloads.
   * @default emits a process warning
   */
  onPublishError?: (error: unknown, event: GatehouseEvent) => void;
}

function warnPublishError(error: unknown, event: GatehouseEvent): void {
  process.emitWarning(`Committed account change not broadcast (${event.type})`, {
    code: 'GATEHOUSE_PUBLISH_FAILED',
    detail: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
}

function forbidden(message: string): GatehouseError {
  return new GatehouseError('FORBIDDEN', message);
}

function notFound(): GatehouseError {
  return new GatehouseError('USER_NOT_FOUND', 'User not found.');
}

function assertAdmin<T extends AdminActor>(actor: T | undefined): asserts actor is T {
  if (actor === undefined || !actor.isActive || !roleAtLeast(actor.role, 'admin')) {
    throw forbidden('Managing users needs the admin role.');
  }
}

/** `admin` and above: roles only a super admin may grant or take away. */
function isPrivileged(role: Role): boolean {
  return roleAtLeast(role, 'admin');
}

/** Super admins manage everyone; anyone else only accounts strictly below their own role. */
function assertMayManage(actor: AdminActor, target: UserRecord): void {
  if (actor.role === 'super_admin') return;
  if (ROLES.indexOf(actor.role) <= ROLES.indexOf(target.role)) {
    throw forbidden(
      `Only a super_admin may change ${target.role === 'admin' ? 'an' : 'a'} ${target.role} account.`,
    );
  }
}

/**
 * Throws FORBIDDEN unless `actor` is an active admin who may manage `target` (the rules above):
 * for actions on someone else's account outside this service (resend a verification, trigger a
 * reset, delete). With `target` undefined (no such account) only the admin check applies, so the
 * caller's USER_NOT_FOUND is told to admins alone.
 */
export function assertMayManageUser(actor: AdminActor | undefined, target: UserRecord | undefined): void {
  assertAdmin(actor);
  if (target !== undefined) assertMayManage(actor, target);
}

function isActiveSuperAdmin(user: Pick<UserRecord, 'role' | 'isActive'>): boolean {
  return user.role === 'super_admin' && user.isActive;
}

/** Creates the {@link UserAdminService}. */
export function createUserAdminService(deps: UserAdminServiceDeps): UserAdminService {
  const { users, transaction, revocations, bus, clock } = deps;
  const onPublishError = deps.onPublishError ?? warnPublishError;

  /** What a change's transaction hands to its work: stores bound to that transaction. */
  interface Unit {
    store: UserStore;
    /** Audit log writing in the same transaction, so the row commits with the change or not at all. */
    audit: Pick<AuditLog, 'record'>;
    /** Revokes the user's sessions in the same transaction. */
    revokeSessions(userId: string): Promise<RevokedSession[]>;
  }

  /** After commit: the revocation list, then the broadcasts (a failed one is reported, not thrown). */
  const announce = createAccountChangeAnnouncer({ revocations, bus, onPublishError });

  /**
   * Runs an account change in a transaction that first locks (PostgreSQL) and reads the actor and
   * the target fresh, so the rules judge the state the write replaces, not a cached one; see
   * `lockParties` (`src/storage/user-admin-transaction.ts`) for the races this closes.
   */
  const withParties = <T>(
    actorId: string,
    targetId: string,
    work: (unit: Unit, actor: UserRecord, target: UserRecord) => Promise<T>,
  ): Promise<T> =>
    transaction(async (stores) => {
      await stores.lockParties(actorId, targetId);
      const store = stores.users;
      const actor = await store.findUserById(actorId);
      assertAdmin(actor);
      const target = await store.findUserById(targetId);
      if (target === undefined) throw notFound();
      assertMayManage(actor, target);
      const unit: Unit = {
        store,
        audit: createAuditLog(stores.audit, clock, stores.auditTallies),
        revokeSessions: (userId) => stores.sessions.revokeUserSessions(userId, clock()),
      };
      return work(unit, actor, target);
    });

  /** Refuses a change that would leave no active super admin (checked under the locks above). */
  const assertNotLastSuperAdmin = async (store: UserStore) => {
    if ((await store.countActiveSuperAdmins()) <= 1) {
      throw new GatehouseError(
        'LAST_SUPER_ADMIN',
        'This is the last active super_admin: make another account super_admin first.',
      );
    }
  };

  return {
    async listUsers(actor, query) {
      assertAdmin(actor);
      return users.listUsers(query);
    },

    async getUser(actor, id) {
      assertAdmin(actor);
      const user = await users.findUserById(id);
      if (user === undefined) throw notFound();
      return user;
    },

    async updateUser(actor, id, change, client) {
      const patch: UserPatch = {};
      if (change.fullName !== undefined) patch.fullName = normalizeFullName(change.fullName);
      if (change.role !== undefined) {
        if (!isRole(change.role)) {
          throw new GatehouseError('VALIDATION_FAILED', 'role is invalid', {
            errors: [{ field: 'role', message: `must be one of ${ROLES.join(', ')}` }],
          });
        }
        patch.role = change.role;
      }
      if (change.isActive !== undefined) patch.isActive = change.isActive;

      const entry = { actorId: actor.id, targetId: id, ...client } satisfies Omit<AuditEntry, 'event'>;
      const { after, revoked, enabled } = await withParties(actor.id, id, async (unit, current, target) => {
        const { store, audit } = unit;
        if (patch.role !== undefined && patch.role !== target.role) {
          if (current.role !== 'super_admin' && (isPrivileged(patch.role) || isPrivileged(target.role))) {
            throw forbidden('Only a super_admin may grant or remove the admin and super_admin roles.');
          }
        }
        const next = { role: patch.role ?? target.role, isActive: patch.isActive ?? target.isActive };
        if (isActiveSuperAdmin(target) && !isActiveSuperAdmin(next)) await assertNotLastSuperAdmin(store);
        const updated = await store.updateUser(id, patch, clock());
        if (updated === undefined) throw notFound();

        const roleChanged = target.role !== updated.role;
        const disabled = target.isActive && !updated.isActive;
        // DESIGN.md §3: a role change or a disable ends every token of the user on its next
        // request. Revoked in the change's own transaction: either both happen or neither.
        const ended = roleChanged || disabled ? await unit.revokeSessions(id) : [];
        if (roleChanged) {
          await audit.record({
            ...entry,
            event: 'role_changed',
            details: { from: target.role, to: updated.role },
          });
        }
        if (disabled) await audit.record({ ...entry, event: 'user_disabled' });
        const enabled = !target.isActive && updated.isActive;
        if (enabled) await audit.record({ ...entry, event: 'user_enabled' });
        return { after: updated, revoked: ended, enabled };
      });
      await announce(id, revoked);
      // After the commit, and never its failure (Redis down): the change is made; the counters
      // lapse on their own within LOGIN_FAILURE_WINDOW.
      if (enabled) await deps.throttle?.clearAccount(after.emailKey).catch(() => {});
      return after;
    },

    async deleteUser(actor, id, client) {
      await deps.deletion.deleteAccount(id, { by: 'admin', actorId: actor.id, client });
    },
  };
}
