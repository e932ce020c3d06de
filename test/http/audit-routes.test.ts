import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import {
  bearerFor,
  createAccount,
  PASSWORD,
  requestToken,
  type SignedIn,
  signIn,
} from '../support/accounts.js';

interface AuditView {
  id: number;
  event: string;
  actor_id: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown> | null;
  created_at: string;
}

describe('GET /audit', () => {
  let app: FastifyInstance;

  beforeEach(async () => {
    app = await buildTestServer();
  });

  afterEach(async () => {
    await app.close();
  });

  const audit = (who: SignedIn | undefined, query = '') =>
    app.inject({
      method: 'GET',
      url: `/audit${query}`,
      headers: { ...(who?.headers ?? {}), 'user-agent': 'audit-test' },
    });

  it('is for super_admins holding audit:read: 401 signed out, 403 for users and admins', async () => {
    expect((await audit(undefined)).json().code).toBe('UNAUTHENTICATED');
    for (const role of ['user', 'admin'] as const) {
      const response = await audit(await signIn(app, role));
      expect(response.statusCode).toBe(403);
      expect(response.json().code).toBe('FORBIDDEN');
    }
    const boss = await createAccount(app, 'super_admin');
    expect((await audit(await bearerFor(app, boss, 'me'))).json().code).toBe('INSUFFICIENT_SCOPE');
    expect((await audit(await bearerFor(app, boss, 'audit:read'))).statusCode).toBe(200);
  });

  it("checks the account's role now, not only the token's scope", async () => {
    // Red-team 2026-12h C2: every other admin route checks the live role; /audit checked only the
    // scope, so a super_admin demoted without its sessions ending (a missed revocation, an edit in
    // the database) kept reading the audit log until its token expired.
    const boss = await createAccount(app, 'super_admin');
    const token = await bearerFor(app, boss, 'audit:read');
    expect((await audit(token)).statusCode).toBe(200);
    const core = gatehouseCore(app.gatehouse);
    await core.users.updateUser(boss.id, { role: 'admin' }, Date.now());
    core.userCache.clear();
    for (const query of ['', '/login-failures']) {
      const demoted = await audit(token, query);
      expect(demoted.statusCode, query).toBe(403);
      expect(demoted.json().code).toBe('FORBIDDEN');
    }
  });

  it('records admin actions and logins with actor, target, IP, user agent and time, and no secrets', async () => {
    const boss = await signIn(app, 'super_admin');
    const bob = await signIn(app, 'user');
    const wrong = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'guessing-bot' },
      payload: `grant_type=password&username=${encodeURIComponent(bob.user.email)}&password=not-the-password`,
    });
    expect(wrong.json().error).toBe('invalid_grant');
    const change = (body: object) =>
      app.inject({
        method: 'PATCH',
        url: `/users/${bob.user.id}`,
        headers: { ...boss.headers, 'user-agent': 'admin-console' },
        payload: body,
      });
    expect((await change({ role: 'admin' })).statusCode).toBe(200);
    expect((await change({ is_active: false })).statusCode).toBe(200);
    expect((await change({ is_active: true })).statusCode).toBe(200);

    const response = await audit(boss);
    expect(response.statusCode).toBe(200);
    const page = response.json() as { items: AuditView[]; total: number; limit: number; offset: number };
    expect(page).toMatchObject({ limit: 20, offset: 0 });
    expect(page.items.map((item) => item.event)).toEqual([
      'user_enabled',
      'user_disabled',
      'role_changed',
      'login_succeeded',
      'login_succeeded',
    ]);
    expect(page.total).toBe(5);
    const [enabled, disabled, roleChanged] = page.items;
    expect(roleChanged).toEqual({
      id: expect.any(Number),
      event: 'role_changed',
      actor_id: boss.user.id,
      target_id: bob.user.id,
      ip: '127.0.0.1',
      user_agent: 'admin-console',
      details: { from: 'user', to: 'admin' },
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(disabled).toMatchObject({ actor_id: boss.user.id, target_id: bob.user.id, details: null });
    expect(enabled).toMatchObject({ actor_id: boss.user.id, target_id: bob.user.id });
    // Wrong passwords are tallied per account and hour rather than logged one row each (issue 8).
    const failuresOfBob = () =>
      gatehouseCore(app.gatehouse).auditRetention.listLoginFailures({ subjectId: bob.user.id, limit: 10 });
    expect(await failuresOfBob()).toEqual([
      expect.objectContaining({ subjectId: bob.user.id, failures: 1, lastIp: '127.0.0.1' }),
    ]);

    // Deleting the account erases the IPs and user agents of its rows (red-team 2026-12f K1); the
    // deletion's own row keeps the administrator's, and the account's id and role, not its address.
    const removed = await app.inject({
      method: 'DELETE',
      url: `/users/${bob.user.id}`,
      headers: { ...boss.headers, 'user-agent': 'admin-console' },
    });
    expect(removed.statusCode).toBe(204);
    const after = (await audit(boss)).json() as { items: AuditView[] };
    const [deleted, ...earlier] = after.items;
    expect(deleted).toMatchObject({
      event: 'user_deleted',
      actor_id: boss.user.id,
      target_id: bob.user.id,
      ip: '127.0.0.1',
      user_agent: 'admin-console',
      details: { role: 'admin' },
    });
    expect(JSON.stringify(after.items)).not.toContain(bob.user.email);
    const bobs = earlier.filter((item) => item.actor_id === bob.user.id || item.target_id === bob.user.id);
    expect(bobs.map((item) => item.event)).toEqual([
      'user_enabled',
      'user_disabled',
      'role_changed',
      'login_succeeded',
    ]);
    for (const item of bobs) expect([item.ip, item.user_agent]).toEqual([null, null]);
    expect(await failuresOfBob()).toEqual([
      expect.objectContaining({ subjectId: bob.user.id, failures: 1, lastIp: null }),
    ]);

    // OWASP Logging Cheat Sheet: never passwords, tokens or hashes.
    for (const secret of [PASSWORD, 'not-the-password', boss.token, bob.token, 'argon2']) {
      expect(response.body).not.toContain(secret);
    }
  });

  it('filters by event, actor, target and time, and pages', async () => {
    const boss = await signIn(app, 'super_admin');
    const bob = await createAccount(app, 'user');
    const eve = await createAccount(app, 'user');
    for (const target of [bob, eve]) {
      await app.inject({
        method: 'PATCH',
        url: `/users/${target.id}`,
        headers: boss.headers,
        payload: { role: 'admin' },
      });
    }
    // One more successful login, by bob.
    expect((await requestToken(app, bob.email)).statusCode).toBe(200);

    const roleChanges = (await audit(boss, '?event=role_changed')).json();
    expect(roleChanges.total).toBe(2);
    expect(roleChanges.items.map((item: AuditView) => item.target_id)).toEqual([eve.id, bob.id]);

    expect((await audit(boss, `?event=role_changed&target_id=${bob.id}`)).json().total).toBe(1);
    expect((await audit(boss, `?actor_id=${bob.id}`)).json().items).toMatchObject([
      { event: 'login_succeeded' },
    ]);

    const paged = (await audit(boss, '?event=role_changed&limit=1&offset=1')).json();
    expect(paged).toMatchObject({ total: 2, limit: 1, offset: 1, items: [{ target_id: bob.id }] });

    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await audit(boss, `?since=${encodeURIComponent(future)}`)).json().total).toBe(0);
    expect((await audit(boss, `?until=${encodeURIComponent(future)}&event=role_changed`)).json().total).toBe(
      2,
    );
  });

  it('rejects malformed filters by name', async () => {
    const boss = await signIn(app, 'super_admin');
    for (const [query, field] of [
      ['?event=Role%20Changed', 'event'],
      ['?since=yesterday', 'since'],
      ['?limit=0', 'limit'],
      ['?password=x', 'password'],
    ]) {
      const response = await audit(boss, query);
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field }] });
    }
  });

  it('documents its scope in OpenAPI', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.paths['/audit'].get.security).toEqual([
      { OAuth2PasswordBearer: ['audit:read'] },
      { sessionCookie: [] },
    ]);
  });
});
