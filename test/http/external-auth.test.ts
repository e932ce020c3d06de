import Fastify, { type FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type {
  AuthContext,
  ClientAuthContext,
  ExternalAuthContext,
  OptInRequireOptions,
  RequireOptions,
  UserAuthContext,
} from '../../src/http/index.js';
import { gatehousePlugin, userAuthOf } from '../../src/http/index.js';
import { ConfigError, createGatehouse } from '../../src/index.js';
import { buildTestServer, testConfig } from '../../src/testing.js';
import { bearer, signIn } from '../support/accounts.js';
import {
  API_AUDIENCE,
  CLIENT_ID,
  createProviderKey,
  type ExternalProvider,
  type ProviderKey,
  startExternalProvider,
} from '../support/external-provider.js';

/**
 * Issue 15 item 4: external principals pass only routes that opt in (`allow: ['external']`), never
 * account, admin or audit routes, and never hold a Gatehouse role.
 */
describe('app.auth.require with external issuers', () => {
  let provider: ExternalProvider;
  let key: ProviderKey;
  let app: FastifyInstance;
  /** An issuer configured but down (nothing listens on its port). */
  let downIssuer: string;

  beforeAll(async () => {
    key = await createProviderKey();
    provider = await startExternalProvider([key]);
    const gone = await startExternalProvider();
    downIssuer = gone.issuer;
    await gone.close();
    app = await buildTestServer({
      externalIssuers: [
        { issuer: provider.issuer, audience: API_AUDIENCE },
        { issuer: downIssuer, audience: API_AUDIENCE, jwksCooldown: 30 },
      ],
      externalIssuerTimeoutMs: 1000,
    });
    app.get(
      '/orders',
      { preHandler: app.auth.require({ scopes: ['orders:read'], allow: ['external'] }) },
      async (request) => request.auth,
    );
    app.get('/either', { preHandler: app.auth.require({ allow: ['external'] }) }, async (request) => {
      const auth = request.auth;
      if (auth === null) return { kind: 'nobody' };
      if (auth.kind === 'user') return { kind: auth.kind, email: auth.user.email };
      return auth.kind === 'external' ? { kind: auth.kind, subject: auth.subject } : { kind: auth.kind };
    });
    app.get('/users-only', { preHandler: app.auth.require() }, async (request) => ({
      email: userAuthOf(request).user.email,
    }));
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await provider?.close();
  });

  /** A token signed by the provider's key with claims of our choosing (what a hostile tenant could get issued). */
  const forged = (claims: Record<string, unknown>, iss = provider.issuer) =>
    new SignJWT({ iss, aud: API_AUDIENCE, sub: 'tenant-user', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })
      .setExpirationTime('5m')
      .sign(key.privateKey);

  it('lets an external token through a route that opts in, as kind external with its scopes', async () => {
    const token = await provider.issueToken({ scope: 'orders:read' });
    for (let i = 0; i < 2; i++) {
      const response = await app.inject({ method: 'GET', url: '/orders', headers: bearer(token) });
      expect(response.statusCode).toBe(200);
      const auth = response.json<ExternalAuthContext>();
      expect(auth).toMatchObject({
        kind: 'external',
        issuer: provider.issuer,
        subject: CLIENT_ID,
        clientId: CLIENT_ID,
        scopes: ['orders:read'],
        transport: 'bearer',
      });
      expect(auth).not.toHaveProperty('user');
      expect(auth).not.toHaveProperty('role');
    }
  });

  it('answers 403 insufficient_scope when the external token lacks the scope', async () => {
    const token = await provider.issueToken({ scope: 'orders:write' });
    const response = await app.inject({ method: 'GET', url: '/orders', headers: bearer(token) });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE' });
    expect(response.headers['www-authenticate']).toContain('error="insufficient_scope"');
  });

  it('still lets Gatehouse users through opted-in routes, as kind user', async () => {
    const { user, headers } = await signIn(app);
    const either = await app.inject({ method: 'GET', url: '/either', headers });
    expect(either.json()).toEqual({ kind: 'user', email: user.email });
    // Gatehouse users never hold the external API's scopes.
    const orders = await app.inject({ method: 'GET', url: '/orders', headers });
    expect(orders.statusCode).toBe(403);
  });

  it('refuses external tokens on every route that did not opt in: account, admin, audit and app routes', async () => {
    // Claims that would mean something to Gatehouse if they were ever read.
    const token = await forged({ role: 'super_admin', scope: 'me users:read users:write audit:read' });
    const either = await app.inject({ method: 'GET', url: '/either', headers: bearer(token) });
    expect(either.json()).toEqual({ kind: 'external', subject: 'tenant-user' });
    for (const url of [
      '/users/me',
      '/users',
      '/audit',
      '/audit/login-failures',
      '/users/me/sessions',
      '/users-only',
    ]) {
      const response = await app.inject({ method: 'GET', url, headers: bearer(token) });
      expect(response.statusCode, url).toBe(401);
      expect(response.json(), url).toMatchObject({ code: 'INVALID_TOKEN' });
      expect(response.headers['www-authenticate'], url).toContain('error="invalid_token"');
    }
  });

  it('refuses a bad external token with 401 invalid_token and a fixed description', async () => {
    const wrongAudience = await provider.issueToken({ resource: 'https://another-api.test' });
    const response = await app.inject({ method: 'GET', url: '/orders', headers: bearer(wrongAudience) });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ code: 'INVALID_TOKEN' });
    expect(response.headers['www-authenticate']).toContain('aud');
  });

  it('answers 503 EXTERNAL_ISSUER_UNAVAILABLE with Retry-After when the issuer is down, and other callers are unaffected', async () => {
    const token = await forged({ scope: 'orders:read' }, downIssuer);
    const first = await app.inject({ method: 'GET', url: '/orders', headers: bearer(token) });
    expect(first.statusCode).toBe(503);
    expect(first.headers['content-type']).toContain('application/problem+json');
    expect(first.json()).toMatchObject({ code: 'EXTERNAL_ISSUER_UNAVAILABLE' });
    expect(Number(first.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const again = await app.inject({ method: 'GET', url: '/orders', headers: bearer(token) });
    expect(again.statusCode).toBe(503);
    expect(Number(again.headers['retry-after'])).toBeGreaterThan(1);
    // The healthy issuer and Gatehouse's own tokens keep working.
    const healthy = await provider.issueToken();
    expect((await app.inject({ method: 'GET', url: '/orders', headers: bearer(healthy) })).statusCode).toBe(
      200,
    );
    const { headers } = await signIn(app);
    expect((await app.inject({ method: 'GET', url: '/either', headers })).statusCode).toBe(200);
  });

  it('answers a kid the issuer has not published, within the cooldown, 503 EXTERNAL_KEY_UNKNOWN with Retry-After (red-team 2026-12m E2)', async () => {
    // An app of its own, so the cooldown (an hour) surely covers the test.
    const own = await buildTestServer({
      externalIssuers: [{ issuer: provider.issuer, audience: API_AUDIENCE, jwksCooldown: 3600 }],
    });
    try {
      own.get('/orders', { preHandler: own.auth.require({ allow: ['external'] }) }, async () => ({}));
      // The provider's keys are fetched (a healthy token), then a token with a kid not among them.
      const healthy = await provider.issueToken();
      expect((await own.inject({ method: 'GET', url: '/orders', headers: bearer(healthy) })).statusCode).toBe(
        200,
      );
      const stranger = await createProviderKey();
      const token = await new SignJWT({ iss: provider.issuer, aud: API_AUDIENCE, sub: 's' })
        .setProtectedHeader({ alg: 'ES256', kid: stranger.kid, typ: 'at+jwt' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(stranger.privateKey);
      const response = await own.inject({ method: 'GET', url: '/orders', headers: bearer(token) });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ code: 'EXTERNAL_KEY_UNKNOWN' });
      expect(Number(response.headers['retry-after'])).toBeGreaterThan(3000);
    } finally {
      await own.close();
    }
  });

  it('never accepts a role with other kinds of caller: a type error, and a TypeError at run time', () => {
    expect(() =>
      // @ts-expect-error: external callers can never hold a Gatehouse role
      app.auth.require({ role: 'admin', allow: ['external'] }),
    ).toThrow(TypeError);
    expect(() =>
      // @ts-expect-error: unknown kinds are refused
      app.auth.require({ allow: ['robot'] }),
    ).toThrow(TypeError);
    // Routes for users only take scopes the server knows (core or app-registered): a name
    // nobody registered fails when the guard is made; with `allow` it is an issuer's own scope.
    expect(() => app.auth.require({ scopes: ['orders:read'] })).toThrow(TypeError);
    expect(() => app.auth.require({ scopes: ['orders:read'], allow: ['external'] })).not.toThrow();
    expectTypeOf<OptInRequireOptions['role']>().toEqualTypeOf<undefined>();
    expectTypeOf<{ scopes: ['orders:read']; allow: ['external'] }>().toExtend<RequireOptions>();
  });

  it('types request.auth as a union that must be narrowed before reading a user', () => {
    expectTypeOf<AuthContext>().toEqualTypeOf<UserAuthContext | ExternalAuthContext | ClientAuthContext>();
    expectTypeOf<AuthContext['kind']>().toEqualTypeOf<'user' | 'external' | 'client'>();
    expectTypeOf<ExternalAuthContext>().not.toHaveProperty('user');
    expectTypeOf<ExternalAuthContext>().not.toHaveProperty('role');
    expectTypeOf<ExternalAuthContext>().not.toHaveProperty('sessionId');
    expectTypeOf<AuthContext>().not.toHaveProperty('user');
    expectTypeOf(userAuthOf).returns.toEqualTypeOf<UserAuthContext>();
  });

  it('identify() recognises external tokens only when asked to', async () => {
    const token = await provider.issueToken();
    const request = { headers: bearer(token), cookies: {} } as never;
    await expect(app.auth.identify(request)).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
    const auth = await app.auth.identify(request, { allow: ['external'] });
    expect(auth?.kind).toBe('external');
  });

  it('documents opted-in routes with the externalBearer scheme', async () => {
    const ghApp = await buildTestServer({
      externalIssuers: [{ issuer: provider.issuer, audience: API_AUDIENCE }],
    });
    ghApp.get(
      '/reports',
      {
        schema: { description: 'Reports.' },
        preHandler: ghApp.auth.require({ scopes: ['orders:read'], allow: ['external'] }),
      },
      async () => ({}),
    );
    await ghApp.ready();
    const document = (await ghApp.inject({ method: 'GET', url: '/openapi.json' })).json();
    await ghApp.close();
    expect(document.paths['/reports'].get.security).toContainEqual({ externalBearer: [] });
    expect(document.paths['/reports'].get.description).toContain('external issuers');
    expect(document.components.securitySchemes.externalBearer).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
  });
});

describe('gatehousePlugin externalIssuers option', () => {
  it("accepts the plugin's own issuers in an embedding app, and refuses bad ones at ready()", async () => {
    const key = await createProviderKey();
    const provider = await startExternalProvider([key]);
    const gatehouse = await createGatehouse(testConfig());
    try {
      const app = Fastify();
      await app.register(gatehousePlugin, {
        gatehouse,
        routes: false,
        externalIssuers: [{ issuer: provider.issuer, audience: API_AUDIENCE }],
      });
      app.get('/orders', { preHandler: app.auth.require({ allow: ['external'] }) }, async (request) => ({
        kind: request.auth?.kind,
      }));
      const response = await app.inject({
        method: 'GET',
        url: '/orders',
        headers: bearer(await provider.issueToken()),
      });
      expect(response.json()).toEqual({ kind: 'external' });
      await app.close();

      for (const externalIssuers of [
        [{ issuer: 'http://idp.example.com', audience: 'api' }],
        [{ issuer: 'https://idp.example.com', audience: 'api', algorithms: ['HS256'] }],
        [{ issuer: gatehouse.config.issuer, audience: 'api' }],
      ]) {
        const bad = Fastify();
        // Plain-JavaScript callers can pass anything: the schema check is what stops them.
        const options = { gatehouse, routes: false, externalIssuers } as never;
        await expect(bad.register(gatehousePlugin, options)).rejects.toThrow(ConfigError);
        await bad.close();
      }
    } finally {
      await gatehouse.close();
      await provider.close();
    }
  });
});
