import type { FastifyInstance } from 'fastify';
import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { createUser, form, login, postToken, signIn } from '../support/accounts.js';
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
      expect(await answer(tokens.accessToken)).toMatchObject({
        active: true,
        client_id: webApp.clientId,
        sub: user.id,
        sid: tokens.session.id,
      });
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
      const publicClient = await introspect(tokens.access_token, {}, { client_id: spa.clientId });
      expect(publicClient.statusCode).toBe(401);
      expect(publicClient.json()).toMatchObject({ error: 'invalid_client' });
      expect((await introspect(tokens.access_token, {})).statusCode).toBe(401);
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
