import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { PUBLIC_URL, REDIRECT, tokensFor } from '../support/oauth-provider.js';

/**
 * Red-team 2026-12j E1: an embedding app guards its routes as the README shows (a role alone, or
 * a bare `require()`). A token a registered OAuth app got with the person's consent to `openid`
 * alone passed them all as the person: an admin who signed in to a quiz app gave the quiz app
 * the admin's routes. An app's token now passes only guards that name scopes, all of which it holds.
 */
describe.each(engines)('OAuth apps’ tokens on an embedding app’s guards ($name)', ({ name }) => {
  let app: FastifyInstance;
  let drop: () => Promise<void> = async () => {};
  let quiz: Awaited<ReturnType<typeof register>>;

  const register = async (target: FastifyInstance) =>
    (
      await gatehouseCore(target.gatehouse).oauthClients.create(
        { name: 'Third Party Quiz', redirectUris: [REDIRECT], scopes: ['openid', 'profile', 'email', 'me'] },
        { actorId: null },
      )
    ).client;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, databaseUrl: database.url });
    // The embedding app's own routes, guarded the ways the README shows.
    app.get('/reports', { preHandler: app.auth.require({ role: 'admin' }) }, async () => ({ ok: 'reports' }));
    app.post('/notes', { preHandler: app.auth.require() }, async () => ({ ok: 'notes' }));
    app.get('/profile-card', { preHandler: app.auth.require({ scopes: ['profile'] }) }, async () => ({
      ok: 'card',
    }));
    app.get('/mine', { preHandler: app.auth.require({ scopes: ['me'] }) }, async () => ({ ok: 'mine' }));
    app.get('/signed-in-anyhow', { preHandler: app.auth.require({ scopes: ['openid'] }) }, async () => ({
      ok: 'anyhow',
    }));
    quiz = await register(app);
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  /** An admin who signed in to the quiz app, consenting to `scope`; the app's and the admin's own tokens. */
  const adminWithApp = async (scope: string) => {
    const admin = await createUser(app, { role: 'admin' });
    const browser = new Browser(app);
    expect((await browser.login(admin.email)).statusCode).toBe(204);
    const appToken = (await tokensFor(app, browser, quiz, scope)).access_token;
    const ownToken = (await login(app, admin.email)).access_token;
    return { appToken, ownToken, browser };
  };
  const call = (method: 'GET' | 'POST', url: string, token: string) =>
    app.inject({ method, url, headers: bearer(token) });

  it('refuses an app’s token on a role-only or bare guard (403 FIRST_PARTY_ONLY); the person’s own sign-ins pass', async () => {
    const { appToken, ownToken, browser } = await adminWithApp('openid');
    for (const [method, url] of [
      ['GET', '/reports'],
      ['POST', '/notes'],
    ] as const) {
      const refused = await call(method, url, appToken);
      expect(refused.statusCode, `${method} ${url}`).toBe(403);
      expect(refused.json()).toMatchObject({ code: 'FIRST_PARTY_ONLY' });
      expect((await call(method, url, ownToken)).statusCode, `${method} ${url}`).toBe(200);
    }
    expect((await browser.request('GET', '/reports')).statusCode).toBe(200);
  });

  it('lets an app’s token through a guard that names scopes it was granted, and only those', async () => {
    const { appToken } = await adminWithApp('openid profile');
    expect((await call('GET', '/profile-card', appToken)).statusCode).toBe(200);
    const mine = await call('GET', '/mine', appToken);
    expect(mine.statusCode).toBe(403);
    expect(mine.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE' });
    const granted = (await adminWithApp('openid me')).appToken;
    expect((await call('GET', '/mine', granted)).statusCode).toBe(200);
    // /userinfo names `openid`: any app the person signed in to reads it.
    expect((await call('GET', '/userinfo', appToken)).statusCode).toBe(200);
  });

  // The review of E1's fix: naming `openid` (the README's way to open a route to apps) refused the
  // person's own sign-ins, which never carry it.
  it('opens a route naming openid to apps and to the person’s own sign-ins alike', async () => {
    const { appToken, ownToken, browser } = await adminWithApp('openid');
    expect((await call('GET', '/signed-in-anyhow', appToken)).statusCode).toBe(200);
    expect((await call('GET', '/signed-in-anyhow', ownToken)).statusCode).toBe(200);
    expect((await browser.request('GET', '/signed-in-anyhow')).statusCode).toBe(200);
  });

  // The review's open item: the removal published "client gone" before its sessions' end, so an
  // instance that heard the first and not yet the second read the app's live token as a password
  // grant's label (an unknown client id) and let it through the guards above.
  it('a removed app’s sessions read as revoked by the time the registry forgets the app', async () => {
    const doomed = await register(app);
    const admin = await createUser(app, { role: 'admin' });
    const browser = new Browser(app);
    expect((await browser.login(admin.email)).statusCode).toBe(204);
    const appToken = (await tokensFor(app, browser, doomed, 'openid')).access_token;
    const sid = String(decodeJwt(appToken).sid);
    const core = gatehouseCore(app.gatehouse);
    const revokedWhenForgotten: boolean[] = [];
    const unsubscribe = core.bus.subscribe((event) => {
      if (event.type === 'oauth_client_removed' && event.clientId === doomed.clientId) {
        revokedWhenForgotten.push(core.revocations.isRevoked(sid));
      }
    });
    try {
      await core.oauthClients.remove(doomed.clientId, { actorId: null });
    } finally {
      unsubscribe();
    }
    expect(revokedWhenForgotten).toEqual([true]);
    expect((await call('POST', '/notes', appToken)).statusCode).toBe(401);
  });

  it('says so in the OpenAPI description of a guard that names no scope', async () => {
    const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{
      paths: Record<string, Record<string, { description?: string }>>;
    }>();
    expect(spec.paths['/auth/logout']?.post?.description).toContain('FIRST_PARTY_ONLY');
  });
});
