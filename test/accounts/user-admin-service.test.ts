import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Role } from '../../src/accounts/roles.js';
import { createUserAdminService, type UserAdminService } from '../../src/accounts/user-admin-service.js';
import type { ErrorCode } from '../../src/errors.js';
import { createGatehouseCore } from '../../src/gatehouse.js';
import type { GatehouseCore } from '../../src/gatehouse-core.js';
import { outboxDirectory, readOutbox } from '../../src/mail/outbox.js';
import { createUserAdminTransaction } from '../../src/storage/user-admin-transaction.js';
import type { UserRecord } from '../../src/storage/user-store.js';
import { createTestClock, testConfig } from '../../src/testing.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

const CLIENT = { ip: '203.0.113.7', userAgent: 'admin-console/1.0' };

/** Awaits `promise` and returns the GatehouseError code it rejected with. */
async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | 'resolved'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return (error as { code: ErrorCode }).code;
  }
}

describe.each(engines)('UserAdminService on $name', ({ name: engine }) => {
  let gatehouse: GatehouseCore;
  let drop: () => Promise<void>;
  let admin: UserAdminService;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(engine);
    drop = database.drop;
    gatehouse = await createGatehouseCore(testConfig({ databaseUrl: database.url }), {
      clock: createTestClock(),
    });
    admin = gatehouse.userAdmin;
  });

  afterAll(async () => {
    await gatehouse?.close();
    await drop?.();
  });

  // Every test starts with no accounts (sessions go by cascade) and an empty audit log.
  beforeEach(async () => {
    await gatehouse.database.db.deleteFrom('users').execute();
    await gatehouse.database.db.deleteFrom('audit_events').execute();
  });

  /** Inserts an account directly (no argon2: these tests never log in with a password). */
  async function account(role: Role, overrides: Partial<UserRecord> = {}): Promise<UserRecord> {
    const id = randomUUID();
    const now = gatehouse.clock();
    const user: UserRecord = {
      id,
      email: `${role}-${id.slice(0, 8)}@example.test`,
      emailKey: `${role}-${id.slice(0, 8)}@example.test`,
      fullName: null,
      passwordHash: 'not-a-hash',
      role,
      isActive: true,
      emailVerified: false,
      createdAt: now,
      updatedAt: now,
      credentialsVersion: 0,
      ...overrides,
    };
    expect(await gatehouse.users.insertUser(user)).toEqual({ ok: true });
    return user;
  }

  /** Starts a bearer session for `user` and returns its access token. */
  async function liveToken(user: UserRecord): Promise<string> {
    const tokens = await gatehouse.sessions.startBearerSession(user.id, ['me'], CLIENT);
    expect((await gatehouse.sessions.verifyAccessToken(tokens.accessToken)).ok).toBe(true);
    return tokens.accessToken;
  }

  async function auditEvents() {
    return (await gatehouse.audit.list({ limit: 100, offset: 0 })).items;
  }

  describe('reading', () => {
    it('lets admins list and read every account, super admins included', async () => {
      const boss = await account('super_admin');
      const ann = await account('admin');
      const bob = await account('user');
      const page = await admin.listUsers(ann, { limit: 10, offset: 0 });
      expect(page.total).toBe(3);
      expect(page.items.map((user) => user.id).sort()).toEqual([boss.id, ann.id, bob.id].sort());
      expect((await admin.getUser(ann, boss.id)).role).toBe('super_admin');
      expect(await codeOf(admin.getUser(ann, randomUUID()))).toBe('USER_NOT_FOUND');
    });

    it('refuses plain users whether or not the id exists', async () => {
      const bob = await account('user');
      const other = await account('user');
      expect(await codeOf(admin.listUsers(bob, { limit: 10, offset: 0 }))).toBe('FORBIDDEN');
      expect(await codeOf(admin.getUser(bob, other.id))).toBe('FORBIDDEN');
      expect(await codeOf(admin.getUser(bob, randomUUID()))).toBe('FORBIDDEN');
      expect(await codeOf(admin.updateUser(bob, other.id, { fullName: 'X' }, CLIENT))).toBe('FORBIDDEN');
      expect(await codeOf(admin.updateUser(bob, randomUUID(), { fullName: 'X' }, CLIENT))).toBe('FORBIDDEN');
      expect(await codeOf(admin.deleteUser(bob, other.id, CLIENT))).toBe('FORBIDDEN');
    });
  });

  describe('what admins may do', () => {
    it('renames, disables and re-enables a plain user; disabling ends their sessions', async () => {
      const ann = await account('admin');
      const bob = await account('user');
      const token = await liveToken(bob);

      const renamed = await admin.updateUser(ann, bob.id, { fullName: '  Bob  ' }, CLIENT);
      expect(renamed.fullName).toBe('Bob');
      expect((await gatehouse.sessions.verifyAccessToken(token)).ok).toBe(true);

      const disabled = await admin.updateUser(ann, bob.id, { isActive: false }, CLIENT);
      expect(disabled.isActive).toBe(false);
      expect(await gatehouse.sessions.verifyAccessToken(token)).toEqual({ ok: false, reason: 'revoked' });
      // The cached copy was evicted: the guard sees the change at once.
      expect((await gatehouse.userCache.get(bob.id))?.isActive).toBe(false);

      await admin.updateUser(ann, bob.id, { isActive: true }, CLIENT);
      const events = await auditEvents();
      expect(events.map((event) => event.event)).toEqual(['user_enabled', 'user_disabled']);
      expect(events[1]).toMatchObject({
        actorId: ann.id,
        targetId: bob.id,
        ip: CLIENT.ip,
        userAgent: CLIENT.userAgent,
      });
    });

    it('deletes a plain user, whose tokens are revoked at once', async () => {
      const ann = await account('admin');
      const bob = await account('user');
      const token = await liveToken(bob);
      await gatehouse.userCache.get(bob.id);
      await admin.deleteUser(ann, bob.id, CLIENT);
      expect(await gatehouse.users.findUserById(bob.id)).toBeUndefined();
      expect(await gatehouse.userCache.get(bob.id)).toBeUndefined();
      // Revoked before the row went (revocation list), not only cascaded away with it.
      expect(await gatehouse.sessions.verifyAccessToken(token)).toEqual({ ok: false, reason: 'revoked' });
      expect(await auditEvents()).toMatchObject([
        { event: 'user_deleted', actorId: ann.id, targetId: bob.id, details: { role: 'user' } },
      ]);
      expect(await codeOf(admin.deleteUser(ann, bob.id, CLIENT))).toBe('USER_NOT_FOUND');
    });

    it('deletes as self-deletion does (red-team 2026-12f K1): hooks in its transaction, IPs erased, no address kept, owner mailed', async () => {
      const ann = await account('admin');
      const bob = await account('user');
      const now = gatehouse.clock();
      await gatehouse.audit.record({
        event: 'login_succeeded',
        actorId: bob.id,
        targetId: bob.id,
        ip: '198.51.100.9',
        userAgent: 'bob-browser/1.0',
      });
      await gatehouse.audit.record({ event: 'user_enabled', actorId: ann.id, targetId: bob.id, ...CLIENT });
      await gatehouse.auditRetention.recordLoginFailure(bob.id, '198.51.100.9', now);
      const seen: string[] = [];
      const removeHook = gatehouse.accountDeletion.onAccountDeleting(async (tx, userId) => {
        seen.push(`deleting ${userId}`);
        // Written in the deletion's transaction, before the erasure: it loses its IP too.
        await tx.audit.record({ event: 'logout', actorId: userId, targetId: userId, ip: '198.51.100.10' });
        tx.afterCommit(() => void seen.push(`committed ${userId}`));
      });
      try {
        await admin.deleteUser(ann, bob.id, CLIENT);
      } finally {
        removeHook();
      }
      expect(seen).toEqual([`deleting ${bob.id}`, `committed ${bob.id}`]);
      const rows = await auditEvents();
      const deleted = rows.find((row) => row.event === 'user_deleted');
      // The administrator's own IP and user agent stay (accountability); the account keeps its id and role only.
      expect(deleted).toMatchObject({
        actorId: ann.id,
        targetId: bob.id,
        ip: CLIENT.ip,
        userAgent: CLIENT.userAgent,
      });
      expect(deleted?.details).toEqual({ role: 'user' });
      expect(JSON.stringify(rows)).not.toContain(bob.email);
      const before = rows.filter((row) => row !== deleted);
      expect(before.map((row) => row.event).sort()).toEqual(['login_succeeded', 'logout', 'user_enabled']);
      for (const row of before) expect([row.ip, row.userAgent]).toEqual([null, null]);
      expect(
        (await gatehouse.auditRetention.listLoginFailures({ subjectId: bob.id, limit: 10 })).map(
          (tally) => tally.lastIp,
        ),
      ).toEqual([null]);
      await gatehouse.lifecycle.idle();
      const mails = await readOutbox(outboxDirectory(gatehouse.config.dataDir), 1000);
      expect(mails.filter((mail) => mail.to === bob.email).map((mail) => mail.subject)).toEqual([
        'Your account was deleted',
      ]);
    });

    it('lets an app’s failing hook abort an admin’s deletion: account, sessions and audit stay', async () => {
      const boss = await account('super_admin');
      const bob = await account('user');
      const token = await liveToken(bob);
      await gatehouse.audit.record({ event: 'login_succeeded', actorId: bob.id, ip: '198.51.100.9' });
      const removeHook = gatehouse.accountDeletion.onAccountDeleting(async () => {
        throw new Error('app refuses');
      });
      try {
        await expect(admin.deleteUser(boss, bob.id, CLIENT)).rejects.toThrow('app refuses');
      } finally {
        removeHook();
      }
      expect(await gatehouse.users.findUserById(bob.id)).toEqual(bob);
      expect((await gatehouse.sessions.verifyAccessToken(token)).ok).toBe(true);
      expect((await auditEvents()).map((row) => [row.event, row.ip])).toEqual([
        ['login_succeeded', '198.51.100.9'],
      ]);
    });

    it('cannot make anyone admin or super_admin', async () => {
      const ann = await account('admin');
      const bob = await account('user');
      expect(await codeOf(admin.updateUser(ann, bob.id, { role: 'admin' }, CLIENT))).toBe('FORBIDDEN');
      expect(await codeOf(admin.updateUser(ann, bob.id, { role: 'super_admin' }, CLIENT))).toBe('FORBIDDEN');
      expect(await codeOf(admin.updateUser(ann, ann.id, { role: 'super_admin' }, CLIENT))).toBe('FORBIDDEN');
      expect((await gatehouse.users.findUserById(bob.id))?.role).toBe('user');
      // Setting the role a user already has changes nothing and is allowed.
      expect((await admin.updateUser(ann, bob.id, { role: 'user' }, CLIENT)).role).toBe('user');
    });

    it('cannot touch an admin or a super_admin in any way', async () => {
      const boss = await account('super_admin');
      const ann = await account('admin');
      const amy = await account('admin');
      for (const target of [boss, amy]) {
        expect(await codeOf(admin.updateUser(ann, target.id, { fullName: 'Renamed' }, CLIENT))).toBe(
          'FORBIDDEN',
        );
        expect(await codeOf(admin.updateUser(ann, target.id, { isActive: false }, CLIENT))).toBe('FORBIDDEN');
        expect(await codeOf(admin.updateUser(ann, target.id, { role: 'user' }, CLIENT))).toBe('FORBIDDEN');
        expect(await codeOf(admin.deleteUser(ann, target.id, CLIENT))).toBe('FORBIDDEN');
      }
      expect(await gatehouse.users.findUserById(boss.id)).toEqual(boss);
      expect(await auditEvents()).toEqual([]);
    });

    it('answers a missing id with USER_NOT_FOUND, after rules that need no target', async () => {
      const ann = await account('admin');
      expect(await codeOf(admin.updateUser(ann, randomUUID(), { fullName: 'X' }, CLIENT))).toBe(
        'USER_NOT_FOUND',
      );
      expect(await codeOf(admin.deleteUser(ann, randomUUID(), CLIENT))).toBe('USER_NOT_FOUND');
    });

    it('judges the actor as stored now, not as the caller last saw them', async () => {
      const ann = await account('admin');
      const bob = await account('user');
      await gatehouse.users.updateUser(ann.id, { role: 'user' }, gatehouse.clock());
      expect(await codeOf(admin.updateUser(ann, bob.id, { isActive: false }, CLIENT))).toBe('FORBIDDEN');
      await gatehouse.users.updateUser(ann.id, { role: 'admin', isActive: false }, gatehouse.clock());
      expect(await codeOf(admin.deleteUser(ann, bob.id, CLIENT))).toBe('FORBIDDEN');
    });
  });

  describe('unit of work: the change, its revocations and its audit rows commit together', () => {
    /** Makes every audit insert fail inside the database, as a full disk or a lost lock would. */
    async function withFailingAudit(run: () => Promise<void>): Promise<void> {
      const { db, dialect } = gatehouse.database;
      if (dialect === 'sqlite') {
        await sql`create trigger audit_fails before insert on audit_events begin select raise(abort, 'audit unavailable'); end`.execute(
          db,
        );
      } else {
        await sql`create function gh_audit_fails() returns trigger language plpgsql as $$ begin raise exception 'audit unavailable'; end $$`.execute(
          db,
        );
        await sql`create trigger audit_fails before insert on audit_events for each row execute function gh_audit_fails()`.execute(
          db,
        );
      }
      try {
        await run();
      } finally {
        if (dialect === 'sqlite') await sql`drop trigger audit_fails`.execute(db);
        else {
          await sql`drop trigger audit_fails on audit_events`.execute(db);
          await sql`drop function gh_audit_fails()`.execute(db);
        }
      }
    }

    it('changes nothing, and ends no session, when the audit row cannot be written', async () => {
      const boss = await account('super_admin');
      const bob = await account('user');
      const token = await liveToken(bob);
      await withFailingAudit(async () => {
        await expect(admin.updateUser(boss, bob.id, { isActive: false }, CLIENT)).rejects.toThrow(
          'audit unavailable',
        );
        await expect(admin.updateUser(boss, bob.id, { role: 'admin' }, CLIENT)).rejects.toThrow(
          'audit unavailable',
        );
        await expect(admin.deleteUser(boss, bob.id, CLIENT)).rejects.toThrow('audit unavailable');
      });
      expect(await gatehouse.users.findUserById(bob.id)).toMatchObject({ role: 'user', isActive: true });
      expect((await gatehouse.sessions.verifyAccessToken(token)).ok).toBe(true);
      expect((await gatehouse.sessions.listSessions(bob.id)).map((session) => session.revokedAt)).toEqual([
        null,
      ]);
      expect(await auditEvents()).toEqual([]);
    });

    it('answers a committed change normally when the broadcast fails, and applies it on this instance', async () => {
      const boss = await account('super_admin');
      const bob = await account('user');
      const token = await liveToken(bob);
      const failed: string[] = [];
      const offline = createUserAdminService({
        users: gatehouse.users,
        transaction: createUserAdminTransaction(gatehouse.database, gatehouse.securityNotices),
        deletion: gatehouse.accountDeletion,
        revocations: gatehouse.revocations,
        clock: gatehouse.clock,
        bus: { publish: () => Promise.reject(new Error('redis down')) },
        onPublishError: (_error, event) => failed.push(event.type),
      });
      expect((await offline.updateUser(boss, bob.id, { isActive: false }, CLIENT)).isActive).toBe(false);
      expect(failed).toEqual(['sessions_revoked', 'user_changed']);
      // This instance's revocation list heard of it without the bus.
      expect(await gatehouse.sessions.verifyAccessToken(token)).toEqual({ ok: false, reason: 'revoked' });
      expect((await auditEvents()).map((event) => event.event)).toEqual(['user_disabled']);
    });
  });

  describe('what super admins may do', () => {
    it('grants and removes admin; a role change ends the sessions and is audited', async () => {
      const boss = await account('super_admin');
      const bob = await account('user');
      const token = await liveToken(bob);
      expect((await admin.updateUser(boss, bob.id, { role: 'admin' }, CLIENT)).role).toBe('admin');
      expect(await gatehouse.sessions.verifyAccessToken(token)).toEqual({ ok: false, reason: 'revoked' });
      expect((await gatehouse.userCache.get(bob.id))?.role).toBe('admin');
      await admin.updateUser(boss, bob.id, { role: 'user' }, CLIENT);
      expect(await auditEvents()).toMatchObject([
        { event: 'role_changed', actorId: boss.id, targetId: bob.id, details: { from: 'admin', to: 'user' } },
        { event: 'role_changed', actorId: boss.id, targetId: bob.id, details: { from: 'user', to: 'admin' } },
      ]);
    });

    it('manages another super_admin while one stays active', async () => {
      const boss = await account('super_admin');
      const deputy = await account('super_admin');
      expect((await admin.updateUser(boss, deputy.id, { role: 'admin' }, CLIENT)).role).toBe('admin');
      expect((await admin.updateUser(boss, deputy.id, { role: 'super_admin' }, CLIENT)).role).toBe(
        'super_admin',
      );
      await admin.deleteUser(deputy, boss.id, CLIENT);
      expect(await gatehouse.users.countActiveSuperAdmins()).toBe(1);
    });

    it.each([
      ['demoted', { role: 'admin' as const }],
      ['disabled', { isActive: false }],
    ])('never lets the last active super_admin be %s', async (_what, change) => {
      const boss = await account('super_admin');
      // A disabled super_admin does not count: it cannot sign in to act.
      await account('super_admin', { isActive: false });
      const token = await liveToken(boss);
      expect(await codeOf(admin.updateUser(boss, boss.id, change, CLIENT))).toBe('LAST_SUPER_ADMIN');
      expect(await gatehouse.users.findUserById(boss.id)).toMatchObject({
        role: 'super_admin',
        isActive: true,
      });
      expect((await gatehouse.sessions.verifyAccessToken(token)).ok).toBe(true);
      expect(await auditEvents()).toEqual([]);
    });

    it('never lets the last active super_admin be deleted', async () => {
      const boss = await account('super_admin');
      // The only one who could delete them is themselves, and only through self-service deletion.
      expect(await codeOf(gatehouse.accountDeletion.deleteAccount(boss.id, { by: 'self' }))).toBe(
        'LAST_SUPER_ADMIN',
      );
      expect(await gatehouse.users.findUserById(boss.id)).toBeDefined();
    });

    it('refuses an administrator’s deletion of their own account (self-service asks for the password)', async () => {
      const boss = await account('super_admin');
      await account('super_admin');
      expect(await codeOf(admin.deleteUser(boss, boss.id, CLIENT))).toBe('FORBIDDEN');
      expect(await gatehouse.users.findUserById(boss.id)).toBeDefined();
    });

    it('lets a super_admin step down while another remains, ending their own sessions', async () => {
      const boss = await account('super_admin');
      await account('super_admin');
      const token = await liveToken(boss);
      expect((await admin.updateUser(boss, boss.id, { role: 'user' }, CLIENT)).role).toBe('user');
      expect(await gatehouse.sessions.verifyAccessToken(token)).toEqual({ ok: false, reason: 'revoked' });
    });
  });

  describe('races on the last super_admin', () => {
    it('leaves exactly one when two super_admins step down at once', async () => {
      const a = await account('super_admin');
      const b = await account('super_admin');
      const results = await Promise.all([
        codeOf(admin.updateUser(a, a.id, { role: 'admin' }, CLIENT)),
        codeOf(admin.updateUser(b, b.id, { isActive: false }, CLIENT)),
      ]);
      expect(results.sort()).toEqual(['LAST_SUPER_ADMIN', 'resolved']);
      expect(await gatehouse.users.countActiveSuperAdmins()).toBe(1);
    });

    it('leaves exactly one when two super_admins demote or delete each other at once', async () => {
      const a = await account('super_admin');
      const b = await account('super_admin');
      const results = await Promise.all([
        codeOf(admin.updateUser(a, b.id, { role: 'user' }, CLIENT)),
        codeOf(admin.deleteUser(b, a.id, CLIENT)),
      ]);
      // Whoever goes second is no longer a super_admin (or no longer exists) when judged.
      expect(results).toContain('resolved');
      expect(results.filter((result) => result !== 'resolved')).toHaveLength(1);
      expect(['FORBIDDEN', 'LAST_SUPER_ADMIN']).toContain(results.find((result) => result !== 'resolved'));
      expect(await gatehouse.users.countActiveSuperAdmins()).toBe(1);
    });
  });

  describe('validation', () => {
    it('names the bad field', async () => {
      const boss = await account('super_admin');
      const bob = await account('user');
      await expect(admin.updateUser(boss, bob.id, { fullName: 'a\u0000b' }, CLIENT)).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ field: 'full_name' }],
      });
      await expect(admin.updateUser(boss, bob.id, { role: 'owner' as Role }, CLIENT)).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ field: 'role' }],
      });
    });
  });
});
