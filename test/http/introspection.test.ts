import type { FastifyInstance } from 'fastify';
import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { createUser, form, login, PASSWORD, postToken, signIn } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

const PUBLIC_URL = 'https://auth.example.test';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const CALLER = { ip: '203.0.113.9', userAgent: 'test' };

function basic(id: string, secret: string): { authorization: string } {
  return {
    authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
  };
}

const matrix = engines.flatMap(({ name }) =>
  (['jwt', 'database'] as const).map((tokenStrategy) => ({ name, tokenStrategy })),
);

/**
 * Issue 15 item 3: RFC 7662 introspection of every token kind we issue, and what each
 * confidential client may learn (refresh tokens only of its own), on SQLite and PostgreSQL, with
 * JWT and database (opaque) access tokens.
 */
describe.each(matrix)(
  'POST /introspect on $name with $tokenStrategy access tokens',
  ({ name, tokenStrategy }) => {
    let app: FastifyInstance;
    let clock: TestClock;
    let drop: () => Promise<void>;
    /** A resource server: confidential, registered for client_credentials. */
    let resource: OAuthClient;
    let resourceSecret: string;
    /** A confidential web app that holds users' refresh tokens. */
    let webApp: OAuthClient;
    let webAppSecret: string;
    let spa: OAuthClient;

    beforeAll(async () => {
      clock = createTestClock();
      const database = await createTestDatabaseUrl(name);
      drop = database.drop;
      app = await buildTestServer(
        { databaseUrl: database.url, publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, tokenStrategy },
        { clock, scheduler: clock },
      );
      const clients = gatehouseCore(app.gatehouse).oauthClients;
      const operator = { actorId: null };
      const r = await clients.create(
        {
          name: 'Catalogue API',
          confidential: true,
          grantTypes: ['client_credentials'],
          scopes: ['clothes:read'],
        },
        operator,
      );
      resource = r.client;
      resourceSecret = String(r.clientSecret);
      const w = await clients.create(
        {
          name: 'Web app',
          confidential: true,
          redirectUris: ['https://app.example/cb'],
          scopes: ['openid', 'me'],
        },
        operator,
      );
      webApp = w.client;
      webAppSecret = String(w.clientSecret);
      spa = (await clients.create({ name: 'SPA', redirectUris: ['https://app.example/cb'] }, operator))
        .client;
    });
    afterAll(async () => {
      await app?.close();
      await drop?.();
    });
    beforeEach(() => clock.advance(60_000));

    const introspect = (
      token: string,
      as: Record<string, string> = basic(resource.clientId, resourceSecret),
      extra: Record<string, string> = {},
    ) =>
      app.inject({
        method: 'POST',
        url: '/introspect',
        headers: { ...FORM, ...as },
        payload: form({ token, ...extra }),
      });

    const answer = async (token: string, as?: Record<string, string>, extra?: Record<string, string>) => {
      const response = await introspect(token, as, extra);
      expect(response.statusCode).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      return response.json();
    };

    /** A session of `userId` started by `clientId` (what a code exchange does), white-box. */
    const sessionFor = (userId: string, clientId: string) =>
      gatehouseCore(app.gatehouse).sessions.startBearerSession(userId, ['openid', 'me'], CALLER, clientId);

    it('describes a first-party user access token', async () => {
      const user = await createUser(app);
      const tokens = await login(app, user.email);
      const body = await answer(tokens.access_token);
      expect(body).toMatchObject({
        active: true,
        sub: user.id,
        client_id: 'gatehouse',
        scope: tokens.scope,
        iss: PUBLIC_URL,
        token_type: 'Bearer',
        token_use: 'access_token',
        sid: expect.any(String),
        exp: Math.floor(clock() / 1000) + tokens.expires_in,
      });
      if (tokenStrategy === 'jwt') {
        expect(body).toMatchObject({
          iat: Math.floor(clock() / 1000),
          aud: gatehouseCore(app.gatehouse).config.audience,
        });
      } else {
        expect(tokens.access_token).toMatch(/^gha/);
      }
    });

    it('names the client an access token was issued to, opaque tokens included', async () => {
      const user = await createUser(app);
      const tokens = await sessionFor(user.id, webApp.clientId);
      const body = await answer(tokens.accessToken);
      expect(body).toMatchObject({
        active: true,
        client_id: webApp.clientId,
        sub: user.id,
        sid: tokens.session.id,
      });
      // A registered client's answer is unchanged by G7: no label member.
      expect(body).not.toHaveProperty('client_label');
    });

    it('reports a first-party label apart from client_id (RFC 7662 §2.2, red-team G7)', async () => {
      const user = await createUser(app);
      const response = await postToken(app, {
        grant_type: 'password',
        username: user.email,
        password: PASSWORD,
        client_id: 'payments-service',
      });
      expect(response.statusCode).toBe(200);
      const labelled = await answer(response.json().access_token);
      // The label authenticated nothing: it is never presented as the requesting client's id.
      expect(labelled).toMatchObject({
        active: true,
        client_id: 'gatehouse',
        client_label: 'payments-service',
        sub: user.id,
      });
      // A first-party token without a label keeps its answer.
      expect(await answer((await login(app, user.email)).access_token)).not.toHaveProperty('client_label');
    });

    it('describes a client_credentials token, and forgets it once its client is removed', async () => {
      const core = gatehouseCore(app.gatehouse);
      const created = await core.oauthClients.create(
        {
          name: 'Batch job',
          confidential: true,
          grantTypes: ['client_credentials'],
          scopes: ['clothes:read'],
        },
        { actorId: null },
      );
      const issued = await postToken(
        app,
        { grant_type: 'client_credentials' },
        basic(created.client.clientId, String(created.clientSecret)),
      );
      expect(issued.statusCode).toBe(200);
      const token = issued.json().access_token;
      // Client tokens are JWTs whatever TOKEN_STRATEGY says.
      const claims = decodeJwt(token);
      const body = await answer(token);
      expect(body).toEqual({
        active: true,
        scope: 'clothes:read',
        client_id: created.client.clientId,
        sub: created.client.clientId,
        exp: claims.exp,
        iat: claims.iat,
        iss: PUBLIC_URL,
        aud: core.config.audience,
        token_type: 'Bearer',
        token_use: 'access_token',
      });
      await core.oauthClients.remove(created.client.clientId, { actorId: null });
      expect(await answer(token)).toEqual({ active: false });
    });

    it('describes a refresh token to the client it was issued to, with or without a hint', async () => {
      const user = await createUser(app);
      const tokens = await sessionFor(user.id, webApp.clientId);
      const asOwner = basic(webApp.clientId, webAppSecret);
      const expected = {
        active: true,
        scope: 'openid me',
        client_id: webApp.clientId,
        sub: user.id,
        exp: expect.any(Number),
        iss: PUBLIC_URL,
        token_use: 'refresh_token',
        sid: tokens.session.id,
      };
      expect(await answer(tokens.refreshToken, asOwner)).toEqual(expected);
      expect(await answer(tokens.refreshToken, asOwner, { token_type_hint: 'refresh_token' })).toEqual(
        expected,
      );
      // A wrong hint still finds it (RFC 7662 §2.1), and an access token is found with the refresh hint.
      expect(await answer(tokens.refreshToken, asOwner, { token_type_hint: 'access_token' })).toEqual(
        expected,
      );
      expect(await answer(tokens.accessToken, asOwner, { token_type_hint: 'refresh_token' })).toMatchObject({
        active: true,
        token_use: 'access_token',
      });
      // RFC 7662 §4: another client learns nothing about it, nor about a first-party refresh token.
      expect(await answer(tokens.refreshToken)).toEqual({ active: false });
      const firstParty = await login(app, (await createUser(app)).email);
      expect(await answer(firstParty.refresh_token, asOwner)).toEqual({ active: false });
      expect(await answer(firstParty.refresh_token)).toEqual({ active: false });
    });

    it('answers inactive for a spent, revoked or expired refresh token', async () => {
      const user = await createUser(app);
      const tokens = await sessionFor(user.id, webApp.clientId);
      const asOwner = basic(webApp.clientId, webAppSecret);
      const rotated = await postToken(
        app,
        { grant_type: 'refresh_token', refresh_token: tokens.refreshToken },
        asOwner,
      );
      expect(rotated.statusCode).toBe(200);
      const next = rotated.json().refresh_token;
      expect(await answer(tokens.refreshToken, asOwner)).toEqual({ active: false });
      expect(await answer(next, asOwner)).toMatchObject({ active: true });
      const expiring = await sessionFor(user.id, webApp.clientId);
      await gatehouseCore(app.gatehouse).sessions.revokeSessions([tokens.session.id]);
      expect(await answer(next, asOwner)).toEqual({ active: false });
      clock.advance(gatehouseCore(app.gatehouse).config.refreshIdleTtl * 1000);
      expect(await answer(expiring.refreshToken, asOwner)).toEqual({ active: false });
    });

    it('answers inactive for expired, revoked, disabled-account, unknown and foreign tokens', async () => {
      const core = gatehouseCore(app.gatehouse);
      const user = await createUser(app);
      const revoked = await login(app, user.email);
      const revoke = await app.inject({
        method: 'POST',
        url: '/revoke',
        headers: FORM,
        payload: form({ token: revoked.refresh_token }),
      });
      expect(revoke.statusCode).toBe(200);
      expect(await answer(revoked.access_token)).toEqual({ active: false });

      const disabled = await createUser(app);
      const disabledTokens = await login(app, disabled.email);
      const admin = await signIn(app, 'admin', 'users:write');
      const patch = await app.inject({
        method: 'PATCH',
        url: `/users/${disabled.id}`,
        headers: admin.headers,
        payload: { is_active: false },
      });
      expect(patch.statusCode).toBe(200);
      expect(await answer(disabledTokens.access_token)).toEqual({ active: false });

      const expiring = await login(app, (await createUser(app)).email);
      clock.advance(core.config.accessTokenTtl * 1000);
      expect(await answer(expiring.access_token)).toEqual({ active: false });

      // Same claims as one of ours, signed with a key that is not ours.
      const foreign = await new SignJWT({
        sub: user.id,
        sid: revoked.access_token,
        scope: 'me',
        client_id: resource.clientId,
        aud: core.config.audience,
        jti: 'x',
      })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setIssuer(PUBLIC_URL)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('a-secret-that-is-not-this-servers-secret'));
      for (const token of [foreign, 'garbage', `gha_${'A'.repeat(43)}`, `ghr_${'A'.repeat(43)}`]) {
        expect(await answer(token)).toEqual({ active: false });
      }
    });

    it('is for authenticated confidential clients only', async () => {
      const user = await createUser(app);
      const tokens = await login(app, user.email);
      // Form or no client authentication: 400 (RFC 6749 §5.2); after HTTP Basic: 401 with a challenge.
      const publicClient = await introspect(tokens.access_token, {}, { client_id: spa.clientId });
      expect(publicClient.statusCode).toBe(400);
      expect(publicClient.json()).toMatchObject({ error: 'invalid_client' });
      expect((await introspect(tokens.access_token, {})).statusCode).toBe(400);
      const wrong = await introspect(tokens.access_token, basic(resource.clientId, 'nope'));
      expect(wrong.statusCode).toBe(401);
      expect(wrong.headers['www-authenticate']).toMatch(/^Basic /);
      const post = await introspect(
        tokens.access_token,
        {},
        { client_id: webApp.clientId, client_secret: webAppSecret },
      );
      expect(post.json()).toMatchObject({ active: true });
    });
  },
);

/**
 * RFC 7662 §4 (abuse assignment): introspection had no limit of its own. One per client, counted
 * after it authenticated, and one per address counting only failed authentications: neither can
 * be spent by someone else (the address one only from behind the same address).
 */
describe('POST /introspect limits and bad input', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildTestServer({
      publicUrl: PUBLIC_URL,
      issuer: PUBLIC_URL,
      introspectionsPerMinute: 3,
      introspectionFailuresPerIp: 2,
      revocationsPerMinute: 3,
      revocationFailuresPerIp: 2,
    });
  });
  afterAll(async () => app?.close());

  /** A fresh confidential client: tests run shuffled, so none shares an allowance with another. */
  const confidential = async () => {
    const created = await gatehouseCore(app.gatehouse).oauthClients.create(
      { name: 'API', confidential: true, grantTypes: ['client_credentials'], scopes: ['me'] },
      { actorId: null },
    );
    return { id: created.client.clientId, secret: String(created.clientSecret) };
  };

  const call = (
    url: string,
    headers: Record<string, string>,
    payload: string,
    remoteAddress = '198.51.100.1',
  ) => app.inject({ method: 'POST', url, headers, payload, remoteAddress });

  // /revoke had no limit of its own either: the same two, on counters of its own.
  it.each(['/introspect', '/revoke'])(
    "limits each client's requests to %s, without touching another client's allowance",
    async (url) => {
      const resource = await confidential();
      const other = await confidential();
      const as = (id: string, secret: string) => ({ ...FORM, ...basic(id, secret) });
      for (let i = 0; i < 3; i++) {
        expect((await call(url, as(resource.id, resource.secret), form({ token: 'x' }))).statusCode).toBe(
          200,
        );
      }
      const refused = await call(url, as(resource.id, resource.secret), form({ token: 'x' }));
      expect(refused.statusCode).toBe(429);
      expect(refused.headers['retry-after']).toMatch(/^\d+$/);
      expect(refused.headers['cache-control']).toBe('no-store');
      expect(refused.json()).toMatchObject({ error: 'temporarily_unavailable', code: 'TOO_MANY_REQUESTS' });
      // Same address, another client: its own allowance.
      expect((await call(url, as(other.id, other.secret), form({ token: 'x' }))).statusCode).toBe(200);
    },
  );

  it.each([
    ['/introspect', '203.0.113.40'],
    ['/revoke', '203.0.113.50'],
  ])(
    'limits failed client authentications per address at %s, and counts nothing else there',
    async (url, from) => {
      const other = await confidential();
      const wrong = { ...FORM, ...basic(other.id, 'not the secret') };
      // A client's successful requests never fill the address limit...
      for (let i = 0; i < 2; i++) {
        expect((await call(url, wrong, form({ token: 'x' }), from)).statusCode).toBe(401);
      }
      // ...but two failures block the address: a right secret from there now waits too.
      const blocked = await call(
        url,
        { ...FORM, ...basic(other.id, other.secret) },
        form({ token: 'x' }),
        from,
      );
      expect(blocked.statusCode).toBe(429);
      expect(blocked.json()).toMatchObject({ error: 'temporarily_unavailable' });
      // A request that presents no secret cannot guess one: a public client's revocation at
      // logout, or a first-party label, is never refused for the guesses (review of O3).
      if (url === '/revoke') {
        const labelled = await call(url, FORM, form({ token: 'x', client_id: 'payments-service' }), from);
        expect(labelled.statusCode).toBe(200);
      }
      // Another address is not affected.
      const elsewhere = await call(
        url,
        { ...FORM, ...basic(other.id, other.secret) },
        form({ token: 'x' }),
        '203.0.113.41',
      );
      expect(elsewhere.statusCode).toBe(200);
    },
  );

  it("keeps /revoke's counters apart, and counts no allowance that others could spend", async () => {
    const resource = await confidential();
    const from = '203.0.113.60';
    const wrong = { ...FORM, ...basic(resource.id, 'not the secret') };
    for (let i = 0; i < 2; i++) {
      expect((await call('/introspect', wrong, form({ token: 'x' }), from)).statusCode).toBe(401);
    }
    expect((await call('/introspect', wrong, form({ token: 'x' }), from)).statusCode).toBe(429);
    // Failures at /introspect do not block /revoke from the same address.
    const right = { ...FORM, ...basic(resource.id, resource.secret) };
    expect((await call('/revoke', right, form({ token: 'x' }), from)).statusCode).toBe(200);
    // A first-party label or public client authenticates nothing: no per-client count, so nobody
    // can use up "payments-service"'s revocations by naming it.
    for (let i = 0; i < 5; i++) {
      const labelled = await call('/revoke', FORM, form({ token: 'x', client_id: 'payments-service' }));
      expect(labelled.statusCode).toBe(200);
    }
  });

  // RFC 7009 §2.2.1 and RFC 7662 §2.3 answer errors as RFC 6749 §5.2 JSON: never problem+json, never a 500.
  it.each(['/revoke', '/introspect'])('answers RFC 6749 §5.2 JSON to every bad input at %s', async (url) => {
    const resource = await confidential();
    const auth = basic(resource.id, resource.secret);
    const cases: Array<{ headers: Record<string, string>; payload: string; status: number; error: string }> =
      [
        {
          headers: { 'content-type': 'application/json', ...auth },
          payload: '{"token":"x"}',
          status: 400,
          error: 'invalid_request',
        },
        {
          headers: { 'content-type': 'text/plain', ...auth },
          payload: 'token=x',
          status: 400,
          error: 'invalid_request',
        },
        { headers: { ...FORM, ...auth }, payload: '', status: 400, error: 'invalid_request' },
        {
          headers: { ...FORM, ...auth },
          payload: form({ token: ['a', 'b'] }),
          status: 400,
          error: 'invalid_request',
        },
        {
          headers: { ...FORM, ...auth },
          payload: form({ token: 'x'.repeat(5000) }),
          status: 400,
          error: 'invalid_request',
        },
        {
          headers: { ...FORM, authorization: 'Basic !!!' },
          payload: form({ token: 'x' }),
          status: 401,
          error: 'invalid_client',
        },
        {
          headers: { ...FORM, authorization: 'Basic Zm9v' },
          payload: form({ token: 'x' }),
          status: 401,
          error: 'invalid_client',
        },
        {
          headers: { ...FORM, ...auth },
          payload: form({ token: 'x', client_secret: resource.secret }),
          status: 400,
          error: 'invalid_request',
        },
        {
          headers: { ...FORM, ...auth },
          payload: form({ token: 'x', client_id: 'someone-else' }),
          status: 400,
          error: 'invalid_request',
        },
        {
          headers: FORM,
          payload: form({ token: 'x', client_id: 'caf\u00e9' }),
          status: 400,
          error: 'invalid_request',
        },
        {
          headers: FORM,
          payload: form({ token: 'x', client_id: 'x'.repeat(300) }),
          status: 400,
          error: 'invalid_request',
        },
        {
          headers: FORM,
          payload: form({ token: 'x', client_id: resource.id, client_secret: 'wrong' }),
          status: 400,
          error: 'invalid_client',
        },
        // RFC 6749 §5.2 has no "too large": invalid_request, with our code BODY_TOO_LARGE.
        {
          headers: { ...FORM, ...auth },
          payload: `token=${'x'.repeat(200_000)}`,
          status: 400,
          error: 'invalid_request',
        },
      ];
    for (const [index, bad] of cases.entries()) {
      // A fresh address each: the failure limit is not what this checks.
      const response = await call(url, bad.headers, bad.payload, `192.0.2.${index + 1}`);
      expect({ index, status: response.statusCode }).toEqual({ index, status: bad.status });
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.json()).toMatchObject({ error: bad.error, error_description: expect.any(String) });
    }
  });
});
