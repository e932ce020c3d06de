import type { FastifyInstance } from 'fastify';
import { decodeProtectedHeader } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { KEY_PUBLICATION_DELAY_SECONDS } from '../../src/tokens/keyring.js';
import { rotateSigningKeys } from '../../src/tokens/rotate-keys.js';
import { createUser } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { injectFetch } from '../support/inject-fetch.js';
import { authorizationResponse, PUBLIC_URL, REDIRECT } from '../support/oauth-provider.js';

/**
 * Issue 15: with JWT_ALG=HS256, ID tokens are signed by an ES256 keyring of their own, which
 * `gatehouse rotate-keys` rotates (`rotateSigningKeys`, what the command runs; the command itself
 * is in test/cli.test.ts). A relying party (oauth4webapi) verifies ID tokens signed before and
 * after the rotation against the published JWK Set.
 */
describe.each(engines)('ID-token key rotation on an HS256 install ($name)', ({ name }) => {
  let app: FastifyInstance;
  let clock: TestClock;
  let drop: () => Promise<void> = async () => {};
  let registered: OAuthClient;
  let browser: Browser;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    clock = createTestClock();
    app = await buildTestServer(
      { publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, databaseUrl: database.url },
      { clock, scheduler: clock },
    );
    registered = (
      await gatehouseCore(app.gatehouse).oauthClients.create(
        { name: 'RP', redirectUris: [REDIRECT], scopes: ['openid', 'profile'] },
        { actorId: null },
      )
    ).client;
    const user = await createUser(app);
    browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  const options = () => ({ [oauth.customFetch]: injectFetch(app) });

  /** The relying party's view of the provider: a new object has an empty JWKS cache. */
  const discover = async () => {
    const issuer = new URL(PUBLIC_URL);
    return oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...options() }),
    );
  };

  /** The RP's client, its clock moved to the provider's test clock. */
  const rpClient = (): oauth.Client => ({
    client_id: registered.clientId,
    [oauth.clockSkew]: Math.round((clock() - Date.now()) / 1000),
  });

  /** A full code flow by the RP; returns the token response (for the signature check) and the ID token. */
  const signIn = async (as: oauth.AuthorizationServer) => {
    const client = rpClient();
    const verifier = oauth.generateRandomCodeVerifier();
    const location = await authorizationResponse(
      app,
      browser,
      registered,
      await oauth.calculatePKCECodeChallenge(verifier),
      'openid profile',
    );
    const params = oauth.validateAuthResponse(as, client, location, 'st');
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.None(),
      params,
      REDIRECT,
      verifier,
      options(),
    );
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
      expectedNonce: 'n',
      requireIdToken: true,
    });
    return { response, idToken: String(tokens.id_token) };
  };

  /** The ES256 keys' ids (the RS256 ones, for the clients that choose it, are published beside them). */
  const kids = async () =>
    (
      (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as {
        keys: { kid: string; alg: string }[];
      }
    ).keys
      .filter((key) => key.alg === 'ES256')
      .map((key) => key.kid)
      .sort();

  it('verifies ID tokens signed before and after a rotation; the retired key drops after its retention', async () => {
    const core = gatehouseCore(app.gatehouse);
    const rp = await discover();
    const before = await signIn(rp);
    const oldKid = String(decodeProtectedHeader(before.idToken).kid);
    await oauth.validateApplicationLevelSignature(rp, before.response, options());
    expect(await kids()).toEqual([oldKid]);

    const rotation = await rotateSigningKeys({
      database: core.database,
      algorithm: 'ES256',
      secret: core.config.secretKey,
      now: clock(),
      retentionSeconds: core.keyRetentionSeconds,
    });
    const keyring = await core.idTokenKeys.keyring();
    await keyring.reload(); // what every instance's 30 s reload does
    // The next key is published at once, and does not sign yet.
    expect(await kids()).toEqual([oldKid, rotation.kid].sort());
    // An RP whose JWKS cache (max-age 300 s) ran out during the 600 s publication delay refetches
    // it meanwhile (oauth4webapi's cache runs on the real clock: a new RP object stands for that).
    const refetched = await discover();
    const waiting = await signIn(refetched);
    expect(decodeProtectedHeader(waiting.idToken).kid).toBe(oldKid);
    await oauth.validateApplicationLevelSignature(refetched, waiting.response, options());

    clock.advance(KEY_PUBLICATION_DELAY_SECONDS * 1000 + 1000);
    await keyring.reload();
    // The new key signs now, and the RP knew it before its first token: no refetch needed.
    const after = await signIn(refetched);
    expect(decodeProtectedHeader(after.idToken).kid).toBe(rotation.kid);
    await oauth.validateApplicationLevelSignature(refetched, after.response, options());
    // The old key is retired, still published: tokens it signed still verify, cached or fetched now.
    await oauth.validateApplicationLevelSignature(rp, before.response, options());
    await oauth.validateApplicationLevelSignature(refetched, before.response, options());
    const fresh = await discover();
    await oauth.validateApplicationLevelSignature(fresh, before.response, options());
    expect((await core.rpLogout.check({ idTokenHint: before.idToken })).hint).toBeDefined();

    // Past the retention the retired key leaves the JWKS: its tokens no longer verify.
    clock.advance(core.keyRetentionSeconds * 1000 + 1000);
    await keyring.reload();
    expect(await kids()).toEqual([rotation.kid]);
    await expect(
      oauth.validateApplicationLevelSignature(await discover(), before.response, options()),
    ).rejects.toThrow();
    expect((await core.rpLogout.check({ idTokenHint: before.idToken })).ignored).toMatchObject([
      { parameter: 'id_token_hint', code: 'INVALID_ID_TOKEN_HINT' },
    ]);
    // The next rotation purges it from the table as well.
    const next = await rotateSigningKeys({
      database: core.database,
      algorithm: 'ES256',
      secret: core.config.secretKey,
      now: clock(),
      retentionSeconds: core.keyRetentionSeconds,
    });
    expect(next.removed).toEqual([oldKid]);
  });
});
