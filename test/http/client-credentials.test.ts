import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { ClientAuthContext } from '../../src/http/index.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, signIn } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

const PUBLIC_URL = 'https://auth.example.test';
const PER_CLIENT = 4;
const PER_IP = 6;

/** `client_secret_basic` (RFC 6749 §2.3.1: each part form-urlencoded before base64). */
function basic(id: string, secret: string): { authorization: string } {
  const encode = (part: string) => encodeURIComponent(part);
  return { authorization: `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}` };
}

/** A fresh address per test, so the per-IP limit of one test never touches another. */
let addressCounter = 0;
const nextAddress = () => `198.51.100.${++addressCounter}`;

/**
 * Issue 15: the client credentials grant (RFC 6749 §4.4) and the `client` principal kind, on
 * SQLite and, when DATABASE_URL is set, PostgreSQL.
 */
describe.each(engines)('client_credentials on $name', ({ name }) => {
  let app: FastifyInstance;
  let clock: TestClock;
  let drop: () => Promise<void>;
  /** Confidential, registered for client_credentials with a core, an app and an OIDC scope. */
  let service: OAuthClient;
  let serviceSecret: string;
  /** Confidential, holding the admin-sounding scopes a token must never turn into admin access. */
  let powerful: OAuthClient;
  let powerfulSecret: string;
  /** Confidential, but registered for authorization_code only. */
  let webApp: OAuthClient;
  let webAppSecret: string;
  /** Public: can never use the grant. */
  let spa: OAuthClient;

  beforeAll(async () => {
    clock = createTestClock();
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer(
      {
        databaseUrl: database.url,
        publicUrl: PUBLIC_URL,
        issuer: PUBLIC_URL,
        clientCredentialsPerMinute: PER_CLIENT,
        clientCredentialsPerMinutePerIp: PER_IP,
      },
      { clock, scheduler: clock },
    );
    // Routes of an embedding app: one for services only by scope, one for people only.
    app.get(
      '/catalogue-feed',
      { preHandler: app.auth.require({ allow: ['client'], scopes: ['clothes:read'] }) },
      async (request) => request.auth,
    );
    app.get('/external-only', { preHandler: app.auth.require({ allow: ['external'] }) }, async () => ({}));
    await app.ready();
    const clients = gatehouseCore(app.gatehouse).oauthClients;
    const operator = { actorId: null };
    const create = async (input: Parameters<typeof clients.create>[0]) => {
      const created = await clients.create(input, operator);
      return { client: created.client, secret: String(created.clientSecret) };
    };
    ({ client: service, secret: serviceSecret } = await create({
      name: 'Stock sync',
      confidential: true,
      grantTypes: ['client_credentials'],
      scopes: ['openid', 'clothes:read', 'me'],
    }));
    ({ client: powerful, secret: powerfulSecret } = await create({
      name: 'Ops robot',
      confidential: true,
      grantTypes: ['client_credentials'],
      scopes: ['me', 'users:read', 'users:write', 'audit:read', 'clients:read', 'clients:write'],
    }));
    ({ client: webApp, secret: webAppSecret } = await create({
      name: 'Web app',
      confidential: true,
      redirectUris: ['https://app.example/callback'],
    }));
    spa = (await create({ name: 'SPA', redirectUris: ['https://app.example/callback'] })).client;
  });
  afterAll(async () => {
    await app?.close();
    await drop?.();
  });
  // Each test starts with fresh rate-limit windows (they are per minute, on the test clock).
  beforeEach(() => clock.advance(60_000));

  const grant = (
    params: Record<string, string> = {},
    headers: Record<string, string> = basic(service.clientId, serviceSecret),
    remoteAddress = nextAddress(),
  ): Promise<LightMyRequestResponse> =>
    app.inject({
      method: 'POST',
      url: '/token',
      remoteAddress,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      payload: new URLSearchParams({ grant_type: 'client_credentials', ...params }).toString(),
    });

  const tokenOf = async (client: OAuthClient, secret: string, scope?: string) => {
    const response = await grant(scope === undefined ? {} : { scope }, basic(client.clientId, secret));
    expect(response.statusCode).toBe(200);
    return String(response.json().access_token);
  };

  it('issues an RFC 9068 access token for the client itself, with no refresh token', async () => {
    const response = await grant();
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json();
    const ttl = gatehouseCore(app.gatehouse).config.accessTokenTtl;
    // The default is every scope the client is registered for, but OpenID Connect's: no user here.
    expect(body).toEqual({
      access_token: expect.any(String),
      token_type: 'bearer',
      expires_in: ttl,
      scope: 'clothes:read me',
    });
    expect(decodeProtectedHeader(body.access_token)).toMatchObject({
      typ: 'at+jwt',
      kid: expect.any(String),
    });
    const claims = decodeJwt(body.access_token);
    expect(claims).toEqual({
      iss: PUBLIC_URL,
      sub: service.clientId,
      client_id: service.clientId,
      aud: gatehouseCore(app.gatehouse).config.audience,
      scope: 'clothes:read me',
      iat: Math.floor(clock() / 1000),
      exp: Math.floor(clock() / 1000) + ttl,
      jti: expect.any(String),
    });
    // Each token has its own id.
    expect(decodeJwt(await tokenOf(service, serviceSecret)).jti).not.toBe(claims.jti);
  });

  it('accepts client_secret_post and narrows to the scope asked for', async () => {
    const response = await grant(
      { client_id: service.clientId, client_secret: serviceSecret, scope: 'clothes:read' },
      {},
    );
    expect(response.statusCode).toBe(200);
    expect(response.json().scope).toBe('clothes:read');
  });

  it('refuses scopes the client is not registered for, and OpenID Connect scopes', async () => {
    for (const scope of ['clothes:read users:read', 'openid', 'profile']) {
      const response = await grant({ scope });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_scope' });
    }
  });

  it('answers invalid_client when the client does not authenticate as a confidential client (401 only after HTTP Basic)', async () => {
    const cases: [Record<string, string>, Record<string, string>, boolean][] = [
      [{}, {}, false], // no client at all
      [{ client_id: service.clientId }, {}, false], // a confidential client without its secret
      [{}, basic(service.clientId, 'wrong-secret'), true],
      [{ client_id: service.clientId, client_secret: 'wrong-secret' }, {}, false],
      [{ client_id: 'no-such-client', client_secret: 'x' }, {}, false],
      [{ client_id: spa.clientId }, {}, false], // a public client can never authenticate
    ];
    for (const [params, headers, usedBasic] of cases) {
      const response = await grant(params, headers);
      expect(response.statusCode, JSON.stringify(params)).toBe(usedBasic ? 401 : 400);
      expect(response.json()).toMatchObject({ error: 'invalid_client' });
      expect(response.headers['cache-control']).toBe('no-store');
      // RFC 6749 §5.2: a challenge in the scheme the client used.
      if (usedBasic) expect(response.headers['www-authenticate']).toMatch(/^Basic /);
    }
  });

  it('answers unauthorized_client to a confidential client not registered for the grant', async () => {
    const response = await grant({}, basic(webApp.clientId, webAppSecret));
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'unauthorized_client' });
  });

  it('audits every issued token, and no refused request', async () => {
    const core = gatehouseCore(app.gatehouse);
    const audited = await core.oauthClients.create(
      {
        name: 'Audited',
        confidential: true,
        grantTypes: ['client_credentials'],
        scopes: ['me', 'clothes:read'],
      },
      { actorId: null },
    );
    const secret = String(audited.clientSecret);
    const first = await tokenOf(audited.client, secret, 'me');
    const second = await tokenOf(audited.client, secret);
    expect((await grant({ scope: 'users:read' }, basic(audited.client.clientId, secret))).statusCode).toBe(
      400,
    );
    expect((await grant({}, basic(audited.client.clientId, 'wrong'))).statusCode).toBe(401);
    const page = await core.audit.list({ limit: 100, offset: 0, targetId: audited.client.clientId });
    const issued = page.items.filter((item) => item.event === 'client_token_issued');
    const details = issued.map((item) => item.details);
    expect(details).toHaveLength(2);
    expect(details).toContainEqual({
      client_id: audited.client.clientId,
      scope: 'me',
      jti: decodeJwt(first).jti,
    });
    expect(details).toContainEqual({
      client_id: audited.client.clientId,
      scope: 'me clothes:read',
      jti: decodeJwt(second).jti,
    });
    expect(issued.every((item) => item.actorId === null && item.ip !== null)).toBe(true);
  });

  it('limits tokens per client after authentication, so nobody else can use up its allowance', async () => {
    const core = gatehouseCore(app.gatehouse);
    const other = await core.oauthClients.create(
      { name: 'Limited', confidential: true, grantTypes: ['client_credentials'], scopes: ['me'] },
      { actorId: null },
    );
    const secret = String(other.clientSecret);
    // An attacker who knows the client_id but not the secret, from many addresses: no effect.
    for (let i = 0; i < PER_CLIENT * 2; i++) {
      expect((await grant({}, basic(other.client.clientId, 'guess'))).statusCode).toBe(401);
    }
    for (let i = 0; i < PER_CLIENT; i++) await tokenOf(other.client, secret);
    const refused = await grant({}, basic(other.client.clientId, secret));
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: 'temporarily_unavailable', code: 'TOO_MANY_REQUESTS' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Other clients are not affected; the window lifts on its own.
    await tokenOf(service, serviceSecret);
    clock.advance(60_000);
    await tokenOf(other.client, secret);
  });

  it('limits failed authentications per address before the secret is checked, and only that address', async () => {
    const address = nextAddress();
    for (let i = 0; i < PER_IP; i++) {
      expect((await grant({}, basic(service.clientId, `guess-${i}`), address)).statusCode).toBe(401);
    }
    const refused = await grant({}, basic(service.clientId, serviceSecret), address);
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: 'temporarily_unavailable' });
    expect((await grant({}, basic(service.clientId, serviceSecret), nextAddress())).statusCode).toBe(200);
    clock.advance(60_000);
    expect((await grant({}, basic(service.clientId, serviceSecret), address)).statusCode).toBe(200);
  });

  // Red-team 2026-12g O3: only the client_credentials grant counted failed client authentications;
  // the code and refresh grants answered any number of guesses (401 for a wrong secret, 400 for a
  // right one), from an address the limit had already refused.
  it('O3: counts failed client authentications at every grant, against the same per-address limit', async () => {
    const address = nextAddress();
    const asWebApp = (grantType: string, secret: string, from = address) =>
      grant(
        grantType === 'refresh_token'
          ? { grant_type: grantType, refresh_token: 'ghr_not-a-token' }
          : { grant_type: grantType, code: 'not-a-code', redirect_uri: 'https://app.example/callback' },
        basic(webApp.clientId, secret),
        from,
      );
    for (let i = 0; i < PER_IP; i++) {
      const response = await asWebApp(i % 2 === 0 ? 'authorization_code' : 'refresh_token', `guess-${i}`);
      expect(response.statusCode).toBe(401);
      expect(response.json().error).toBe('invalid_client');
    }
    for (const grantType of ['authorization_code', 'refresh_token', 'client_credentials']) {
      const refused =
        grantType === 'client_credentials'
          ? await grant({}, basic(service.clientId, serviceSecret), address)
          : await asWebApp(grantType, webAppSecret);
      expect(refused.statusCode).toBe(429);
      expect(refused.json()).toMatchObject({ error: 'temporarily_unavailable' });
    }
    // Another address is not refused. Requests that present no secret cannot guess one and are
    // never refused for another's guesses at their address (review of O3): a public client, a
    // first-party label, Swagger UI's empty Basic credentials, the plain password grant.
    expect((await asWebApp('authorization_code', webAppSecret, nextAddress())).json().error).toBe(
      'invalid_grant',
    );
    const noSecret = [
      grant(
        { grant_type: 'refresh_token', refresh_token: 'ghr_not-a-token', client_id: spa.clientId },
        {},
        address,
      ),
      grant(
        {
          grant_type: 'password',
          username: 'nobody@example.com',
          password: 'x',
          client_id: 'payments-service',
        },
        {},
        address,
      ),
      grant(
        { grant_type: 'password', username: 'nobody@example.com', password: 'x' },
        basic('', ''),
        address,
      ),
      grant({ grant_type: 'password', username: 'nobody@example.com', password: 'x' }, {}, address),
    ];
    for (const answer of await Promise.all(noSecret)) expect(answer.json().error).toBe('invalid_grant');
  });

  // Abuse assignment: every request counted, so junk requests from a service's own NAT spent its allowance.
  it('never counts successful requests against the address', async () => {
    const address = nextAddress();
    const statuses: number[] = [];
    for (const [client, secret] of [
      [service, serviceSecret],
      [powerful, powerfulSecret],
    ] as const) {
      for (let i = 0; i < PER_CLIENT; i++) {
        statuses.push((await grant({}, basic(client.clientId, secret), address)).statusCode);
      }
    }
    expect(statuses).toEqual(Array(2 * PER_CLIENT).fill(200));
    expect(2 * PER_CLIENT).toBeGreaterThan(PER_IP);
  });

  describe('the client principal', () => {
    it('passes a route that opts in, as kind client with its scopes and no user or role', async () => {
      const token = await tokenOf(service, serviceSecret);
      for (let i = 0; i < 2; i++) {
        // The second request is answered from the verified-token cache.
        const response = await app.inject({ method: 'GET', url: '/catalogue-feed', headers: bearer(token) });
        expect(response.statusCode).toBe(200);
        const auth = response.json<ClientAuthContext>();
        expect(auth).toEqual({
          kind: 'client',
          clientId: service.clientId,
          scopes: ['clothes:read', 'me'],
          transport: 'bearer',
          expiresAt: (decodeJwt(token).exp ?? 0) * 1000,
        });
      }
    });

    it('answers 403 insufficient_scope when the token lacks the route’s scope', async () => {
      const token = await tokenOf(service, serviceSecret, 'me');
      const response = await app.inject({ method: 'GET', url: '/catalogue-feed', headers: bearer(token) });
      expect(response.statusCode).toBe(403);
      expect(response.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE' });
    });

    it('still lets people through a route that opts in to clients, as kind user', async () => {
      const { headers } = await signIn(app, 'user', 'clothes:read');
      const response = await app.inject({ method: 'GET', url: '/catalogue-feed', headers });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ kind: 'user' });
    });

    it('is refused by every route that did not opt in: account, admin, audit, MFA and consent routes', async () => {
      // A client registered with every admin-sounding scope: its token still opens none of them.
      const token = await tokenOf(powerful, powerfulSecret);
      expect(decodeJwt(token).scope).toBe('me users:read users:write audit:read clients:read clients:write');
      const requests: [string, string][] = [
        ['GET', '/users/me'],
        ['GET', '/users/me/sessions'],
        ['POST', '/auth/logout-all'],
        ['GET', '/users'],
        ['GET', `/users/${powerful.clientId}`],
        ['GET', '/oauth/clients'],
        ['DELETE', `/oauth/clients/${service.clientId}`],
        ['GET', '/audit'],
        ['GET', '/audit/login-failures'],
        ['GET', '/users/me/mfa'],
        ['POST', '/users/me/mfa/totp'],
        ['GET', '/users/me/connected-apps'],
        ['GET', '/userinfo'],
        ['GET', '/users/me/passkeys'],
        ['GET', '/external-only'],
      ];
      for (const [method, url] of requests) {
        const response = await app.inject({ method: method as 'GET', url, headers: bearer(token) });
        expect(response.statusCode, `${method} ${url}`).toBe(401);
        expect(response.json(), `${method} ${url}`).toMatchObject({ code: 'INVALID_TOKEN' });
        expect(response.headers['www-authenticate']).toContain('error="invalid_token"');
      }
      // The consent page never treats a client token as a signed-in person.
      const authorize = await app.inject({
        method: 'GET',
        url: `/authorize?response_type=code&client_id=${spa.clientId}&redirect_uri=${encodeURIComponent('https://app.example/callback')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
        headers: bearer(token),
      });
      expect([302, 303, 401]).toContain(authorize.statusCode);
      expect(authorize.body).not.toContain('csrf_token');
      // The client it tried to delete is still there.
      expect(await gatehouseCore(app.gatehouse).oauthClients.find(service.clientId)).toBeDefined();
    });

    it('documents an opted-in route with the OAuth2ClientCredentials scheme', async () => {
      const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
      expect(doc.paths['/catalogue-feed'].get.security).toContainEqual({
        OAuth2ClientCredentials: ['clothes:read'],
      });
      expect(doc.paths['/catalogue-feed'].get.description).toContain('client_credentials');
      expect(doc.components.securitySchemes.OAuth2ClientCredentials).toMatchObject({
        type: 'oauth2',
        flows: { clientCredentials: { tokenUrl: '/token' } },
      });
      // Routes that did not opt in do not list it.
      expect(JSON.stringify(doc.paths['/users/me'])).not.toContain('OAuth2ClientCredentials');
      // The token endpoint documents the grant.
      expect(JSON.stringify(doc.paths['/token'].post)).toContain('client_credentials');
    });

    it('cannot be combined with a role, and a client-only guard checks its scope names', () => {
      expect(() => app.auth.require({ allow: ['client'], role: 'admin' } as never)).toThrow(TypeError);
      expect(() => app.auth.require({ allow: ['client'], scopes: ['no:such-scope'] })).toThrow(TypeError);
      expect(() =>
        app.auth.require({ allow: ['client', 'external'], scopes: ['orders:read'] }),
      ).not.toThrow();
    });

    it('identify() recognises client tokens only when asked to', async () => {
      const token = await tokenOf(service, serviceSecret);
      const request = { headers: bearer(token), cookies: {} } as never;
      await expect(app.auth.identify(request)).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
      await expect(app.auth.identify(request, { allow: ['external'] })).rejects.toMatchObject({
        code: 'INVALID_TOKEN',
      });
      expect((await app.auth.identify(request, { allow: ['client'] }))?.kind).toBe('client');
    });

    it('refuses an expired token and a token signed with another key', async () => {
      const token = await tokenOf(service, serviceSecret);
      const forged = await new SignJWT({ ...decodeJwt(token) })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: decodeProtectedHeader(token).kid ?? '' })
        .sign(new TextEncoder().encode('not-the-server-secret-but-just-as-long-as-one'));
      const forgedResponse = await app.inject({
        method: 'GET',
        url: '/catalogue-feed',
        headers: bearer(forged),
      });
      expect(forgedResponse.statusCode).toBe(401);
      clock.advance(gatehouseCore(app.gatehouse).config.accessTokenTtl * 1000);
      const expired = await app.inject({ method: 'GET', url: '/catalogue-feed', headers: bearer(token) });
      expect(expired.statusCode).toBe(401);
      expect(expired.json()).toMatchObject({ code: 'INVALID_TOKEN', detail: 'The access token expired.' });
    });

    it('stops working as soon as its client is removed, even from the verified-token cache', async () => {
      const core = gatehouseCore(app.gatehouse);
      const doomed = await core.oauthClients.create(
        { name: 'Doomed', confidential: true, grantTypes: ['client_credentials'], scopes: ['clothes:read'] },
        { actorId: null },
      );
      const token = await tokenOf(doomed.client, String(doomed.clientSecret));
      const call = () => app.inject({ method: 'GET', url: '/catalogue-feed', headers: bearer(token) });
      expect((await call()).statusCode).toBe(200);
      expect((await call()).statusCode).toBe(200);
      // Through the admin API, as an operator would.
      const admin = await signIn(app, 'admin', 'clients:write');
      const removed = await app.inject({
        method: 'DELETE',
        url: `/oauth/clients/${doomed.client.clientId}`,
        headers: admin.headers,
      });
      expect(removed.statusCode).toBe(204);
      const refused = await call();
      expect(refused.statusCode).toBe(401);
      expect(refused.json()).toMatchObject({
        code: 'INVALID_TOKEN',
        detail: 'The client this token was issued to was removed.',
      });
      // And it cannot get a new one.
      expect((await grant({}, basic(doomed.client.clientId, String(doomed.clientSecret)))).statusCode).toBe(
        401,
      );
    });

    it('stops at once while its client is disabled, gets no new token, and works again once enabled', async () => {
      const core = gatehouseCore(app.gatehouse);
      const paused = await core.oauthClients.create(
        { name: 'Paused', confidential: true, grantTypes: ['client_credentials'], scopes: ['clothes:read'] },
        { actorId: null },
      );
      const secret = String(paused.clientSecret);
      const token = await tokenOf(paused.client, secret);
      const call = () => app.inject({ method: 'GET', url: '/catalogue-feed', headers: bearer(token) });
      expect((await call()).statusCode).toBe(200);
      await core.oauthClients.setDisabled(paused.client.clientId, true, { actorId: null });
      const refused = await call();
      expect(refused.statusCode).toBe(401);
      expect(refused.json()).toMatchObject({ detail: 'The client this token was issued to is disabled.' });
      const grantRefused = await grant({}, basic(paused.client.clientId, secret));
      expect(grantRefused.statusCode).toBe(401);
      expect(grantRefused.json()).toMatchObject({ error: 'invalid_client' });
      // A wrong secret is told nothing about the state.
      const wrong = await grant({}, basic(paused.client.clientId, 'not the secret'));
      expect(wrong.json().error_description).toBe('Client authentication failed.');
      await core.oauthClients.setDisabled(paused.client.clientId, false, { actorId: null });
      expect((await call()).statusCode).toBe(200);
      expect((await grant({}, basic(paused.client.clientId, secret))).statusCode).toBe(200);
    });

    const revokeAs = (token: string, id: string, secret: string) =>
      app.inject({
        method: 'POST',
        url: '/revoke',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(id, secret) },
        payload: new URLSearchParams({ token }).toString(),
      });
    /** `token` introspected on `server` by the service client. */
    const introspectOn = (server: FastifyInstance, token: string) =>
      server.inject({
        method: 'POST',
        url: '/introspect',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...basic(service.clientId, serviceSecret),
        },
        payload: new URLSearchParams({ token }).toString(),
      });
    const feed = (token: string) =>
      app.inject({ method: 'GET', url: '/catalogue-feed', headers: bearer(token) });

    // RFC 7009 §2.1 (abuse assignment): /revoke answered 200 to a client token and did nothing.
    it('is never mistaken for a user token, and /revoke by its own client ends it at once', async () => {
      const token = await tokenOf(service, serviceSecret);
      expect(await app.gatehouse.sessions.validate(token)).toMatchObject({ ok: false });
      expect((await feed(token)).statusCode).toBe(200);
      expect((await revokeAs(token, service.clientId, serviceSecret)).statusCode).toBe(200);
      const refused = await feed(token);
      expect(refused.statusCode).toBe(401);
      expect(refused.json()).toMatchObject({
        code: 'INVALID_TOKEN',
        detail: 'The access token was revoked.',
      });
      // Introspection agrees; revoking again is a quiet 200; the client's other tokens live on.
      expect((await introspectOn(app, token)).json()).toEqual({ active: false });
      expect((await revokeAs(token, service.clientId, serviceSecret)).statusCode).toBe(200);
      expect((await feed(await tokenOf(service, serviceSecret))).statusCode).toBe(200);
      const audit = await gatehouseCore(app.gatehouse).audit.list({
        event: 'client_token_revoked',
        limit: 10,
        offset: 0,
      });
      const jti = String(decodeJwt(token).jti);
      expect(audit.items.filter((item) => item.details?.jti === jti)).toHaveLength(1);
    });

    it("leaves another client's token alone (200, nothing revoked)", async () => {
      const token = await tokenOf(service, serviceSecret);
      expect((await revokeAs(token, powerful.clientId, powerfulSecret)).statusCode).toBe(200);
      expect((await revokeAs(token, webApp.clientId, webAppSecret)).statusCode).toBe(200);
      // A public client naming the owner's id without its secret is refused outright.
      const spoofed = await app.inject({
        method: 'POST',
        url: '/revoke',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ token, client_id: service.clientId }).toString(),
      });
      expect(spoofed.statusCode).toBe(400);
      expect(spoofed.json()).toMatchObject({ error: 'invalid_client' });
      expect((await feed(token)).statusCode).toBe(200);
    });

    /** What two instances of one deployment share: the database and SECRET_KEY (the signing keys' seal). */
    const shared = () => {
      const { config } = gatehouseCore(app.gatehouse);
      return { databaseUrl: config.databaseUrl, secretKey: config.secretKey };
    };

    // Two instances need one shared database: PostgreSQL (the SQLite suites run in memory). Defined
    // only in the PostgreSQL suite, as `engines` defines that suite only with DATABASE_URL: a
    // skipped test in CI would look like a missing service.
    if (name === 'postgres') {
      it('reaches an instance that missed the broadcast at its next reload, and survives a restart', async () => {
        const token = await tokenOf(service, serviceSecret);
        // A second instance on the same database, with its own (memory) bus: no message reaches it.
        const other = await buildTestServer(
          { ...shared(), publicUrl: PUBLIC_URL, issuer: PUBLIC_URL },
          { clock, scheduler: clock },
        );
        try {
          other.get(
            '/catalogue-feed',
            { preHandler: other.auth.require({ allow: ['client'], scopes: ['clothes:read'] }) },
            async () => ({}),
          );
          const there = () => other.inject({ method: 'GET', url: '/catalogue-feed', headers: bearer(token) });
          expect((await there()).statusCode).toBe(200);
          expect((await revokeAs(token, service.clientId, serviceSecret)).statusCode).toBe(200);
          await gatehouseCore(other.gatehouse).revocations.reload();
          expect((await there()).statusCode).toBe(401);
        } finally {
          await other.close();
        }
        const restarted = await buildTestServer(
          { ...shared(), publicUrl: PUBLIC_URL, issuer: PUBLIC_URL },
          { clock, scheduler: clock },
        );
        try {
          expect((await introspectOn(restarted, token)).json()).toEqual({ active: false });
        } finally {
          await restarted.close();
        }
      });
    }
  });
});
