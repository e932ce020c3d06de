/**
 * Gatehouse as an OpenID Connect provider, end to end: a real relying party (oauth4webapi, in
 * this process, with its callback served by a small HTTP server of its own) and a person in
 * headless Chromium go through login → consent → code → tokens → userinfo → refresh →
 * RP-initiated logout with `id_token_hint`, against a real listening Gatehouse; and `prompt=login`,
 * which asks for the password again although the browser is signed in.
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
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { createUser, PASSWORD } from '../support/accounts.js';
import { launchChromium, runBrowserTests } from '../support/browser.js';

const UI_TIMEOUT = 15_000;
const insecure = { [oauth.allowInsecureRequests]: true };

/** An authorization request (PKCE S256, state, nonce) the relying party sends the browser to. */
async function authorizationRequest(
  as: oauth.AuthorizationServer,
  client: oauth.Client,
  redirectUri: string,
  extra: Record<string, string> = {},
) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(String(as.authorization_endpoint));
  url.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid profile email',
    state,
    nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  return { url, verifier, state, nonce };
}

/** What oauth4webapi makes of the callback: state and iss checked (RFC 9207), the code redeemed. */
async function redeem(
  as: oauth.AuthorizationServer,
  client: oauth.Client,
  callback: URL,
  redirectUri: string,
  request: { verifier: string; state: string; nonce: string },
) {
  const params = oauth.validateAuthResponse(as, client, callback, request.state);
  const tokenResponse = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.None(),
    params,
    redirectUri,
    request.verifier,
    insecure,
  );
  return oauth.processAuthorizationCodeResponse(as, client, tokenResponse, {
    expectedNonce: request.nonce,
    requireIdToken: true,
  });
}

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
  // Moved by hand so that a second sign-in has a later `auth_time` (whole seconds) than the first.
  let clock: TestClock;
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
    clock = createTestClock();
    app = await buildTestServer({ publicUrl: issuer, issuer }, { clock });
    await app.listen({ port, host: '127.0.0.1' });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await new Promise((resolve) => rp?.close(resolve));
  });

  /**
   * A new account, a registered public client with its metadata discovered (OIDC Discovery §4),
   * and a fresh browser context whose page errors and CSP violations land in `pageFailures`.
   */
  const startRelyingParty = async () => {
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
    const issuerUrl = new URL(issuer);
    const as = await oauth.processDiscoveryResponse(
      issuerUrl,
      await oauth.discoveryRequest(issuerUrl, { algorithm: 'oidc', ...insecure }),
    );
    const context = await browser.newContext();
    const page: Page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT);
    page.on('pageerror', (error) => pageFailures.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
        pageFailures.push(`CSP: ${message.text()}`);
      }
    });
    return { user, client, as, context, page };
  };

  it('login → consent → code → tokens → userinfo → refresh → logout', async () => {
    const { user, client, as, context, page } = await startRelyingParty();
    expect(as.authorization_endpoint).toBe(`${issuer}/authorize`);

    // The authorization request, PKCE S256, state and nonce.
    const authorization = await authorizationRequest(as, client, `${rpBase}/callback`);
    const authorizationUrl = authorization.url;

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
    const tokens = await redeem(as, client, callback, `${rpBase}/callback`, authorization);
    const claims = oauth.getValidatedIdTokenClaims(tokens);
    expect(claims?.sub).toBe(user.id);
    expect(claims?.nonce).toBe(authorization.nonce);

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

  it('prompt=login asks for the password again although the browser is signed in, then continues to the app', async () => {
    const { user, client, as, context, page } = await startRelyingParty();
    const callbacksSoFar = () => callbacks.filter((url) => url.pathname === '/callback').length;
    /** The callback after the browser came back to the relying party, redeemed. */
    const backAtTheApp = async (request: Awaited<ReturnType<typeof authorizationRequest>>) => {
      await page.waitForURL((url) => url.href.startsWith(rpBase));
      const callback = callbacks.findLast((url) => url.pathname === '/callback');
      if (callback === undefined) throw new Error('no callback');
      return oauth.getValidatedIdTokenClaims(
        await redeem(as, client, callback, `${rpBase}/callback`, request),
      );
    };

    // Not signed in yet, with prompt=login: one login form, then consent, then the app (the sign-in
    // just made is the fresh one prompt=login asks for; a second form would be a loop).
    const first = await authorizationRequest(as, client, `${rpBase}/callback`, { prompt: 'login' });
    await page.goto(first.url.toString());
    await page.getByTestId('email-input').fill(user.email);
    await page.getByTestId('password-input').fill(PASSWORD);
    await page.getByTestId('login-button').click();
    await page.getByTestId('consent-client').or(page.getByTestId('reauthenticate-note')).waitFor();
    expect(await page.getByTestId('reauthenticate-note').count()).toBe(0);
    // A public client on a loopback redirect cannot prove which app receives the code (RFC 8252
    // §8.6): no "remember" box, the consent page every time.
    expect(await page.getByTestId('consent-not-remembered').count()).toBe(1);
    await page.getByTestId('consent-allow').click();
    const firstClaims = await backAtTheApp(first);
    expect(firstClaims?.sub).toBe(user.id);
    const firstAuthTime = Number(firstClaims?.auth_time);

    // Signed in: without prompt=login no login form, only the consent page, and the sign-in's
    // auth_time is the first one's.
    clock.advance(5_000);
    const silent = await authorizationRequest(as, client, `${rpBase}/callback`);
    await page.goto(silent.url.toString());
    await page.getByTestId('consent-client').waitFor();
    expect(await page.getByTestId('email-input').count()).toBe(0);
    await page.getByTestId('consent-allow').click();
    expect(Number((await backAtTheApp(silent))?.auth_time)).toBe(firstAuthTime);

    // With prompt=login the same live session gets the login form again, not "signed in as".
    const again = await authorizationRequest(as, client, `${rpBase}/callback`, { prompt: 'login' });
    await page.goto(again.url.toString());
    await page.getByTestId('reauthenticate-note').waitFor();
    expect(await page.getByTestId('signed-in-as').count()).toBe(0);
    const seen = callbacksSoFar();

    // A wrong password keeps the person on the form: the app receives nothing.
    await page.getByTestId('email-input').fill(user.email);
    await page.getByTestId('password-input').fill(`${PASSWORD}-wrong`);
    await page.getByTestId('login-button').click();
    await page
      .getByTestId('form-error')
      .getByText(/invalid email or password/i)
      .waitFor();
    expect(page.url().startsWith(issuer)).toBe(true);
    expect(callbacksSoFar()).toBe(seen);

    // The right one continues (through the consent page) to the app with the new sign-in's auth_time.
    await page.getByTestId('password-input').fill(PASSWORD);
    await page.getByTestId('login-button').click();
    await page.getByTestId('consent-allow').click();
    const againClaims = await backAtTheApp(again);
    expect(againClaims?.sub).toBe(user.id);
    expect(Number(againClaims?.auth_time)).toBeGreaterThanOrEqual(firstAuthTime + 5);
    expect(callbacksSoFar()).toBe(seen + 1);
    expect(pageFailures).toEqual([]);
    await context.close();
  });
});
