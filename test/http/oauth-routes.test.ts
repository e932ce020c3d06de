import type { FastifyInstance } from 'fastify';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JwtAlgorithm } from '../../src/config/config.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, form, PASSWORD, postToken } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { injectFetch } from '../support/inject-fetch.js';

const PUBLIC_URL = 'https://auth.example.test';

/** Discovers `app` the way an OAuth client does (RFC 8414), through `app.inject`. */
async function discover(app: FastifyInstance) {
  const issuer = new URL(PUBLIC_URL);
  const response = await oauth.discoveryRequest(issuer, {
    algorithm: 'oauth2',
    [oauth.customFetch]: injectFetch(app),
  });
  return oauth.processDiscoveryResponse(issuer, response);
}

/**
 * The password grant (oauth4webapi has no helper for it: OAuth 2.1 drops it), its response parsed
 * by oauth4webapi as any token endpoint response.
 */
async function passwordGrant(
  app: FastifyInstance,
  as: oauth.AuthorizationServer,
  clientId: string,
  email: string,
) {
  const response = await injectFetch(app)(`${PUBLIC_URL}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ grant_type: 'password', username: email, password: PASSWORD, client_id: clientId }),
  });
  return oauth.processGenericTokenEndpointResponse(as, { client_id: clientId }, response);
}

describe.each<JwtAlgorithm>(['EdDSA', 'ES256', 'RS256'])('RFC 9068 access tokens with %s', (algorithm) => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ jwtAlgorithm: algorithm, publicUrl: PUBLIC_URL, issuer: PUBLIC_URL });
  });
  afterAll(async () => app.close());

  it('passes oauth4webapi validateJwtAccessToken, with the client_id of the client that asked', async () => {
    const user = await createUser(app);
    const as = await discover(app);
    expect(as.jwks_uri).toBe(`${PUBLIC_URL}/.well-known/jwks.json`);
    const tokens = await passwordGrant(app, as, 'dice-bot', user.email);
    const request = new Request(`${PUBLIC_URL}/users/me`, { headers: bearer(tokens.access_token) });
    const claims = await oauth.validateJwtAccessToken(as, request, 'gatehouse-api', {
      [oauth.customFetch]: injectFetch(app),
      signingAlgorithms: [algorithm],
    });
    expect(claims).toMatchObject({
      iss: PUBLIC_URL,
      sub: user.id,
      client_id: 'dice-bot',
      aud: 'gatehouse-api',
    });
    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ alg: algorithm, typ: 'at+jwt' });
    // The server accepts its own token too.
    expect(
      (await app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) }))
        .statusCode,
    ).toBe(200);
  });
});

describe.each(engines)('OAuth endpoints ($name)', ({ name }) => {
  let app: FastifyInstance;
  let as: oauth.AuthorizationServer;
  let drop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, databaseUrl: database.url });
    as = await discover(app);
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  const revoke = (token: string, clientId = 'gatehouse', hint?: string) =>
    oauth.revocationRequest(as, { client_id: clientId }, oauth.None(), token, {
      [oauth.customFetch]: injectFetch(app),
      ...(hint === undefined ? {} : { additionalParameters: { token_type_hint: hint } }),
    });

  it('publishes RFC 8414 metadata from PUBLIC_URL, never from the Host header', async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/.well-known/oauth-authorization-server',
      headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' },
    });
    expect(response.json()).toEqual({
      issuer: PUBLIC_URL,
      authorization_endpoint: `${PUBLIC_URL}/authorize`,
      token_endpoint: `${PUBLIC_URL}/token`,
      userinfo_endpoint: `${PUBLIC_URL}/userinfo`,
      revocation_endpoint: `${PUBLIC_URL}/revoke`,
      jwks_uri: `${PUBLIC_URL}/.well-known/jwks.json`,
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'password'],
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      scopes_supported: expect.arrayContaining(['openid', 'me', 'clothes:read']),
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      introspection_endpoint: `${PUBLIC_URL}/introspect`,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      service_documentation: `${PUBLIC_URL}/docs`,
    });
    // HS256: the shared secret is never published; the JWK Set holds only the ID tokens' ES256 keys
    // (RS256 ones too once a client chose RS256).
    const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
    expect(jwks.keys.map((key: { alg?: string; kty: string }) => [key.kty, key.alg])).toEqual([
      ['EC', 'ES256'],
    ]);
  });

  it('uses the first-party client_id when the client names none', async () => {
    const user = await createUser(app);
    const response = await postToken(app, {
      grant_type: 'password',
      username: user.email,
      password: PASSWORD,
    });
    expect(decodeJwt(response.json().access_token)).toMatchObject({
      client_id: 'gatehouse',
      iss: PUBLIC_URL,
      jti: expect.any(String),
      iat: expect.any(Number),
    });
  });

  it.each(['refresh_token', 'access_token'] as const)(
    'revoking the %s ends the whole session (access and refresh token)',
    async (kind) => {
      const user = await createUser(app);
      const tokens = await passwordGrant(app, as, 'gatehouse', user.email);
      // A wrong hint is only a hint (RFC 7009 §2.1).
      const wrongHint = kind === 'refresh_token' ? 'access_token' : 'refresh_token';
      const token = kind === 'refresh_token' ? tokens.refresh_token : tokens.access_token;
      await oauth.processRevocationResponse(await revoke(String(token), 'gatehouse', wrongHint));
      // Revoking it again changes nothing (the session is already over) and still answers 200.
      expect(
        await gatehouseCore(app.gatehouse).sessions.revokeToken(String(token), { clientId: 'gatehouse' }),
      ).toEqual({
        revoked: false,
      });
      await oauth.processRevocationResponse(await revoke(String(token)));
      const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) });
      expect(me.statusCode).toBe(401);
      const refreshed = await postToken(app, {
        grant_type: 'refresh_token',
        refresh_token: String(tokens.refresh_token),
      });
      expect(refreshed.json()).toMatchObject({ error: 'invalid_grant' });
    },
  );

  it('answers 200 for unknown tokens and leaves tokens of another client alone', async () => {
    await oauth.processRevocationResponse(await revoke('not-a-token'));
    await oauth.processRevocationResponse(await revoke('not-a-token', 'gatehouse', 'unknown_hint'));
    await oauth.processRevocationResponse(
      await revoke(`ghr_${'A'.repeat(43)}`, 'gatehouse', 'refresh_token'),
    );
    const user = await createUser(app);
    const tokens = await passwordGrant(app, as, 'app-one', user.email);
    await oauth.processRevocationResponse(await revoke(tokens.access_token, 'app-two'));
    const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) });
    expect(me.statusCode).toBe(200);
    await oauth.processRevocationResponse(await revoke(tokens.access_token, 'app-one'));
    const after = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) });
    expect(after.statusCode).toBe(401);
  });

  it('refuses bad revocation requests in RFC 6749 shape', async () => {
    const post = (payload: string, headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/revoke', headers, payload });
    const formType = { 'content-type': 'application/x-www-form-urlencoded' };
    const missing = await post(form({ token_type_hint: 'access_token' }), formType);
    expect(missing.statusCode).toBe(400);
    expect(missing.headers['cache-control']).toBe('no-store');
    expect(missing.json()).toMatchObject({ error: 'invalid_request' });
    const json = await post(JSON.stringify({ token: 'x' }), { 'content-type': 'application/json' });
    expect(json.json()).toMatchObject({ error: 'invalid_request' });
    const secret = await post(form({ token: 'x', client_id: 'a', client_secret: 's' }), formType);
    expect(secret.statusCode).toBe(400);
    expect(secret.headers['www-authenticate']).toBeUndefined();
    expect(secret.json()).toMatchObject({ error: 'invalid_client' });
    const basic = await post(form({ token: 'x' }), { ...formType, authorization: 'Basic YTpi' });
    expect(basic.statusCode).toBe(401);
    expect(basic.headers['www-authenticate']).toMatch(/^Basic /);
    // oauth4webapi surfaces the RFC 6749 error to its caller.
    const refused = await oauth.revocationRequest(as, { client_id: 'c' }, oauth.ClientSecretPost('s'), 'x', {
      [oauth.customFetch]: injectFetch(app),
    });
    await expect(oauth.processRevocationResponse(refused)).rejects.toMatchObject({
      error: 'invalid_client',
      status: 400,
    });
  });

  it("accepts Swagger UI's empty HTTP Basic credentials, and takes client_id from Basic", async () => {
    const user = await createUser(app);
    const grant = (authorization: string) =>
      postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD }, { authorization });
    // Swagger UI's default "Authorization header" mode sends Basic base64(":") with empty fields.
    const empty = await grant(`Basic ${Buffer.from(':').toString('base64')}`);
    expect(empty.statusCode).toBe(200);
    expect(decodeJwt(empty.json().access_token).client_id).toBe('gatehouse');
    const named = await grant(`Basic ${Buffer.from('my%20app:').toString('base64')}`);
    expect(decodeJwt(named.json().access_token).client_id).toBe('my app');
    const secret = await grant(`Basic ${Buffer.from('my-app:s3cret').toString('base64')}`);
    expect(secret.statusCode).toBe(401);
    expect(secret.json()).toMatchObject({ error: 'invalid_client' });
    expect(secret.headers['www-authenticate']).toMatch(/^Basic /);
  });

  it('refuses client authentication it cannot check on /token too', async () => {
    const user = await createUser(app);
    const response = await postToken(app, {
      grant_type: 'password',
      username: user.email,
      password: PASSWORD,
      client_id: 'x',
      client_secret: 'guess',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'invalid_client' });
  });
});
