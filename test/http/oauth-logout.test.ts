import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, createUser, form, postToken } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import {
  FORM,
  hiddenField,
  LOGOUT_REDIRECT,
  locationOf,
  PUBLIC_URL,
  REDIRECT,
  tokensFor,
} from '../support/oauth-provider.js';

/** OpenID Connect RP-Initiated Logout 1.0 at `/oauth/logout`, with `id_token_hint`. */
describe.each(engines)('RP-initiated logout with id_token_hint ($name)', ({ name }) => {
  let app: FastifyInstance;
  let clock: TestClock;
  let drop: () => Promise<void> = async () => {};
  let spa: OAuthClient;
  let other: OAuthClient;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    clock = createTestClock();
    app = await buildTestServer(
      { publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, databaseUrl: database.url },
      { clock, scheduler: clock },
    );
    const clients = gatehouseCore(app.gatehouse).oauthClients;
    const operator = { actorId: null };
    const register = async (clientName: string) =>
      (
        await clients.create(
          {
            name: clientName,
            redirectUris: [REDIRECT],
            postLogoutRedirectUris: [LOGOUT_REDIRECT],
            scopes: ['openid', 'profile', 'email'],
          },
          operator,
        )
      ).client;
    spa = await register('Dice Stats');
    other = await register('Other App');
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  const signedIn = async () => {
    const user = await createUser(app);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    return { user, browser };
  };

  const logoutUrl = (params: Record<string, string | undefined>) => {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) if (value !== undefined) query.append(key, value);
    return `/oauth/logout?${query.toString()}`;
  };

  const works = async (accessToken: string) =>
    (await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(accessToken) })).statusCode === 200;
  const signedInStill = async (browser: Browser) =>
    (await browser.request('GET', '/users/me')).statusCode === 200;

  /** The confirmation page's form, posted back as the browser would. */
  const confirm = async (browser: Browser, page: LightMyRequestResponse) => {
    const fields: Record<string, string> = {};
    for (const field of ['id_token_hint', 'client_id', 'post_logout_redirect_uri', 'state', 'csrf_token']) {
      if (page.body.includes(`name="${field}"`)) fields[field] = hiddenField(page.body, field);
    }
    return browser.absorb(
      await app.inject({
        method: 'POST',
        url: '/oauth/logout',
        headers: { ...FORM, cookie: browser.cookieHeader() },
        payload: form(fields),
      }),
    );
  };

  const expectConfirmationPage = (page: LightMyRequestResponse) => {
    expect(page.statusCode, page.body).toBe(200);
    expect(page.headers.location).toBeUndefined();
    expect(page.body).toContain('data-testid="logout-confirm"');
  };

  it('signs out at once with a hint naming a live session of the signed-in person: that session and the browser’s end, others stay', async () => {
    const { browser } = await signedIn();
    const tokens = await tokensFor(app, browser, spa);
    // The same person signed in to the same app on another device keeps that session.
    const elsewhere = await tokensFor(app, browser, spa);
    const withOther = await tokensFor(app, browser, other);
    const done = browser.absorb(
      await browser.request(
        'GET',
        logoutUrl({
          id_token_hint: tokens.id_token,
          post_logout_redirect_uri: LOGOUT_REDIRECT,
          state: 'bye',
        }),
      ),
    );
    expect(locationOf(done).toString()).toBe(`${LOGOUT_REDIRECT}?state=bye`);
    expect(await works(tokens.access_token)).toBe(false);
    const refreshed = await postToken(app, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: spa.clientId,
    });
    expect(refreshed.json()).toMatchObject({ error: 'invalid_grant' });
    expect(await signedInStill(browser)).toBe(false);
    expect(await works(elsewhere.access_token)).toBe(true);
    expect(await works(withOther.access_token)).toBe(true);
  });

  it('accepts a logout request by form post (§2): answered by the GET, where the session cookie is sent', async () => {
    const { browser } = await signedIn();
    const tokens = await tokensFor(app, browser, spa);
    const fields = {
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: LOGOUT_REDIRECT,
      state: 'bye',
    };
    // Posted cross-site without the browser's cookie (SameSite=Lax keeps it off): answered in
    // place it would find nobody signed in and end nothing.
    const posted = await app.inject({
      method: 'POST',
      url: '/oauth/logout',
      headers: { ...FORM, origin: 'https://app.example' },
      payload: form(fields),
    });
    expect(posted.statusCode).toBe(303);
    expect(posted.headers['cache-control']).toBe('no-store');
    const to = new URL(String(posted.headers.location), PUBLIC_URL);
    expect(`${to.pathname}${to.search}`).toBe(logoutUrl(fields));
    expect(await works(tokens.access_token)).toBe(true);
    // The browser follows it with its cookie: signed out at once, back to the app.
    const done = browser.absorb(await browser.request('GET', `${to.pathname}${to.search}`));
    expect(locationOf(done).toString()).toBe(`${LOGOUT_REDIRECT}?state=bye`);
    expect(await works(tokens.access_token)).toBe(false);
    expect(await signedInStill(browser)).toBe(false);
  });

  it('accepts an expired hint (§2), and a matching client_id', async () => {
    const { browser } = await signedIn();
    const tokens = await tokensFor(app, browser, spa);
    clock.advance(301_000); // past the ID token's 300 s, inside the access token's 900 s
    expect(decodeJwt(tokens.id_token).exp).toBeLessThan(clock() / 1000);
    const done = await browser.request(
      'GET',
      logoutUrl({
        id_token_hint: tokens.id_token,
        client_id: spa.clientId,
        post_logout_redirect_uri: LOGOUT_REDIRECT,
      }),
    );
    expect(locationOf(done).toString()).toBe(LOGOUT_REDIRECT);
    expect(await works(tokens.access_token)).toBe(false);
  });

  it('signs out without redirecting when post_logout_redirect_uri is not registered exactly (§3)', async () => {
    const { browser } = await signedIn();
    const tokens = await tokensFor(app, browser, spa);
    for (const uri of ['https://evil.example/', `${LOGOUT_REDIRECT}/x`, `${LOGOUT_REDIRECT}?a=1`]) {
      const page = await browser.request(
        'GET',
        logoutUrl({ id_token_hint: tokens.id_token, post_logout_redirect_uri: uri, state: 'bye' }),
      );
      expect(page.statusCode, uri).toBe(200);
      expect(page.headers.location).toBeUndefined();
      expect(page.body).toContain('data-testid="logged-out"');
      expect(page.body).toContain('data-code="INVALID_REDIRECT_URI"');
      expect(page.body).not.toContain('evil.example');
    }
    expect(await works(tokens.access_token)).toBe(false);
  });

  describe('a hint that does not verify is ignored (§4): the person must confirm, nothing ends before', () => {
    const attempt = async (hint: (idToken: string) => Promise<string> | string, code: string) => {
      const { browser } = await signedIn();
      const tokens = await tokensFor(app, browser, spa);
      const page = await browser.request(
        'GET',
        logoutUrl({
          id_token_hint: await hint(tokens.id_token),
          post_logout_redirect_uri: LOGOUT_REDIRECT,
          state: 'bye',
        }),
      );
      expectConfirmationPage(page);
      expect(page.body).toContain(`data-code="${code}"`);
      // Without a trusted client the redirect URI cannot be checked: it is ignored too.
      expect(page.body).toContain('data-code="INVALID_REDIRECT_URI"');
      expect(await works(tokens.access_token)).toBe(true);
      expect(await signedInStill(browser)).toBe(true);
      // Confirming signs the browser out, with no redirect; the app's session is not named, so it stays.
      const done = await confirm(browser, page);
      expect(done.statusCode).toBe(200);
      expect(done.headers.location).toBeUndefined();
      expect(await signedInStill(browser)).toBe(false);
      expect(await works(tokens.access_token)).toBe(true);
    };

    it('a changed signature', () =>
      attempt((token) => {
        const [header, payload, signature = ''] = token.split('.');
        const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
        return `${header}.${payload}.${flipped}`;
      }, 'INVALID_ID_TOKEN_HINT'));

    it('a token signed by another key under our kid and issuer', () =>
      attempt(async (token) => {
        const { privateKey } = await generateKeyPair('ES256');
        const { kid } = decodeProtectedHeader(token);
        return new SignJWT(decodeJwt(token))
          .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: String(kid) })
          .sign(privateKey);
      }, 'INVALID_ID_TOKEN_HINT'));

    it('an unsigned token (alg none)', () =>
      attempt((token) => {
        const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
        return `${header}.${token.split('.')[1]}.`;
      }, 'INVALID_ID_TOKEN_HINT'));

    it('an access token (typ at+jwt) or garbage', async () => {
      const { browser } = await signedIn();
      const tokens = await tokensFor(app, browser, spa);
      await attempt(() => tokens.access_token, 'INVALID_ID_TOKEN_HINT');
      await attempt(() => 'not-a-jwt', 'INVALID_ID_TOKEN_HINT');
    });

    it('a hint older than SESSION_ABSOLUTE_TTL', () =>
      attempt(async (token) => {
        // Our key and claims, but expired longer ago than any session can last.
        const keyring = await gatehouseCore(app.gatehouse).idTokenKeys.keyring();
        const claims = decodeJwt(token);
        const ttl = gatehouseCore(app.gatehouse).config.sessionAbsoluteTtl;
        const past = Math.floor(clock() / 1000) - ttl - 3600;
        return keyring.sign({ ...claims, iat: past - 300, exp: past }, 'JWT');
      }, 'INVALID_ID_TOKEN_HINT'));

    it('a public key put in the header (jwk) is never trusted', () =>
      attempt(async (token) => {
        const { privateKey, publicKey } = await generateKeyPair('ES256');
        return new SignJWT(decodeJwt(token))
          .setProtectedHeader({ alg: 'ES256', typ: 'JWT', jwk: await exportJWK(publicKey) })
          .sign(privateKey);
      }, 'INVALID_ID_TOKEN_HINT'));
  });

  it('ignores a hint issued to another client than client_id, and checks the redirect against client_id’s', async () => {
    const { browser } = await signedIn();
    const tokens = await tokensFor(app, browser, spa);
    const page = await browser.request(
      'GET',
      logoutUrl({
        id_token_hint: tokens.id_token,
        client_id: other.clientId,
        post_logout_redirect_uri: LOGOUT_REDIRECT,
        state: 'bye',
      }),
    );
    expectConfirmationPage(page);
    expect(page.body).toContain('data-code="CLIENT_MISMATCH"');
    expect(page.body).toContain('Other App');
    expect(await works(tokens.access_token)).toBe(true);
    const done = await confirm(browser, page);
    expect(locationOf(done).toString()).toBe(`${LOGOUT_REDIRECT}?state=bye`);
    // client_id named the other app: the person's sessions with it ended, not spa's.
    expect(await works(tokens.access_token)).toBe(true);
    expect(await signedInStill(browser)).toBe(false);
  });

  it('asks for confirmation with another person’s hint, and never ends that person’s session', async () => {
    const { browser: victimBrowser } = await signedIn();
    const victim = await tokensFor(app, victimBrowser, spa);
    const { browser } = await signedIn();
    const mine = await tokensFor(app, browser, spa);
    const page = await browser.request(
      'GET',
      logoutUrl({ id_token_hint: victim.id_token, post_logout_redirect_uri: LOGOUT_REDIRECT }),
    );
    expectConfirmationPage(page);
    const done = await confirm(browser, page);
    expect(locationOf(done).toString()).toBe(LOGOUT_REDIRECT);
    expect(await works(victim.access_token)).toBe(true);
    expect(await signedInStill(victimBrowser)).toBe(true);
    // The person who confirmed is signed out, with their sessions of the hint's client.
    expect(await signedInStill(browser)).toBe(false);
    expect(await works(mine.access_token)).toBe(false);
  });

  it('asks for confirmation when the session the hint names is over already', async () => {
    const { browser } = await signedIn();
    const tokens = await tokensFor(app, browser, spa);
    await app.inject({
      method: 'POST',
      url: '/revoke',
      headers: FORM,
      payload: form({ token: tokens.refresh_token, client_id: spa.clientId }),
    });
    expect(await works(tokens.access_token)).toBe(false);
    const page = await browser.request('GET', logoutUrl({ id_token_hint: tokens.id_token }));
    expectConfirmationPage(page);
    expect(await signedInStill(browser)).toBe(true);
  });

  it('with nobody signed in in the browser, ends nothing and redirects (a hint alone is no credential)', async () => {
    const { browser } = await signedIn();
    const tokens = await tokensFor(app, browser, spa);
    const response = await app.inject({
      method: 'GET',
      url: logoutUrl({
        id_token_hint: tokens.id_token,
        post_logout_redirect_uri: LOGOUT_REDIRECT,
        state: 's',
      }),
    });
    expect(locationOf(response).toString()).toBe(`${LOGOUT_REDIRECT}?state=s`);
    expect(await works(tokens.access_token)).toBe(true);
    const plain = await app.inject({ method: 'GET', url: logoutUrl({ id_token_hint: tokens.id_token }) });
    expect(plain.statusCode).toBe(200);
    expect(plain.body).toContain('data-testid="logged-out"');
  });

  it('O5: never redirects for a disabled client, and does again once it is enabled', async () => {
    const clients = gatehouseCore(app.gatehouse).oauthClients;
    const operator = { actorId: null };
    const disabled = (
      await clients.create(
        { name: 'Lost Domain', redirectUris: [REDIRECT], postLogoutRedirectUris: [LOGOUT_REDIRECT] },
        operator,
      )
    ).client;
    await clients.setDisabled(disabled.clientId, true, operator);
    const ask = () =>
      app.inject({
        method: 'GET',
        url: logoutUrl({
          client_id: disabled.clientId,
          post_logout_redirect_uri: LOGOUT_REDIRECT,
          state: 's',
        }),
      });
    const refused = await ask();
    expect(refused.statusCode).toBe(200);
    expect(refused.headers.location).toBeUndefined();
    expect(refused.body).toContain('This app is disabled');
    await clients.setDisabled(disabled.clientId, false, operator);
    expect(locationOf(await ask()).toString()).toBe(`${LOGOUT_REDIRECT}?state=s`);
  });

  it('binds the confirmation form to the hint: swapping it breaks the token', async () => {
    const { browser } = await signedIn();
    const { browser: victimBrowser } = await signedIn();
    const victim = await tokensFor(app, victimBrowser, spa);
    const page = await browser.request('GET', logoutUrl({ client_id: spa.clientId }));
    expectConfirmationPage(page);
    const forged = await app.inject({
      method: 'POST',
      url: '/oauth/logout',
      headers: { ...FORM, cookie: browser.cookieHeader() },
      payload: form({
        client_id: spa.clientId,
        id_token_hint: victim.id_token,
        csrf_token: hiddenField(page.body, 'csrf_token'),
      }),
    });
    expect(forged.statusCode).toBe(403);
    expect(await signedInStill(browser)).toBe(true);
  });

  it('refuses a repeated or oversized parameter with an error page', async () => {
    const { browser } = await signedIn();
    const twice = await browser.request('GET', `${logoutUrl({ state: 'a' })}&state=b`);
    expect(twice.statusCode).toBe(400);
    const long = await browser.request('GET', logoutUrl({ id_token_hint: 'x'.repeat(9000) }));
    expect(long.statusCode).toBe(400);
    expect(await signedInStill(browser)).toBe(true);
  });
});

describe('RP-initiated logout when access tokens and ID tokens share one keyring (JWT_ALG=EdDSA)', () => {
  let app: FastifyInstance;
  let spa: OAuthClient;

  beforeAll(async () => {
    app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, jwtAlgorithm: 'EdDSA' });
    spa = (
      await gatehouseCore(app.gatehouse).oauthClients.create(
        { name: 'Dice Stats', redirectUris: [REDIRECT], postLogoutRedirectUris: [LOGOUT_REDIRECT] },
        { actorId: null },
      )
    ).client;
  });
  afterAll(async () => app?.close());

  it('refuses an access token signed by the same key as a hint (typ), and accepts the ID token', async () => {
    const user = await createUser(app);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    const tokens = await tokensFor(app, browser, spa);
    expect(decodeProtectedHeader(tokens.access_token).kid).toBe(decodeProtectedHeader(tokens.id_token).kid);
    const url = (hint: string) =>
      `/oauth/logout?${new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: LOGOUT_REDIRECT })}`;
    const page = await browser.request('GET', url(tokens.access_token));
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('data-code="INVALID_ID_TOKEN_HINT"');
    expect(page.body).toContain('data-testid="logout-confirm"');
    const done = await browser.request('GET', url(tokens.id_token));
    expect(locationOf(done).toString()).toBe(LOGOUT_REDIRECT);
    expect((await browser.request('GET', '/users/me')).statusCode).toBe(401);
  });
});
