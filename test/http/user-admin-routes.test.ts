import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { bearerFor, createAccount, requestToken, type SignedIn, signIn } from '../support/accounts.js';

describe('admin user routes', () => {
  let app: FastifyInstance;

  beforeEach(async () => {
    app = await buildTestServer();
  });

  afterEach(async () => {
    await app.close();
  });

  const get = (url: string, who?: SignedIn) =>
    app.inject({ method: 'GET', url, headers: who?.headers ?? {} });
  const patch = (id: string, body: unknown, who: SignedIn) =>
    app.inject({ method: 'PATCH', url: `/users/${id}`, headers: who.headers, payload: body as object });
  const remove = (id: string, who: SignedIn) =>
    app.inject({ method: 'DELETE', url: `/users/${id}`, headers: who.headers });

  describe('who may call them', () => {
    it('answers 401 without credentials', async () => {
      const response = await get('/users');
      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('UNAUTHENTICATED');
    });

    it('answers a plain user 403 on every route, the same for ids that exist and ids that do not', async () => {
      const bob = await signIn(app, 'user');
      const other = await createAccount(app, 'user');
      const missing = randomUUID();
      const responses = [
        await get('/users', bob),
        await get(`/users/${other.id}`, bob),
        await get(`/users/${missing}`, bob),
        await patch(other.id, { full_name: 'X' }, bob),
        await patch(missing, { full_name: 'X' }, bob),
        await remove(other.id, bob),
        await remove(missing, bob),
      ];
      for (const response of responses) {
        expect(response.statusCode).toBe(403);
        expect(response.json()).toMatchObject({ code: 'FORBIDDEN', detail: 'This needs the admin role.' });
      }
      expect(responses[1]?.body).toBe(responses[2]?.body);
      expect(responses[3]?.body).toBe(responses[4]?.body);
      expect(await gatehouseCore(app.gatehouse).users.findUserById(other.id)).toMatchObject({
        fullName: null,
      });
    });

    it('needs users:write to change and users:read to list, even for a super_admin', async () => {
      const boss = await createAccount(app, 'super_admin');
      const bob = await createAccount(app, 'user');
      const reader = await bearerFor(app, boss, 'users:read');
      expect((await get('/users', reader)).statusCode).toBe(200);
      const response = await patch(bob.id, { is_active: false }, reader);
      expect(response.statusCode).toBe(403);
      expect(response.json().code).toBe('INSUFFICIENT_SCOPE');
      expect(response.headers['www-authenticate']).toContain(
        'error="insufficient_scope", scope="users:write"',
      );
      const meOnly = await bearerFor(app, boss, 'me');
      expect((await get('/users', meOnly)).json().code).toBe('INSUFFICIENT_SCOPE');
    });

    it('refuses users:write at /token to a plain user (invalid_scope)', async () => {
      const bob = await createAccount(app, 'user');
      const response = await requestToken(app, bob.email, 'me users:write');
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_scope' });
    });
  });

  describe('GET /users', () => {
    it('pages and filters by email prefix, role and active flag', async () => {
      const ann = await signIn(app, 'admin');
      const alice = await createAccount(app, 'user', 'Alice.Smith@example.test');
      const alan = await createAccount(app, 'user', 'alan@example.test');
      await gatehouseCore(app.gatehouse).users.updateUser(alan.id, { isActive: false }, Date.now());

      const all = (await get('/users?limit=2', ann)).json();
      expect(all).toMatchObject({ total: 3, limit: 2, offset: 0 });
      expect(all.items).toHaveLength(2);
      expect(all.items[0]).toEqual({
        id: ann.user.id,
        email: ann.user.email,
        full_name: null,
        role: 'admin',
        is_active: true,
        email_verified: false,
        created_at: expect.any(String),
      });

      const byPrefix = (await get('/users?email_prefix=AL', ann)).json();
      expect(byPrefix.items.map((user: { id: string }) => user.id)).toEqual([alice.id, alan.id]);
      expect((await get('/users?email_prefix=al&is_active=false', ann)).json().items).toMatchObject([
        { id: alan.id },
      ]);
      expect((await get('/users?role=admin', ann)).json()).toMatchObject({
        total: 1,
        items: [{ id: ann.user.id }],
      });
      expect((await get('/users?email_prefix=al%25', ann)).json().total).toBe(0);
    });

    it('rejects unknown and invalid query parameters by name', async () => {
      const ann = await signIn(app, 'admin');
      for (const [url, field] of [
        ['/users?emailprefix=a', 'emailprefix'],
        ['/users?role=owner', 'role'],
        ['/users?limit=1000', 'limit'],
      ] as const) {
        const response = await get(url, ann);
        expect(response.statusCode).toBe(400);
        expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field }] });
      }
    });
  });

  describe('GET /users/{id}', () => {
    it('shows an account, never its password hash, and 404 for a missing id', async () => {
      const ann = await signIn(app, 'admin');
      const boss = await createAccount(app, 'super_admin');
      const response = await get(`/users/${boss.id}`, ann);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ id: boss.id, role: 'super_admin' });
      expect(response.body).not.toContain('argon2');
      const missing = await get(`/users/${randomUUID()}`, ann);
      expect(missing.statusCode).toBe(404);
      expect(missing.json().code).toBe('USER_NOT_FOUND');
    });
  });

  describe('PATCH /users/{id}', () => {
    it('lets an admin rename and disable a plain user; the disabled user’s token dies at once', async () => {
      const ann = await signIn(app, 'admin');
      const bob = await signIn(app, 'user');
      expect((await get('/users/me', bob)).statusCode).toBe(200);

      const renamed = await patch(bob.user.id, { full_name: 'Bob B.' }, ann);
      expect(renamed.json()).toMatchObject({ full_name: 'Bob B.', is_active: true });
      expect((await get('/users/me', bob)).statusCode).toBe(200);

      const disabled = await patch(bob.user.id, { is_active: false }, ann);
      expect(disabled.json()).toMatchObject({ is_active: false });
      const after = await get('/users/me', bob);
      expect(after.statusCode).toBe(401);
      expect(after.json().code).toBe('INVALID_TOKEN');
      expect((await requestToken(app, bob.user.email)).json()).toMatchObject({ error: 'invalid_grant' });
    });

    it('does not let an admin make anyone admin or touch a super_admin', async () => {
      const ann = await signIn(app, 'admin');
      const bob = await createAccount(app, 'user');
      const boss = await createAccount(app, 'super_admin');
      for (const [id, body] of [
        [bob.id, { role: 'admin' }],
        [bob.id, { role: 'super_admin' }],
        [ann.user.id, { role: 'super_admin' }],
        [boss.id, { full_name: 'Renamed' }],
        [boss.id, { is_active: false }],
      ] as const) {
        const response = await patch(id, body, ann);
        expect(response.statusCode).toBe(403);
        expect(response.json().code).toBe('FORBIDDEN');
      }
      const deleted = await remove(boss.id, ann);
      expect(deleted.statusCode).toBe(403);
      expect(deleted.json().code).toBe('FORBIDDEN');
      expect(await gatehouseCore(app.gatehouse).users.findUserById(bob.id)).toMatchObject({ role: 'user' });
      expect(await gatehouseCore(app.gatehouse).users.findUserById(boss.id)).toMatchObject({
        fullName: null,
        isActive: true,
      });
    });

    it('lets a super_admin demote an admin, whose live token then fails on the next request', async () => {
      const boss = await signIn(app, 'super_admin');
      const ann = await signIn(app, 'admin');
      expect((await get('/users', ann)).statusCode).toBe(200);

      const demoted = await patch(ann.user.id, { role: 'user' }, boss);
      expect(demoted.statusCode).toBe(200);
      expect(demoted.json().role).toBe('user');

      const next = await get('/users/me', ann);
      expect(next.statusCode).toBe(401);
      expect(next.json().code).toBe('INVALID_TOKEN');
      expect(next.headers['www-authenticate']).toContain('error="invalid_token"');
      // Signing in again gives a token of the new role only.
      const again = await bearerFor(app, ann.user);
      expect((await get('/users', again)).json().code).toBe('FORBIDDEN');
    });

    it('never demotes or disables the last active super_admin', async () => {
      const boss = await signIn(app, 'super_admin');
      for (const body of [{ role: 'admin' }, { is_active: false }]) {
        const response = await patch(boss.user.id, body, boss);
        expect(response.statusCode).toBe(409);
        expect(response.json().code).toBe('LAST_SUPER_ADMIN');
      }
      const deleted = await remove(boss.user.id, boss);
      expect(deleted.statusCode).toBe(409);
      expect(deleted.json().code).toBe('LAST_SUPER_ADMIN');
      expect((await get('/users/me', boss)).json().role).toBe('super_admin');
    });

    it('names the offending field', async () => {
      const boss = await signIn(app, 'super_admin');
      const bob = await createAccount(app, 'user');
      for (const [body, field] of [
        [{ password_hash: 'x' }, 'password_hash'],
        [{ role: 'owner' }, 'role'],
        [{ is_active: 'maybe' }, 'is_active'],
        [{ full_name: 'a'.repeat(401) }, 'full_name'],
        [{}, 'body'],
      ] as const) {
        const response = await patch(bob.id, body, boss);
        expect(response.statusCode).toBe(400);
        expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field }] });
      }
      const missing = await patch(randomUUID(), { full_name: 'X' }, boss);
      expect(missing.statusCode).toBe(404);
      expect(missing.json().code).toBe('USER_NOT_FOUND');
    });
  });

  describe('DELETE /users/{id}', () => {
    it('deletes an account and ends its sessions; a second delete is 404', async () => {
      const ann = await signIn(app, 'admin');
      const bob = await signIn(app, 'user');
      expect((await get('/users/me', bob)).statusCode).toBe(200);
      const response = await remove(bob.user.id, ann);
      expect(response.statusCode).toBe(204);
      expect((await get('/users/me', bob)).statusCode).toBe(401);
      expect((await get(`/users/${bob.user.id}`, ann)).json().code).toBe('USER_NOT_FOUND');
      expect((await remove(bob.user.id, ann)).json().code).toBe('USER_NOT_FOUND');
    });

    it('runs the apps’ account-deletion hooks, and a failing one aborts it (500, the account stays)', async () => {
      const boss = await signIn(app, 'super_admin');
      const bob = await signIn(app, 'user');
      const refuse = app.gatehouse.onAccountDeleting(async () => {
        throw new Error('app refuses');
      });
      try {
        const refused = await remove(bob.user.id, boss);
        expect(refused.statusCode).toBe(500);
        expect(refused.body).not.toContain('app refuses\n    at');
      } finally {
        refuse();
      }
      expect((await get('/users/me', bob)).statusCode).toBe(200);
      const hooked: string[] = [];
      const record = app.gatehouse.onAccountDeleting(async (_tx, userId) => void hooked.push(userId));
      try {
        expect((await remove(bob.user.id, boss)).statusCode).toBe(204);
      } finally {
        record();
      }
      expect(hooked).toEqual([bob.user.id]);
      expect((await get('/users/me', bob)).statusCode).toBe(401);
    });
  });

  it('documents each route’s security requirement and scopes in OpenAPI', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const security = (path: string, method: string) => doc.paths[path][method].security;
    expect(security('/users', 'get')).toEqual([
      { OAuth2PasswordBearer: ['users:read'] },
      { sessionCookie: [] },
    ]);
    expect(security('/users/{id}', 'get')).toEqual([
      { OAuth2PasswordBearer: ['users:read'] },
      { sessionCookie: [] },
    ]);
    expect(security('/users/{id}', 'patch')).toEqual([
      { OAuth2PasswordBearer: ['users:write'] },
      { sessionCookie: [] },
    ]);
    expect(security('/users/{id}', 'delete')).toEqual([
      { OAuth2PasswordBearer: ['users:write'] },
      { sessionCookie: [] },
    ]);
    expect(doc.paths['/users/{id}'].patch.description).toContain('Requires the admin role');
  });
});
