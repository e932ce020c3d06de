import type { FastifyInstance } from 'fastify';
import { decodeProtectedHeader } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer } from '../../src/testing.js';
import { createUser, type SignedIn, signIn } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { injectFetch } from '../support/inject-fetch.js';
import {
  authorizationResponse,
  exchangeCode,
  PUBLIC_URL,
  pkce,
  REDIRECT,
} from '../support/oauth-provider.js';

/**
 * Red-team 2026-12i P4: OpenID Connect Core §15.1 makes RS256 mandatory for an OP, and Discovery §3
 * says `id_token_signing_alg_values_supported` MUST list it. A client chooses its ID tokens'
 * algorithm (`id_token_signed_response_alg`); a relying party that accepts RS256 alone (oauth4webapi
 * told so, as Kubernetes' default is) verifies them against the published JWK Set.
 */
describe.each(engines)('ID-token algorithms per client ($name)', ({ name }) => {
  let app: FastifyInstance;
  let drop: () => Promise<void> = async () => {};
  let admin: SignedIn;
  let browser: Browser;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, databaseUrl: database.url });
    admin = await signIn(app, 'admin');
    browser = new Browser(app);
    expect((await browser.login((await createUser(app)).email)).statusCode).toBe(204);
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  const options = () => ({ [oauth.customFetch]: injectFetch(app) });
  const discover = async () => {
    const issuer = new URL(PUBLIC_URL);
    return oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...options() }),
    );
  };
  const register = (body: object) =>
    app.inject({ method: 'POST', url: '/oauth/clients', headers: admin.headers, payload: body });
  const change = (clientId: string, body: object) =>
    app.inject({ method: 'PATCH', url: `/oauth/clients/${clientId}`, headers: admin.headers, payload: body });
  const clientOf = (clientId: string) => gatehouseCore(app.gatehouse).oauthClients.get(clientId);

  /** A code flow by an RP that accepts only `alg` for ID tokens; returns the verified ID token. */
  const signInAs = async (client: OAuthClient, alg: string) => {
    const as = await discover();
    const rp: oauth.Client = { client_id: client.clientId, id_token_signed_response_alg: alg };
    const verifier = oauth.generateRandomCodeVerifier();
    const location = await authorizationResponse(
      app,
      browser,
      client,
      await oauth.calculatePKCECodeChallenge(verifier),
      'openid profile',
    );
    const params = oauth.validateAuthResponse(as, rp, location, 'st');
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      rp,
      oauth.None(),
      params,
      REDIRECT,
      verifier,
      options(),
    );
    const tokens = await oauth.processAuthorizationCodeResponse(as, rp, response, {
      expectedNonce: 'n',
      requireIdToken: true,
    });
    // The signature against the JWK Set (processAuthorizationCodeResponse checks the claims and alg).
    await oauth.validateApplicationLevelSignature(as, response, options());
    return String(tokens.id_token);
  };

  it('discovery lists RS256 beside the default; its keys are made when a client chooses it, never by a JWKS request', async () => {
    const as = await discover();
    expect(as.id_token_signing_alg_values_supported).toEqual(['ES256', 'RS256']);
    // A server of its own: the other tests (in any order) register RS256 clients on the shared one.
    const database = await createTestDatabaseUrl(name);
    const fresh = await buildTestServer({
      publicUrl: PUBLIC_URL,
      issuer: PUBLIC_URL,
      databaseUrl: database.url,
    });
    try {
      const kinds = async () =>
        new Set(
          (await fresh.inject({ method: 'GET', url: '/.well-known/jwks.json' }))
            .json<{ keys: { kty: string; alg: string }[] }>()
            .keys.map((key) => `${key.kty}/${key.alg}`),
        );
      // Anonymous requests make no RSA key (a review's finding: each one could).
      expect(await kinds()).toEqual(new Set(['EC/ES256']));
      expect(await kinds()).toEqual(new Set(['EC/ES256']));
      const owner = await signIn(fresh, 'admin');
      const registered = await fresh.inject({
        method: 'POST',
        url: '/oauth/clients',
        headers: owner.headers,
        payload: { name: 'First RS256', redirect_uris: [REDIRECT], id_token_signed_response_alg: 'RS256' },
      });
      expect(registered.statusCode, registered.body).toBe(201);
      // Made at the registration: published before the client's first ID token.
      expect(await kinds()).toEqual(new Set(['EC/ES256', 'RSA/RS256']));
    } finally {
      await fresh.close();
      await database.drop();
    }
  });

  it('signs a client’s ID tokens with RS256 when it registered so; the default client keeps ES256', async () => {
    const created = await register({
      name: 'Cluster',
      redirect_uris: [REDIRECT],
      id_token_signed_response_alg: 'RS256',
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ id_token_signed_response_alg: 'RS256' });
    const rs256 = await clientOf(created.json<{ client_id: string }>().client_id);
    const idToken = await signInAs(rs256, 'RS256');
    expect(decodeProtectedHeader(idToken)).toMatchObject({ alg: 'RS256', typ: 'JWT' });

    const plain = await register({ name: 'Plain', redirect_uris: [REDIRECT] });
    expect(plain.json()).toMatchObject({ id_token_signed_response_alg: 'ES256' });
    const es256 = await clientOf(plain.json<{ client_id: string }>().client_id);
    expect(decodeProtectedHeader(await signInAs(es256, 'ES256')).alg).toBe('ES256');
    // An RS256-only RP is refused an ES256 token: the choice is what makes such RPs work.
    await expect(signInAs(es256, 'RS256')).rejects.toThrow(/alg/);
  });

  it('switches a client to RS256 with PATCH (audited); its earlier ES256 hint still ends its session', async () => {
    const created = await register({ name: 'Switcher', redirect_uris: [REDIRECT] });
    const clientId = created.json<{ client_id: string }>().client_id;
    const before = await signInAs(await clientOf(clientId), 'ES256');

    const changed = await change(clientId, { id_token_signed_response_alg: 'RS256' });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({
      client_id: clientId,
      id_token_signed_response_alg: 'RS256',
      disabled: false,
    });
    const after = await signInAs(await clientOf(clientId), 'RS256');
    expect(decodeProtectedHeader(after).alg).toBe('RS256');
    // Both tokens name their sessions as hints (RP-initiated logout): each keyring verifies its own.
    const logout = gatehouseCore(app.gatehouse).rpLogout;
    expect((await logout.check({ idTokenHint: before })).hint).toMatchObject({ clientId });
    expect((await logout.check({ idTokenHint: after })).hint).toMatchObject({ clientId });

    const audit = await gatehouseCore(app.gatehouse).audit.list({ targetId: clientId, limit: 50, offset: 0 });
    expect(audit.items.map((item) => [item.event, item.details])).toContainEqual([
      'oauth_client_updated',
      { client_id: clientId, id_token_signed_response_alg: 'RS256' },
    ]);
    // Repeating the stored choice changes nothing and writes no second row.
    expect((await change(clientId, { id_token_signed_response_alg: 'RS256' })).statusCode).toBe(200);
    const again = await gatehouseCore(app.gatehouse).audit.list({ targetId: clientId, limit: 50, offset: 0 });
    expect(again.items.filter((item) => item.event === 'oauth_client_updated')).toHaveLength(1);
    // null: back to the default (which follows JWT_ALG).
    const reset = await change(clientId, { id_token_signed_response_alg: null });
    expect(reset.statusCode, reset.body).toBe(200);
    expect(reset.json()).toMatchObject({ id_token_signed_response_alg: 'ES256' });
    expect(decodeProtectedHeader(await signInAs(await clientOf(clientId), 'ES256')).alg).toBe('ES256');
  });

  it.each([
    ['HS256 (a shared secret the RP would need)', { id_token_signed_response_alg: 'HS256' }],
    ['none (unsigned)', { id_token_signed_response_alg: 'none' }],
    ['EdDSA (not offered by this installation)', { id_token_signed_response_alg: 'EdDSA' }],
  ])('refuses %s at registration and in a change (400 VALIDATION_FAILED)', async (_what, body) => {
    const created = await register({ name: 'Bad', redirect_uris: [REDIRECT], ...body });
    expect(created.statusCode).toBe(400);
    expect(created.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    const existing = await register({ name: 'Good', redirect_uris: [REDIRECT] });
    const patched = await change(existing.json<{ client_id: string }>().client_id, body);
    expect(patched.statusCode).toBe(400);
    expect(patched.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('refuses an empty change, and answers 404 for an unknown client', async () => {
    const existing = await register({ name: 'Empty', redirect_uris: [REDIRECT] });
    const empty = await change(existing.json<{ client_id: string }>().client_id, {});
    expect(empty.statusCode).toBe(400);
    expect(empty.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    const unknown = await change('no-such-client', { id_token_signed_response_alg: 'RS256' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'CLIENT_NOT_FOUND' });
  });

  it('reads the client’s keyring before the code is spent: a failure there leaves the code for the retry', async () => {
    const created = await register({
      name: 'Retry',
      redirect_uris: [REDIRECT],
      id_token_signed_response_alg: 'RS256',
    });
    const client = await clientOf(created.json<{ client_id: string }>().client_id);
    const { verifier, challenge } = pkce();
    const location = await authorizationResponse(app, browser, client, challenge, 'openid');
    const code = String(location.searchParams.get('code'));
    const keys = gatehouseCore(app.gatehouse).idTokenKeys;
    const keyring = keys.keyring;
    // As when the RS256 keys are first made and the database does not answer.
    keys.keyring = async () => {
      throw new Error('the database is unreachable');
    };
    try {
      const failed = await exchangeCode(app, client, code, verifier);
      expect(failed.statusCode).toBeGreaterThanOrEqual(500);
    } finally {
      keys.keyring = keyring;
    }
    // The retry is an exchange, not a replay: the code was never spent.
    const retried = await exchangeCode(app, client, code, verifier);
    expect(retried.statusCode, retried.body).toBe(200);
    expect(decodeProtectedHeader(retried.json<{ id_token: string }>().id_token).alg).toBe('RS256');
  });
});
