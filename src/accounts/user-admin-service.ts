import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import { GatehouseError } from '../errors.js';
import type { EventBus } from '../events/event-bus.js';
import type { ClientInfo, SessionManager } from '../sessions/session-manager.js';
import type { Database } from '../storage/open-database.js';
import {
  createUserStore,
  type UserPatch,
  type UserQuery,
  type UserRecord,
  type UserStore,
} from '../storage/user-store.js';
import { normalizeFullName } from './account-service.js';
import { isRole, ROLES, type Role, roleAtLeast } from './roles.js';

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
  listUsers(actor: UserRecord, query: UserQuery): Promise<{ items: UserRecord[]; total: number }>;
  /** One account; throws FORBIDDEN or USER_NOT_FOUND. */
  getUser(actor: UserRecord, id: string): Promise<UserRecord>;
  /** Applies `change`; throws VALIDATION_FAILED, FORBIDDEN, USER_NOT_FOUND or LAST_SUPER_ADMIN. */
  updateUser(actor: UserRecord, id: string, change: UserChange, client: ClientInfo): Promise<UserRecord>;
  /** Deletes an account and (by cascade) its sessions; throws FORBIDDEN, USER_NOT_FOUND or LAST_SUPER_ADMIN. */
  deleteUser(actor: UserRecord, id: string, client: ClientInfo): Promise<void>;
}

/** Dependencies of {@link createUserAdminService}; a `Gatehouse` satisfies them. */
export interface UserAdminServiceDeps {
  database: Database;
  sessions: Pick<SessionManager, 'revokeUserSessions'>;
  /** `user_changed` on this bus evicts the user from every instance's cache, this one included. */
  bus: Pick<EventBus, 'publish'>;
  audit: Pick<AuditLog, 'record'>;
  clock: () => number;
}

function forbidden(message: string): GatehouseError {
  return new GatehouseError('FORBIDDEN', message);
}

function notFound(): GatehouseError {
  return new GatehouseError('USER_NOT_FOUND', 'User not found.');
}

function assertAdmin(actor: UserRecord | undefined): asserts actor is UserRecord {
  if (actor === undefined || !actor.isActive || !roleAtLeast(actor.role, 'admin')) {
    throw forbidden('Managing users needs the admin role.');
  }
}

/** `admin` and above: roles only a super admin may grant or take away. */
function isPrivileged(role: Role): boolean {
  return roleAtLeast(role, 'admin');
}

/** Super admins manage everyone; anyone else only accounts strictly below their own role. */
function assertMayManage(actor: UserRecord, target: UserRecord): void {
  if (actor.role === 'super_admin') return;
  if (ROLES.indexOf(actor.role) <= ROLES.indexOf(target.role)) {
    throw forbidden(`Only a super_admin may change a ${target.role} account.`);
  }
}

function isActiveSuperAdmin(user: Pick<UserRecord, 'role' | 'isActive'>): boolean {
  return user.role === 'super_admin' && user.isActive;
}

/** Creates the {@link UserAdminService}. */
export function createUserAdminService(deps: UserAdminServiceDeps): UserAdminService {
  const { database, sessions, bus, audit, clock } = deps;
  const users = createUserStore(database.db);

  /**
   * Runs an account change in a transaction that first reads the actor and the target fresh, so
   * the rules judge the state the write replaces, not a cached one.
   *
   * Races: on PostgreSQL the first statement locks (in id order, so two changes cannot deadlock
   * each other) the actor, the target and every active super admin; a concurrent change of any
   * of them waits for this one and then sees its result, so two super admins demoting each other
   * at once leave one of them in place. On SQLite, Kysely runs a transaction on the one
   * connection with nothing interleaved; a second process writing the same file makes this
   * transaction fail with SQLITE_BUSY rather than commit on stale reads.
   */
  const withParties = <T>(
    actorId: string,
    targetId: string,
    work: (store: UserStore, actor: UserRecord, target: UserRecord) => Promise<T>,
  ): Promise<T> =>
    database.transaction(async (trx) => {
      if (database.dialect === 'postgres') {
        await trx
          .selectFrom('users')
          .select('id')
          .where((eb) =>
            eb.or([
              eb('id', 'in', [actorId, targetId]),
              eb.and([eb('role', '=', 'super_admin'), eb('is_active', '=', 1)]),
            ]),
          )
          .orderBy('id')
          .forUpdate()
          .execute();
      }
      const store = createUserStore(trx);
      const actor = await store.findUserById(actorId);
      assertAdmin(actor);
      const target = await store.findUserById(targetId);
      if (target === undefined) throw notFound();
      assertMayManage(actor, target);
      return work(store, actor, target);
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

      const { before, after } = await withParties(actor.id, id, async (store, current, target) => {
        if (patch.role !== undefined && patch.role !== target.role) {
          if (current.role !== 'super_admin' && (isPrivileged(patch.role) || isPrivileged(target.role))) {
            throw forbidden('Only a super_admin may grant or remove the admin and super_admin roles.');
          }
        }
        const next = { role: patch.role ?? target.role, isActive: patch.isActive ?? target.isActive };
        if (isActiveSuperAdmin(target) && !isActiveSuperAdmin(next)) await assertNotLastSuperAdmin(store);
        const updated = await store.updateUser(id, patch, clock());
        if (updated === undefined) throw notFound();
        return { before: target, after: updated };
      });

      const roleChanged = before.role !== after.role;
      const disabled = before.isActive && !after.isActive;
      // DESIGN.md §3: a role change or a disable ends every token of the user on its next request.
      // Revoked first: a failing cache broadcast must never leave those sessions alive.
      if (roleChanged || disabled) await sessions.revokeUserSessions(id);
      await bus.publish({ type: 'user_changed', userId: id });

      const entry = { actorId: actor.id, targetId: id, ...client } satisfies Omit<AuditEntry, 'event'>;
      if (roleChanged) {
        await audit.record({
          ...entry,
          event: 'role_changed',
          details: { from: before.role, to: after.role },
        });
      }
      if (disabled) await audit.record({ ...entry, event: 'user_disabled' });
      if (!before.isActive && after.isActive) await audit.record({ ...entry, event: 'user_enabled' });
      return after;
    },

    async deleteUser(actor, id, client) {
      const deleted = await withParties(actor.id, id, async (store, _current, target) => {
        if (isActiveSuperAdmin(target)) await assertNotLastSuperAdmin(store);
        if (!(await store.deleteUser(id))) throw notFound();
        return target;
      });
      // The sessions went with the row (ON DELETE CASCADE); evicting the cached user makes every
      // token of it fail on its next request, as the guard then finds no account.
      await bus.publish({ type: 'user_changed', userId: id });
      // The row is gone, so the entry keeps who it was (an email is personal data, not a secret).
      await audit.record({
        event: 'user_deleted',
        actorId: actor.id,
        targetId: id,
        ...client,
        details: { email: deleted.email, role: deleted.role },
      });
    },
  };
}
