/**
 * Gatehouse as an OpenID Connect provider, end to end: a real relying party (oauth4webapi, in
 * this process, with its callback served by a small HTTP server of its own) and a person in
 * headless Chromium go through login → consent → code → tokens → userinfo → refresh →
 * RP-initiated logout with `id_token_hint`, against a real listening Gatehouse.
 *
 * Needs Debian's Chromium (`apt-get install -y chromium`); it is never downloaded.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { createUser, PASSWORD } from '../support/accounts.js';
import { launchChromium, runBrowserTests } from '../support/browser.js';

const UI_TIMEOUT = 15_000;

/** A free loopback port (the issuer URL must be known before the server is built). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

describe.runIf(runBrowserTests)('OpenID Connect provider in a real browser with oauth4webapi', () => {
  let app: FastifyInstance | undefined;
  let rp: Server | undefined;
  let browser: Browser | undefined;
  let issuer = '';
  let rpBase = '';
  /** The callback URLs the relying party received, newest last. */
  const callbacks: URL[] = [];
  const pageFailures: string[] = [];

  beforeAll(async () => {
    // The relying party's own server: records each callback and shows a page.
    rp = createServer((request, response) => {
      callbacks.push(new URL(request.url ?? '/', rpBase));
      response.writeHead(200, { 'content-type': 'text/html' }).end('<p data-testid="rp">relying party</p>');
    });
    await new Promise<void>((resolve) => rp?.listen(0, '127.0.0.1', resolve));
    rpBase = `http://127.0.0.1:${(rp.address() as AddressInfo).port}`;
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    app = await buildTestServer({ publicUrl: issuer, issuer });
    await app.listen({ port, host: '127.0.0.1' });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await new Promise((resolve) => rp?.close(resolve));
  });

  it('login → consent → code → tokens → userinfo → refresh → logout', async () => {
    if (app === undefined || browser === undefined) throw new Error('not started');
    const user = await createUser(app);
    const registered = await gatehouseCore(app.gatehouse).oauthClients.create(
      {
        name: 'Dice Stats SPA',
        redirectUris: [`${rpBase}/callback`],
        postLogoutRedirectUris: [`${rpBase}/signed-out`],
        scopes: ['openid', 'profile', 'email'],
      },
      { actorId: null },
    );
    const client: oauth.Client = { client_id: registered.client.clientId };
    const insecure = { [oauth.allowInsecureRequests]: true };

    // Discovery (OIDC Discovery §4).
    const issuerUrl = new URL(issuer);
    const as = await oauth.processDiscoveryResponse(
      issuerUrl,
      await oauth.discoveryRequest(issuerUrl, { algorithm: 'oidc', ...insecure }),
    );
    expect(as.authorization_endpoint).toBe(`${issuer}/authorize`);

    // The authorization request, PKCE S256, state and nonce.
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const authorizationUrl = new URL(String(as.authorization_endpoint));
    authorizationUrl.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: `${rpBase}/callback`,
      response_type: 'code',
      scope: 'openid profile email',
      state,
      nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();

    const context = await browser.newContext();
    const page: Page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT);
    page.on('pageerror', (error) => pageFailures.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
        pageFailures.push(`CSP: ${message.text()}`);
      }
    });

    // Not signed in: the provider sends the browser to its login page, which comes back.
    await page.goto(authorizationUrl.toString());
    await page.getByTestId('email-input').fill(user.email);
    await page.getByTestId('password-input').fill(PASSWORD);
    await page.getByTestId('login-button').click();

    // Consent page, then back at the relying party with a code.
    await page.getByTestId('consent-client').waitFor();
    expect(await page.getByTestId('consent-client').textContent()).toBe('Dice Stats SPA');
    await page.getByTestId('consent-allow').click();
    await page
      .waitForURL((url) => url.href.startsWith(rpBase))
      .catch(async (error: unknown) => {
        throw new Error(
          `not back at the relying party: ${page.url()} ${await page.content()} ${pageFailures.join()}`,
          {
            cause: error,
          },
        );
      });
    await page.getByTestId('rp').waitFor();
    const callback = callbacks.findLast((url) => url.pathname === '/callback');
    if (callback === undefined) throw new Error('no callback');
    expect(callback.href).toBe(page.url());

    // oauth4webapi checks state and iss (RFC 9207), then redeems the code with the verifier.
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const tokenResponse = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.None(),
      params,
      `${rpBase}/callback`,
      verifier,
      insecure,
    );
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, tokenResponse, {
      expectedNonce: nonce,
      requireIdToken: true,
    });
    const claims = oauth.getValidatedIdTokenClaims(tokens);
    expect(claims?.sub).toBe(user.id);
    expect(claims?.nonce).toBe(nonce);

    // The ID token's signature, against the published JWK Set (ES256: this server's JWT_ALG is HS256).
    const verified = await jwtVerify(
      String(tokens.id_token),
      createRemoteJWKSet(new URL(String(as.jwks_uri))),
      {
        issuer,
        audience: client.client_id,
      },
    );
    expect(verified.protectedHeader.alg).toBe('ES256');

    // UserInfo (OIDC Core §5.3).
    const info = await oauth.processUserInfoResponse(
      as,
      client,
      user.id,
      await oauth.userInfoRequest(as, client, tokens.access_token, insecure),
    );
    expect(info).toMatchObject({ sub: user.id, email: user.email });

    // Refresh (rotation: a new refresh token each time).
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), String(tokens.refresh_token), insecure),
    );
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);

    // RP-initiated logout with the ID token as id_token_hint: it names this person's live session
    // with the app, so the provider signs out without asking and comes back to the registered URI.
    const logout = new URL(String(as.end_session_endpoint));
    logout.search = new URLSearchParams({
      id_token_hint: String(tokens.id_token),
      client_id: client.client_id,
      post_logout_redirect_uri: `${rpBase}/signed-out`,
      state: 'bye',
    }).toString();
    await page.goto(logout.toString());
    await page.waitForURL(`${rpBase}/signed-out?state=bye`);
    expect(callbacks.findLast((url) => url.pathname === '/signed-out')?.searchParams.get('state')).toBe(
      'bye',
    );

    // The provider's browser session ended too: the next authorization request asks to sign in.
    await page.goto(authorizationUrl.toString());
    await page.getByTestId('email-input').waitFor();

    // Every token of the app's session is dead now.
    const after = await oauth.refreshTokenGrantRequest(
      as,
      client,
      oauth.None(),
      String(refreshed.refresh_token),
      insecure,
    );
    await expect(oauth.processRefreshTokenResponse(as, client, after)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect(pageFailures).toEqual([]);
    await context.close();
  });
});
