import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import {
  MAX_LIVE_CODES_PER_CLIENT,
  REAUTHENTICATION_WINDOW_SECONDS,
} from '../../src/oauth/authorization-server.js';
import { ID_TOKEN_HINT_FAILURES_PER_MINUTE } from '../../src/oauth/id-token-hint.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { createOAuthGrantStore } from '../../src/storage/oauth-grant-store.js';
import { createSessionStore } from '../../src/storage/session-store.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, createUser, form, PASSWORD, postToken } from '../support/accounts.js';
import { createWriteFault } from '../support/audit-fault.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import {
  authorizeUrl,
  FORM,
  hiddenField,
  LOGOUT_REDIRECT,
  locationOf,
  PUBLIC_URL,
  pkce,
  REDIRECT,
} from '../support/oauth-provider.js';
import { createSoftAuthenticator } from '../support/soft-authenticator.js';

describe.each(engines)('OAuth 2.1 / OpenID Connect provider ($name)', ({ name }) => {
  let app: FastifyInstance;
  let clock: TestClock;
  let drop: () => Promise<void> = async () => {};
  let spa: OAuthClient;
  let other: OAuthClient;
  let service: OAuthClient;
  let serviceSecret: string;

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
    spa = (
      await clients.create(
        {
          name: 'Dice <Stats>',
          redirectUris: [REDIRECT],
          postLogoutRedirectUris: [LOGOUT_REDIRECT],
          scopes: ['openid', 'profile', 'email', 'me'],
        },
        operator,
      )
    ).client;
    other = (await clients.create({ name: 'Other', redirectUris: [REDIRECT] }, operator)).client;
    const created = await clients.create(
      { name: 'Backend', redirectUris: [REDIRECT], confidential: true },
      operator,
    );
    service = created.client;
    serviceSecret = String(created.clientSecret);
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  const request = (client: OAuthClient, challenge: string, extra: Record<string, string | undefined> = {}) =>
    authorizeUrl({
      response_type: 'code',
      client_id: client.clientId,
      redirect_uri: REDIRECT,
      scope: 'openid profile email',
      state: 'st-123',
      nonce: 'n-456',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...extra,
    });

  const signedIn = async (options: { verified?: boolean } = {}) => {
    const user = await createUser(app, options);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    return { user, browser };
  };

  /** Consent page → allow → the redirect carrying the code. */
  const consent = async (browser: Browser, url: string, decision = 'allow', remember = true) => {
    const page = await browser.request('GET', url);
    expect(page.statusCode).toBe(200);
    const fields = [
      'response_type',
      'client_id',
      'redirect_uri',
      'scope',
      'state',
      'nonce',
      'code_challenge',
      'code_challenge_method',
      'csrf_token',
    ];
    const body: Record<string, string> = { decision };
    for (const name of fields) {
      // The form carries redirect_uri only when the request did (RFC 6749 §4.1.3).
      if (name === 'redirect_uri' && !page.body.includes('name="redirect_uri"')) continue;
      body[name] = hiddenField(page.body, name);
    }
    if (remember) body.remember = 'on';
    return browser.absorb(
      await app.inject({
        method: 'POST',
        url: '/authorize',
        headers: { ...FORM, cookie: browser.cookieHeader() },
        payload: form(body),
      }),
    );
  };

  const codeFor = async (browser: Browser, client: OAuthClient, challenge: string) => {
    const first = await browser.request('GET', request(client, challenge));
    const answer = first.statusCode === 200 ? await consent(browser, request(client, challenge)) : first;
    const location = locationOf(answer);
    expect(location.origin + location.pathname).toBe(REDIRECT);
    return String(location.searchParams.get('code'));
  };

  const exchange = (
    client: OAuthClient,
    code: string,
    verifier: string | undefined,
    extra: Record<string, string> = {},
  ) =>
    postToken(app, {
      grant_type: 'authorization_code',
      client_id: client.clientId,
      code,
      redirect_uri: REDIRECT,
      ...(verifier === undefined ? {} : { code_verifier: verifier }),
      ...extra,
    });

  it('runs the code flow: consent page, code with state and iss, tokens, ID token, userinfo, refresh', async () => {
    const { user, browser } = await signedIn();
    const { verifier, challenge } = pkce();
    const page = await browser.request('GET', request(spa, challenge));
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    // Clickjacking (RFC 9700 §4.16): the consent page can never be framed.
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['content-security-policy']).toContain("form-action 'self' https://app.example");
    expect(page.headers['x-frame-options']).toBe('DENY');
    // The client's name is shown escaped.
    expect(page.body).toContain('Dice &lt;Stats&gt;');
    expect(page.body).not.toContain('<Stats>');
    const answer = locationOf(await consent(browser, request(spa, challenge)));
    expect(answer.searchParams.get('state')).toBe('st-123');
    expect(answer.searchParams.get('iss')).toBe(PUBLIC_URL);
    const code = String(answer.searchParams.get('code'));

    const tokens = await exchange(spa, code, verifier);
    expect(tokens.statusCode).toBe(200);
    const body = tokens.json();
    expect(body.scope).toBe('openid profile email');
    // With HS256 access tokens, ID tokens are signed with a published ES256 key.
    expect(decodeProtectedHeader(body.id_token)).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
    const { payload } = await jwtVerify(body.id_token, createLocalJWKSet(jwks), {
      issuer: PUBLIC_URL,
      audience: spa.clientId,
      currentDate: new Date(clock()),
    });
    expect(payload).toMatchObject({ sub: user.id, nonce: 'n-456', azp: spa.clientId, amr: ['pwd'] });

    const info = await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(body.access_token) });
    expect(info.json()).toEqual({ sub: user.id, email: user.email, email_verified: false });
    // OIDC Core §5.3.1: POST too, with or without a form body.
    for (const extra of [{}, { headers: FORM, payload: '' }]) {
      const posted = await app.inject({
        method: 'POST',
        url: '/userinfo',
        ...extra,
        headers: { ...bearer(body.access_token), ...('headers' in extra ? extra.headers : {}) },
      });
      expect(posted.statusCode).toBe(200);
      expect(posted.headers['cache-control']).toBe('no-store');
      expect(posted.json()).toEqual(info.json());
    }
    // RFC 6750 §3.1: the person's session cookie alone is no access token here: the bare
    // challenge, not a scope error about a token never sent (standards audit 2026-12-05 S10).
    for (const method of ['GET', 'POST'] as const) {
      const cookieOnly = await browser.request(method, '/userinfo');
      expect([cookieOnly.statusCode, cookieOnly.headers['www-authenticate']]).toEqual([
        401,
        'Bearer realm="gatehouse"',
      ]);
    }
    // The token has no `me` scope: account routes stay closed to it.
    const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(body.access_token) });
    expect(me.statusCode).toBe(403);
    // Nor can it step the person's session up or sign them out everywhere.
    const everywhere = await app.inject({
      method: 'POST',
      url: '/auth/logout-all',
      headers: bearer(body.access_token),
    });
    expect(everywhere.statusCode).toBe(403);
    const stepUp = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate',
      headers: bearer(body.access_token),
      payload: { current_password: 'irrelevant' },
    });
    expect(stepUp.statusCode).toBe(403);

    const refreshed = await postToken(app, {
      grant_type: 'refresh_token',
      refresh_token: body.refresh_token,
      client_id: spa.clientId,
    });
    expect(refreshed.statusCode).toBe(200);
    // OpenID Connect's scopes survive the refresh: no role grants them, so the role filter took
    // them out (scope "" and /userinfo 403 after the app's first refresh).
    expect(refreshed.json().scope).toBe('openid profile email');
    const userInfo = (token: string) =>
      app.inject({ method: 'GET', url: '/userinfo', headers: bearer(token) });
    expect((await userInfo(refreshed.json().access_token)).statusCode).toBe(200);
    // RFC 6749 §6: a narrower scope asked at refresh is the new access token's; the refresh token
    // keeps the scope granted, so the next refresh may ask for all of it again.
    const narrowed = await postToken(app, {
      grant_type: 'refresh_token',
      refresh_token: refreshed.json().refresh_token,
      client_id: spa.clientId,
      scope: 'openid',
    });
    expect(narrowed.json().scope).toBe('openid');
    const narrowInfo = await userInfo(narrowed.json().access_token);
    expect(narrowInfo.json()).toEqual({ sub: user.id });
    const widened = await postToken(app, {
      grant_type: 'refresh_token',
      refresh_token: narrowed.json().refresh_token,
      client_id: spa.clientId,
    });
    expect(widened.json().scope).toBe('openid profile email');
    // Bound to the client: another client cannot use it.
    const stolen = await postToken(app, {
      grant_type: 'refresh_token',
      refresh_token: widened.json().refresh_token,
      client_id: other.clientId,
    });
    expect(stolen.json()).toMatchObject({ error: 'invalid_grant' });

    // Consent is remembered for this scope set: the next request goes straight back with a code.
    const again = await browser.request('GET', request(spa, pkce().challenge));
    expect(locationOf(again).searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // A wider scope set asks again.
    const wider = await browser.request('GET', request(spa, pkce().challenge, { scope: 'openid me' }));
    expect(wider.statusCode).toBe(200);
  });

  it('never answers from a remembered consent for a public client on a private-use scheme or loopback redirect (RFC 8252 §8.6)', async () => {
    const NATIVE = 'com.example.notes:/cb';
    const LOOPBACK = 'http://127.0.0.1/cb';
    // https on a loopback host too: a local process with a locally trusted certificate can bind it.
    const LOOPBACK_TLS = 'https://localhost:8443/cb';
    const operator = { actorId: null };
    const native = (
      await gatehouseCore(app.gatehouse).oauthClients.create(
        { name: 'Notes', redirectUris: [NATIVE, LOOPBACK, LOOPBACK_TLS], scopes: ['openid', 'profile'] },
        operator,
      )
    ).client;
    const { user, browser } = await signedIn();
    for (const redirectUri of [NATIVE, LOOPBACK, LOOPBACK_TLS]) {
      const url = request(native, pkce().challenge, { redirect_uri: redirectUri, scope: 'openid profile' });
      // Any app on the device may claim the scheme (or listen on the port) and bring its own PKCE
      // pair: so no "remember" box, and a ticked one sent anyway remembers nothing.
      const page = await browser.request('GET', url);
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain('name="remember"');
      expect(page.body).toContain('data-testid="consent-not-remembered"');
      const approved = locationOf(await consent(browser, url, 'allow', true));
      expect(approved.href.startsWith(redirectUri)).toBe(true);
      expect(approved.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      // The next request asks again; prompt=none gets consent_required, not a silent code.
      expect((await browser.request('GET', url)).statusCode).toBe(200);
      const none = locationOf(await browser.request('GET', `${url}&prompt=none`));
      expect(none.searchParams.get('error')).toBe('consent_required');
      expect(none.searchParams.get('code')).toBeNull();
    }
    // Nothing answered silently, but the grant is recorded: the app is listed under "Connected
    // apps", where the person can see it and disconnect it.
    expect(
      (await gatehouseCore(app.gatehouse).authorizationServer.listConnectedApps(user.id)).map(
        (app) => app.clientId,
      ),
    ).toEqual([native.clientId]);
  });

  it('lets a loopback IP redirect URI take any port at the request, and only the port (RFC 8252 §7.3)', async () => {
    // A native app binds an ephemeral port each time: "The authorization server MUST allow any
    // port to be specified at the time of the request for loopback IP redirect URIs". Before,
    // only the registered port matched, so such an app could not sign in at all.
    const operator = { actorId: null };
    const cli = (
      await gatehouseCore(app.gatehouse).oauthClients.create(
        {
          name: 'CLI',
          redirectUris: ['http://127.0.0.1/cb', 'http://[::1]:8080/cb?x=1', 'http://localhost/cb'],
          scopes: ['openid', 'profile'],
        },
        operator,
      )
    ).client;
    const { browser } = await signedIn();
    const { verifier, challenge } = pkce();
    const asked = 'http://127.0.0.1:53123/cb';
    const url = request(cli, challenge, { redirect_uri: asked, scope: 'openid profile' });
    const page = await browser.request('GET', url);
    expect(page.statusCode).toBe(200);
    // The consent form may send the browser to the port asked for, not only the registered one.
    expect(page.headers['content-security-policy']).toContain("form-action 'self' http://127.0.0.1:53123;");
    const location = locationOf(await consent(browser, url, 'allow', false));
    expect(location.origin + location.pathname).toBe(asked);
    const code = String(location.searchParams.get('code'));
    // The exchange repeats the URI of the request exactly (RFC 6749 §4.1.3), port included.
    const registeredPort = await exchange(cli, code, verifier, { redirect_uri: 'http://127.0.0.1/cb' });
    expect(registeredPort.statusCode).toBe(400);
    expect(registeredPort.json().error).toBe('invalid_grant');
    const { verifier: v2, challenge: c2 } = pkce();
    const url2 = request(cli, c2, { redirect_uri: 'http://[::1]:41000/cb?x=1', scope: 'openid profile' });
    const second = locationOf(await consent(browser, url2, 'allow', false));
    expect(second.port).toBe('41000');
    const exchanged = await exchange(cli, String(second.searchParams.get('code')), v2, {
      redirect_uri: 'http://[::1]:41000/cb?x=1',
    });
    expect(exchanged.statusCode).toBe(200);

    // Only the port: another path, query, host, scheme, or a port no socket has is still refused,
    // and localhost (NOT RECOMMENDED, RFC 8252 §8.3) keeps exact matching.
    for (const other of [
      'http://127.0.0.1:53123/cb2',
      'http://127.0.0.1:53123/cb?x=1',
      'http://[::1]:41000/cb',
      'http://127.0.0.2:53123/cb',
      'https://127.0.0.1:53123/cb',
      'http://127.0.0.1:0/cb',
      'http://127.0.0.1:65536/cb',
      'http://127.0.0.1:53123@evil.example/cb',
      'http://localhost:53123/cb',
    ]) {
      const refused = await browser.request(
        'GET',
        request(cli, challenge, { redirect_uri: other, scope: 'openid' }),
      );
      expect(refused.statusCode, other).toBe(400);
      expect(refused.headers.location, other).toBeUndefined();
    }
    // A confidential client is no native app: its loopback URI keeps its port (RFC 8252 §7.3 is
    // for public clients).
    const local = (
      await gatehouseCore(app.gatehouse).oauthClients.create(
        {
          name: 'Local dev',
          redirectUris: ['http://127.0.0.1:8080/cb'],
          confidential: true,
          scopes: ['openid'],
        },
        operator,
      )
    ).client;
    const otherPort = await browser.request(
      'GET',
      request(local, challenge, { redirect_uri: 'http://127.0.0.1:8081/cb', scope: 'openid' }),
    );
    expect(otherPort.statusCode).toBe(400);
    const samePort = await browser.request(
      'GET',
      request(local, challenge, { redirect_uri: 'http://127.0.0.1:8080/cb', scope: 'openid' }),
    );
    expect(samePort.statusCode).toBe(200);
  });

  it('treats a parameter sent without a value as omitted (RFC 6749 §3.1)', async () => {
    const { browser } = await signedIn();
    const url = request(spa, pkce().challenge, {
      scope: '',
      nonce: '',
      response_mode: '',
      prompt: '',
      max_age: '',
    });
    // The client's default scopes (not none), no error.
    const page = await browser.request('GET', url);
    expect(page.statusCode).toBe(200);
    expect(hiddenField(page.body, 'scope')).toBe('openid profile email me');
    expect(page.body).not.toContain('name="nonce"');
    // An empty redirect_uri in a plain OAuth request: the one registered URI.
    const plain = await browser.request(
      'GET',
      request(spa, pkce().challenge, { scope: 'profile email', redirect_uri: '' }),
    );
    expect(plain.statusCode).toBe(200);
    // Left out, as the request left it out: the code's exchange may then leave it out too.
    expect(plain.body).not.toContain('name="redirect_uri"');
    expect(plain.body).toContain(new URL(REDIRECT).origin);
    expect(page.body).not.toContain('name="nonce"');
  });

  it('accepts an authorization request by form post (OIDC Core §3.1.2.1): answered by the GET, where the session cookie is sent', async () => {
    const { browser } = await signedIn();
    const { challenge, verifier } = pkce();
    const fields = Object.fromEntries(new URL(request(spa, challenge), PUBLIC_URL).searchParams);
    // Posted cross-site, as an app's form is, and without the browser's cookie (SameSite=Lax
    // keeps it off a cross-site post): the answer is the same request as a GET, not a 401 page.
    const posted = await app.inject({
      method: 'POST',
      url: '/authorize',
      headers: { ...FORM, origin: 'https://app.example' },
      payload: form({ ...fields, unknown_extension: 'ignored' }),
    });
    expect(posted.statusCode).toBe(303);
    expect(posted.headers['cache-control']).toBe('no-store');
    const to = new URL(String(posted.headers.location), PUBLIC_URL);
    expect(to.pathname).toBe('/authorize');
    expect(Object.fromEntries(to.searchParams)).toEqual(fields);
    // The browser follows it with its cookie: the consent page, then a code that exchanges.
    const code = locationOf(await consent(browser, `${to.pathname}${to.search}`)).searchParams.get('code');
    expect((await exchange(spa, String(code), verifier)).statusCode).toBe(200);
    // A form with only one of the consent page's fields is malformed, not an app's request.
    const half = await app.inject({
      method: 'POST',
      url: '/authorize',
      headers: { ...FORM, cookie: browser.cookieHeader() },
      payload: form({ ...fields, decision: 'allow' }),
    });
    expect(half.statusCode).toBe(400);
    expect(half.headers['content-type']).toMatch(/^text\/html/);
    // Fields each within their caps but together too long for the GET it would become: the error
    // page, not a redirect the browser's GET would answer with a bare 431.
    const long = await app.inject({
      method: 'POST',
      url: '/authorize',
      headers: FORM,
      payload: form({ ...fields, state: '<'.repeat(2048), nonce: '>'.repeat(512), scope: '"'.repeat(2048) }),
    });
    expect(long.statusCode).toBe(400);
    expect(long.headers.location).toBeUndefined();
    // A repeated field is malformed too (an error page, never a redirect).
    const repeated = await app.inject({
      method: 'POST',
      url: '/authorize',
      headers: FORM,
      payload: `${form(fields)}&client_id=${encodeURIComponent(other.clientId)}`,
    });
    expect(repeated.statusCode).toBe(400);
  });

  it('advertises the flow in OpenID discovery and RFC 8414 metadata', async () => {
    const discovery = (await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' })).json();
    expect(discovery).toMatchObject({
      issuer: PUBLIC_URL,
      authorization_endpoint: `${PUBLIC_URL}/authorize`,
      userinfo_endpoint: `${PUBLIC_URL}/userinfo`,
      jwks_uri: `${PUBLIC_URL}/.well-known/jwks.json`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      id_token_signing_alg_values_supported: ['ES256', 'RS256'],
      authorization_response_iss_parameter_supported: true,
      prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
    });
    const metadata = (
      await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })
    ).json();
    expect(metadata.response_types_supported).toEqual(['code']);
    expect(metadata.token_endpoint_auth_methods_supported).toContain('client_secret_basic');
  });

  describe('authorization request errors (RFC 6749 §4.1.2.1)', () => {
    it('shows an error page, never a redirect, for an unknown client or an unregistered redirect URI', async () => {
      const { browser } = await signedIn();
      const { challenge } = pkce();
      for (const url of [
        request({ ...spa, clientId: 'no-such-client' }, challenge),
        request(spa, challenge, { redirect_uri: 'https://evil.example/callback' }),
        // Exact match: no prefix, no extra path, no extra query (RFC 9700 §4.1.3).
        request(spa, challenge, { redirect_uri: `${REDIRECT}/x` }),
        request(spa, challenge, { redirect_uri: `${REDIRECT}?x=1` }),
        request(spa, challenge, { redirect_uri: REDIRECT.toUpperCase() }),
        `${request(spa, challenge)}&state=twice`,
      ]) {
        const response = await browser.request('GET', url);
        expect(response.statusCode, url).toBe(400);
        expect(response.headers.location).toBeUndefined();
        expect(response.body).toContain('data-testid="oauth-error"');
      }
    });

    it.each([
      [{ response_type: 'token' }, 'unsupported_response_type'],
      [{ response_type: 'code id_token' }, 'unsupported_response_type'],
      [{ code_challenge: undefined }, 'invalid_request'],
      [{ code_challenge_method: 'plain' }, 'invalid_request'],
      [{ code_challenge_method: undefined }, 'invalid_request'],
      [{ code_challenge: 'short' }, 'invalid_request'],
      [{ scope: 'openid users:write' }, 'invalid_scope'],
      [{ response_mode: 'fragment' }, 'invalid_request'],
      // OIDC Core §6.1, §6.2 (red-team 2026-12g O6: a code was issued from the outer parameters).
      [{ request: 'eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.' }, 'request_not_supported'],
      [{ request_uri: 'https://app.example/request.jwt' }, 'request_uri_not_supported'],
    ])('redirects %o with error=%s, state and iss', async (extra, error) => {
      const { browser } = await signedIn();
      const location = locationOf(await browser.request('GET', request(spa, pkce().challenge, extra)));
      expect(location.origin + location.pathname).toBe(REDIRECT);
      expect(location.searchParams.get('error')).toBe(error);
      expect(location.searchParams.get('state')).toBe('st-123');
      expect(location.searchParams.get('iss')).toBe(PUBLIC_URL);
      expect(location.searchParams.get('code')).toBeNull();
    });

    it('sends a signed-out browser to the login page with a same-origin return path, or login_required with prompt=none', async () => {
      const url = request(spa, pkce().challenge);
      const response = await app.inject({ method: 'GET', url });
      const location = locationOf(response);
      expect(location.pathname).toBe('/');
      expect(location.hash).toBe(`#/login?return_to=${encodeURIComponent(url)}`);
      const none = locationOf(await app.inject({ method: 'GET', url: `${url}&prompt=none` }));
      expect(none.searchParams.get('error')).toBe('login_required');
    });

    it('answers access_denied when the person declines, and consent_required with prompt=none', async () => {
      const { browser } = await signedIn();
      const none = await browser.request('GET', request(spa, pkce().challenge, { prompt: 'none' }));
      expect(locationOf(none).searchParams.get('error')).toBe('consent_required');
      const denied = locationOf(await consent(browser, request(spa, pkce().challenge), 'deny'));
      expect(denied.searchParams.get('error')).toBe('access_denied');
      expect(denied.searchParams.get('state')).toBe('st-123');
    });
  });

  describe('consent form (CSRF)', () => {
    it('refuses a wrong or another session’s token, a changed request and a cross-site post', async () => {
      const { browser } = await signedIn();
      const { browser: second } = await signedIn();
      const url = request(spa, pkce().challenge);
      const page = await browser.request('GET', url);
      const fields: Record<string, string> = { decision: 'allow' };
      for (const name of [
        'response_type',
        'client_id',
        'redirect_uri',
        'scope',
        'state',
        'nonce',
        'code_challenge',
        'code_challenge_method',
        'csrf_token',
      ]) {
        fields[name] = hiddenField(page.body, name);
      }
      const post = (who: Browser, payload: Record<string, string>, headers: Record<string, string> = {}) =>
        app.inject({
          method: 'POST',
          url: '/authorize',
          headers: { ...FORM, cookie: who.cookieHeader(), ...headers },
          payload: form(payload),
        });
      expect((await post(browser, { ...fields, csrf_token: 'x'.repeat(43) })).statusCode).toBe(403);
      // A token fits one session: replayed by another signed-in browser it is refused.
      expect((await post(second, fields)).statusCode).toBe(403);
      // And one request: swapping the PKCE challenge (an attacker's) breaks it.
      expect((await post(browser, { ...fields, code_challenge: pkce().challenge })).statusCode).toBe(403);
      const crossSite = await post(browser, fields, { origin: 'https://evil.example' });
      expect(crossSite.statusCode).toBe(403);
      expect(crossSite.body).toContain('data-code="CROSS_SITE_REQUEST"');
      const malformed = await post(browser, { ...fields, decision: 'maybe' });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.headers['content-type']).toMatch(/^text\/html/);
      // Not signed in at all.
      expect(
        (await app.inject({ method: 'POST', url: '/authorize', headers: FORM, payload: form(fields) }))
          .statusCode,
      ).toBe(401);
      // The real form still works.
      expect(locationOf(await post(browser, fields)).searchParams.get('code')).not.toBeNull();
    });
  });

  describe('code exchange (conformance negatives)', () => {
    it('refuses a missing or wrong PKCE verifier, a wrong redirect URI and a code of another client', async () => {
      const { browser } = await signedIn();
      const { verifier, challenge } = pkce();
      const code = await codeFor(browser, spa, challenge);
      const missing = await exchange(spa, code, undefined);
      expect(missing.statusCode).toBe(400);
      expect(missing.json()).toMatchObject({ error: 'invalid_request' });
      expect((await exchange(spa, code, pkce().verifier)).json()).toMatchObject({ error: 'invalid_grant' });
      expect((await exchange(spa, code, 'not a verifier')).json()).toMatchObject({ error: 'invalid_grant' });
      expect(
        (await exchange(spa, code, verifier, { redirect_uri: `${REDIRECT}/other` })).json(),
      ).toMatchObject({ error: 'invalid_grant' });
      expect((await exchange(other, code, verifier)).json()).toMatchObject({ error: 'invalid_grant' });
      // Unregistered callers cannot redeem codes at all.
      expect((await exchange({ ...spa, clientId: 'gatehouse' }, code, verifier)).json()).toMatchObject({
        error: 'unauthorized_client',
      });
      // None of those spent it: the rightful client still can.
      expect((await exchange(spa, code, verifier)).statusCode).toBe(200);
    });

    it('lets a client that registered one redirect URI leave it out, at /authorize and /token alike', async () => {
      const { browser } = await signedIn();
      const { verifier, challenge } = pkce();
      // A plain OAuth request: OpenID Connect's always names its redirect_uri (below).
      const url = request(spa, challenge, { redirect_uri: undefined, scope: 'profile email' });
      const answer = locationOf(await consent(browser, url));
      expect(answer.origin + answer.pathname).toBe(REDIRECT);
      const response = await postToken(app, {
        grant_type: 'authorization_code',
        client_id: spa.clientId,
        code: String(answer.searchParams.get('code')),
        code_verifier: verifier,
      });
      expect(response.statusCode).toBe(200);
    });

    it('refuses an OpenID Connect request without redirect_uri (OIDC Core §3.1.2.1), on a page, even for a client with one URI', async () => {
      const { browser } = await signedIn();
      for (const scope of ['openid profile', undefined]) {
        // `undefined`: no scope parameter, so the client's defaults, which include openid.
        const page = await browser.request(
          'GET',
          request(spa, pkce().challenge, { redirect_uri: undefined, scope }),
        );
        expect(page.statusCode, page.body).toBe(400);
        expect(page.headers.location).toBeUndefined();
        expect(page.body).toContain('must send its redirect_uri');
      }
    });

    it('requires redirect_uri at /token when the authorization request carried it (RFC 6749 §4.1.3), even for a client with one URI', async () => {
      const { browser } = await signedIn();
      const { verifier, challenge } = pkce();
      // spa registered exactly one redirect URI, so /authorize could have left it out; it did not.
      expect(spa.redirectUris).toEqual([REDIRECT]);
      const code = await codeFor(browser, spa, challenge);
      const omitted = await postToken(app, {
        grant_type: 'authorization_code',
        client_id: spa.clientId,
        code,
        code_verifier: verifier,
      });
      expect(omitted.statusCode).toBe(400);
      expect(omitted.json()).toMatchObject({ error: 'invalid_grant' });
      // Refused before the code was spent: the request with it still succeeds.
      expect((await exchange(spa, code, verifier)).statusCode).toBe(200);
    });

    it('refuses an expired code (60 s)', async () => {
      const { browser } = await signedIn();
      const { verifier, challenge } = pkce();
      const code = await codeFor(browser, spa, challenge);
      clock.advance(60_001);
      expect((await exchange(spa, code, verifier)).json()).toMatchObject({ error: 'invalid_grant' });
    });

    it('refuses a replayed code and revokes the tokens its first exchange produced', async () => {
      const { browser } = await signedIn();
      const { verifier, challenge } = pkce();
      const code = await codeFor(browser, spa, challenge);
      const first = (await exchange(spa, code, verifier)).json();
      expect(
        (await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(first.access_token) }))
          .statusCode,
      ).toBe(200);
      // Sent under another client's id, or without the right verifier, a leaked spent code ends
      // nothing: only who could have exchanged it may end what it produced (before: both revoked).
      for (const [client, presented] of [
        [other, verifier],
        [spa, pkce().verifier],
      ] as const) {
        expect((await exchange(client, code, presented)).json()).toMatchObject({ error: 'invalid_grant' });
        expect(
          (await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(first.access_token) }))
            .statusCode,
        ).toBe(200);
      }
      const replay = await exchange(spa, code, verifier);
      expect(replay.statusCode).toBe(400);
      expect(replay.json()).toMatchObject({ error: 'invalid_grant' });
      expect(
        (await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(first.access_token) }))
          .statusCode,
      ).toBe(401);
      const refreshed = await postToken(app, {
        grant_type: 'refresh_token',
        refresh_token: first.refresh_token,
        client_id: spa.clientId,
      });
      expect(refreshed.json()).toMatchObject({ error: 'invalid_grant' });
      const audit = await gatehouseCore(app.gatehouse).audit.list({
        event: 'oauth_code_replayed',
        limit: 10,
        offset: 0,
      });
      expect(audit.total).toBeGreaterThan(0);
    });

    it('gives no refresh token to a client that did not register the grant, and refuses the grant to it (RFC 6749 §5.2)', async () => {
      const { browser } = await signedIn();
      const codeOnly = (
        await gatehouseCore(app.gatehouse).oauthClients.create(
          { name: 'Code only', redirectUris: [REDIRECT], grantTypes: ['authorization_code'] },
          { actorId: null },
        )
      ).client;
      const { verifier, challenge } = pkce();
      const exchanged = await exchange(codeOnly, await codeFor(browser, codeOnly, challenge), verifier);
      expect(exchanged.statusCode).toBe(200);
      const tokens = exchanged.json();
      // It could never use one: no refresh token in the answer, and none stored for the session.
      expect(tokens).not.toHaveProperty('refresh_token');
      expect(tokens.access_token).toEqual(expect.any(String));
      const sessionId = String(decodeJwt(tokens.id_token).sid);
      const stored = await sql<{ n: number | string }>`select count(*) as n from refresh_tokens
        where session_id = ${sessionId}`.execute(gatehouseCore(app.gatehouse).database.db);
      expect(Number(stored.rows[0]?.n)).toBe(0);
      // Nothing can use the session after its access token: it ends then, not at the absolute TTL.
      const session = await sql<{ expires_at: number | string }>`select expires_at from sessions
        where id = ${sessionId}`.execute(gatehouseCore(app.gatehouse).database.db);
      const accessExpiry = Number(decodeJwt(tokens.access_token).exp) * 1000; // whole seconds
      const sessionExpiry = Number(session.rows[0]?.expires_at);
      expect(sessionExpiry - accessExpiry).toBeGreaterThanOrEqual(0);
      expect(sessionExpiry - accessExpiry).toBeLessThan(1000);
      expect(
        (await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(tokens.access_token) }))
          .statusCode,
      ).toBe(200);
      // The grant itself is refused to it before any token is looked up.
      const refreshed = await postToken(app, {
        grant_type: 'refresh_token',
        refresh_token: 'x'.repeat(43),
        client_id: codeOnly.clientId,
      });
      expect(refreshed.statusCode).toBe(400);
      expect(refreshed.json()).toMatchObject({ error: 'unauthorized_client' });
    });

    it("ends a code-only client's sessions, which hold no refresh token, on disconnect, the client's removal and RP-initiated logout", async () => {
      const core = gatehouseCore(app.gatehouse);
      const codeOnlyClient = async () =>
        (
          await core.oauthClients.create(
            {
              name: 'Code only',
              redirectUris: [REDIRECT],
              postLogoutRedirectUris: [LOGOUT_REDIRECT],
              grantTypes: ['authorization_code'],
            },
            { actorId: null },
          )
        ).client;
      const sessionOf = async (browser: Browser, client: OAuthClient) => {
        const { verifier, challenge } = pkce();
        const answer = await exchange(client, await codeFor(browser, client, challenge), verifier);
        expect(answer.statusCode).toBe(200);
        const tokens = answer.json() as { access_token: string; id_token: string };
        expect(tokens).not.toHaveProperty('refresh_token');
        return tokens;
      };
      const works = async (token: string) =>
        (await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(token) })).statusCode === 200;

      // "Disconnect app" on the account page.
      const { browser } = await signedIn();
      const disconnected = await codeOnlyClient();
      const first = await sessionOf(browser, disconnected);
      expect(await works(first.access_token)).toBe(true);
      const removed = await browser.request('DELETE', `/users/me/connected-apps/${disconnected.clientId}`, {
        headers: { 'x-csrf-token': await browser.csrf() },
      });
      expect(removed.statusCode).toBe(204);
      expect(await works(first.access_token)).toBe(false);

      // An operator removes the client.
      const doomed = await codeOnlyClient();
      const second = await sessionOf(browser, doomed);
      await core.oauthClients.remove(doomed.clientId, { actorId: null });
      expect(await works(second.access_token)).toBe(false);

      // RP-initiated logout naming the app's session.
      const loggedOut = await codeOnlyClient();
      const third = await sessionOf(browser, loggedOut);
      const bye = await browser.request(
        'GET',
        `/oauth/logout?${new URLSearchParams({ id_token_hint: third.id_token, post_logout_redirect_uri: LOGOUT_REDIRECT })}`,
      );
      expect(bye.statusCode, bye.body).toBe(303);
      expect(await works(third.access_token)).toBe(false);

      // Once its access token expired, the session is over too: its hint names no live session,
      // so the logout asks the person instead of acting on the app's word.
      // (The logout above signed the browser out too.)
      const { browser: again } = await signedIn();
      const fourth = await sessionOf(again, loggedOut);
      clock.advance(16 * 60_000);
      const late = await again.request(
        'GET',
        `/oauth/logout?${new URLSearchParams({ id_token_hint: fourth.id_token, post_logout_redirect_uri: LOGOUT_REDIRECT })}`,
      );
      expect(late.statusCode, late.body).toBe(200);
      expect(late.body).toContain('data-testid="logout-confirm"');
    });

    it('refuses the password grant to a registered client', async () => {
      const user = await createUser(app);
      const response = await postToken(app, {
        grant_type: 'password',
        username: user.email,
        password: PASSWORD,
        client_id: spa.clientId,
      });
      expect(response.json()).toMatchObject({ error: 'unauthorized_client' });
    });
  });

  describe('client authentication (RFC 6749 §2.3)', () => {
    const basic = (id: string, secret: string) =>
      `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

    it('needs the secret of a confidential client, by HTTP Basic or in the form, not both', async () => {
      const { browser } = await signedIn();
      const { verifier, challenge } = pkce();
      const code = await codeFor(browser, service, challenge);
      const params = {
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
      };
      const none = await postToken(app, { ...params, client_id: service.clientId });
      expect(none.statusCode).toBe(400);
      expect(none.headers['www-authenticate']).toBeUndefined();
      expect(none.json()).toMatchObject({ error: 'invalid_client' });
      const wrong = await postToken(app, params, { authorization: basic(service.clientId, 'wrong') });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.headers['www-authenticate']).toMatch(/^Basic /);
      const both = await postToken(
        app,
        { ...params, client_id: service.clientId, client_secret: serviceSecret },
        { authorization: basic(service.clientId, serviceSecret) },
      );
      expect(both.json()).toMatchObject({ error: 'invalid_request' });
      const ok = await postToken(app, params, { authorization: basic(service.clientId, serviceSecret) });
      expect(ok.statusCode).toBe(200);
      // client_secret_post works the same way (for the refresh).
      const refreshed = await postToken(app, {
        grant_type: 'refresh_token',
        refresh_token: ok.json().refresh_token,
        client_id: service.clientId,
        client_secret: serviceSecret,
      });
      expect(refreshed.statusCode).toBe(200);
    });

    it('introspects access tokens for confidential clients only (RFC 7662)', async () => {
      const { user, browser } = await signedIn();
      const { verifier, challenge } = pkce();
      const code = await codeFor(browser, spa, challenge);
      const tokens = (await exchange(spa, code, verifier)).json();
      const introspect = (
        token: string,
        headers: Record<string, string>,
        extra: Record<string, string> = {},
      ) =>
        app.inject({
          method: 'POST',
          url: '/introspect',
          headers: { ...FORM, ...headers },
          payload: form({ token, ...extra }),
        });
      const asService = { authorization: basic(service.clientId, serviceSecret) };
      const active = await introspect(tokens.access_token, asService);
      expect(active.statusCode).toBe(200);
      expect(active.headers['cache-control']).toBe('no-store');
      expect(active.json()).toMatchObject({
        active: true,
        sub: user.id,
        client_id: spa.clientId,
        scope: 'openid profile email',
        iss: PUBLIC_URL,
        token_type: 'Bearer',
      });
      expect((await introspect(tokens.refresh_token, asService)).json()).toEqual({ active: false });
      expect((await introspect('garbage', asService)).json()).toEqual({ active: false });
      // Public clients, unregistered callers and wrong secrets get nothing.
      const publicClient = await introspect(tokens.access_token, {}, { client_id: spa.clientId });
      expect(publicClient.statusCode).toBe(400);
      expect(publicClient.json()).toMatchObject({ error: 'invalid_client' });
      expect((await introspect(tokens.access_token, {})).statusCode).toBe(400);
      const wrong = await introspect(tokens.access_token, { authorization: basic(service.clientId, 'nope') });
      expect(wrong.statusCode).toBe(401);
      // A revoked token is inactive at once.
      await postToken(app, {
        grant_type: 'refresh_token',
        refresh_token: tokens.refresh_token,
        client_id: spa.clientId,
      });
      await app.inject({
        method: 'POST',
        url: '/revoke',
        headers: FORM,
        payload: form({ token: tokens.access_token, client_id: spa.clientId }),
      });
      expect((await introspect(tokens.access_token, asService)).json()).toEqual({ active: false });
    });

    it('refuses a secret from a public client', async () => {
      const response = await postToken(app, {
        grant_type: 'refresh_token',
        refresh_token: 'x',
        client_id: spa.clientId,
        client_secret: 'anything',
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_client' });
    });
  });

  describe('connected apps, client and account removal, logout', () => {
    const tokensFor = async (browser: Browser, client: OAuthClient) => {
      const { verifier, challenge } = pkce();
      const code = await codeFor(browser, client, challenge);
      return (await exchange(client, code, verifier)).json() as {
        access_token: string;
        refresh_token: string;
      };
    };
    const works = async (token: string) =>
      (await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(token) })).statusCode === 200;

    it('lists connected apps; disconnecting forgets consent and ends the app’s sessions', async () => {
      const { browser } = await signedIn();
      const tokens = await tokensFor(browser, spa);
      const csrf = await browser.csrf();
      const list = await browser.request('GET', '/users/me/connected-apps');
      expect(list.json()).toEqual([
        expect.objectContaining({
          client_id: spa.clientId,
          name: 'Dice <Stats>',
          scopes: ['openid', 'profile', 'email'],
        }),
      ]);
      const removed = await browser.request('DELETE', `/users/me/connected-apps/${spa.clientId}`, {
        headers: { 'x-csrf-token': csrf },
      });
      expect(removed.statusCode).toBe(204);
      expect(await works(tokens.access_token)).toBe(false);
      expect((await browser.request('GET', '/users/me/connected-apps')).json()).toEqual([]);
      expect((await browser.request('GET', request(spa, pkce().challenge))).statusCode).toBe(200);
      const again = await browser.request('DELETE', `/users/me/connected-apps/${spa.clientId}`, {
        headers: { 'x-csrf-token': csrf },
      });
      expect(again.statusCode).toBe(404);
    });

    it('lists an app allowed without “remember my choice” while it holds a session, and disconnects it', async () => {
      // An outside tester's finding: no consent on record, so the app and its 30-day refresh token
      // were not listed, and the person could not see or end them.
      const { browser } = await signedIn();
      const { verifier, challenge } = pkce();
      const answer = await consent(browser, request(spa, challenge), 'allow', false);
      const code = String(locationOf(answer).searchParams.get('code'));
      const tokens = (await exchange(spa, code, verifier)).json() as { access_token: string };
      expect(await works(tokens.access_token)).toBe(true);
      // Not remembered: the next visit asks again.
      expect((await browser.request('GET', request(spa, pkce().challenge))).statusCode).toBe(200);
      expect((await browser.request('GET', '/users/me/connected-apps')).json()).toEqual([
        expect.objectContaining({ client_id: spa.clientId, scopes: ['openid', 'profile', 'email'] }),
      ]);
      const removed = await browser.request('DELETE', `/users/me/connected-apps/${spa.clientId}`, {
        headers: { 'x-csrf-token': await browser.csrf() },
      });
      expect(removed.statusCode).toBe(204);
      expect(await works(tokens.access_token)).toBe(false);
      expect((await browser.request('GET', '/users/me/connected-apps')).json()).toEqual([]);
    });

    it('I2: disconnecting an app also kills the codes it has not exchanged yet', async () => {
      const { browser } = await signedIn();
      await tokensFor(browser, spa);
      // The consent is remembered: the app's next visit through /authorize answers a code silently.
      const { verifier, challenge } = pkce();
      const pending = await codeFor(browser, spa, challenge);
      const removed = await browser.request('DELETE', `/users/me/connected-apps/${spa.clientId}`, {
        headers: { 'x-csrf-token': await browser.csrf() },
      });
      expect(removed.statusCode).toBe(204);
      // Up to 60 s later the app exchanges the code it held back: a new session with a refresh token,
      // which "connected apps" no longer lists (the consent is gone) and which rotates for ever.
      const late = await exchange(spa, pending, verifier);
      const listed = (await browser.request('GET', '/users/me/connected-apps')).json();
      expect({ status: late.statusCode, error: late.json().error, listed }).toEqual({
        status: 400,
        error: 'invalid_grant',
        listed: [],
      });
    });

    it('I2: disconnecting one app leaves the codes of another app live', async () => {
      const { browser } = await signedIn();
      await tokensFor(browser, spa);
      const { verifier, challenge } = pkce();
      const kept = await codeFor(browser, other, challenge);
      const removed = await browser.request('DELETE', `/users/me/connected-apps/${spa.clientId}`, {
        headers: { 'x-csrf-token': await browser.csrf() },
      });
      expect(removed.statusCode).toBe(204);
      expect((await exchange(other, kept, verifier)).statusCode).toBe(200);
    });

    it('I2: "log out everywhere" also kills the codes apps have not exchanged yet', async () => {
      const { user, browser } = await signedIn();
      await tokensFor(browser, spa);
      const { verifier, challenge } = pkce();
      const pending = await codeFor(browser, spa, challenge);
      const own = await postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD });
      const ended = await app.inject({
        method: 'POST',
        url: '/auth/logout-all',
        headers: bearer(own.json().access_token),
      });
      expect(ended.statusCode).toBe(204);
      const late = await exchange(spa, pending, verifier);
      expect({ status: late.statusCode, error: late.json().error }).toEqual({
        status: 400,
        error: 'invalid_grant',
      });
    });

    it('deleting a client revokes its tokens; deleting an account revokes the account’s', async () => {
      const core = gatehouseCore(app.gatehouse);
      const doomed = (
        await core.oauthClients.create({ name: 'Doomed', redirectUris: [REDIRECT] }, { actorId: null })
      ).client;
      const { browser } = await signedIn();
      const tokens = await tokensFor(browser, doomed);
      const kept = await tokensFor(browser, spa);
      await core.oauthClients.remove(doomed.clientId, { actorId: null });
      expect(await works(tokens.access_token)).toBe(false);
      expect(await works(kept.access_token)).toBe(true);

      const { user, browser: owner } = await signedIn();
      const owned = await tokensFor(owner, spa);
      const admin = await createUser(app, { role: 'super_admin' });
      await core.userAdmin.deleteUser({ id: admin.id, role: 'super_admin', isActive: true }, user.id, {
        ip: '127.0.0.1',
        userAgent: null,
      });
      expect(await works(owned.access_token)).toBe(false);
    });

    it('a client removal or disable whose sessions cannot be ended is not made, and a retry makes it', async () => {
      const core = gatehouseCore(app.gatehouse);
      const operator = { actorId: null };
      for (const change of ['remove', 'disable'] as const) {
        const doomed = (
          await core.oauthClients.create({ name: `Doomed ${change}`, redirectUris: [REDIRECT] }, operator)
        ).client;
        const { browser } = await signedIn();
        const tokens = await tokensFor(browser, doomed);
        const act = () =>
          change === 'remove'
            ? core.oauthClients.remove(doomed.clientId, operator)
            : core.oauthClients.setDisabled(doomed.clientId, true, operator);
        const fault = createWriteFault(core.database.db, name, {
          write: 'update',
          table: 'sessions',
          when: 'new.revoked_at is not null and old.revoked_at is null',
        });
        await fault.inject();
        try {
          await expect(act()).rejects.toThrow();
        } finally {
          await fault.heal();
        }
        // Rolled back whole. Before: the change had committed and the sessions' end, after it,
        // failed; a retry then found the client gone (404) or already disabled, and the app's
        // sessions lived on.
        expect((await core.oauthClients.find(doomed.clientId))?.disabled, change).toBe(false);
        expect(await works(tokens.access_token)).toBe(true);
        await act();
        expect(await works(tokens.access_token), change).toBe(false);
      }
    });

    it('a client removal ends more sessions than one batch holds', async () => {
      const core = gatehouseCore(app.gatehouse);
      const crowded = (
        await core.oauthClients.create({ name: 'Crowded', redirectUris: [REDIRECT] }, { actorId: null })
      ).client;
      const user = await createUser(app);
      const now = clock();
      const ids = Array.from({ length: 501 }, () => randomUUID());
      await core.database.transaction(async (trx) => {
        const store = createSessionStore(trx);
        for (const id of ids) {
          await store.insertSession({
            id,
            userId: user.id,
            transport: 'bearer',
            scopes: ['openid'],
            createdAt: now,
            lastUsedAt: now,
            expiresAt: now + 3_600_000,
            revokedAt: null,
            userAgent: null,
            ip: null,
            clientId: crowded.clientId,
          });
          await store.insertRefreshToken(`hash-${id}`, id, now, now + 3_600_000, crowded.clientId);
        }
      });
      await core.oauthClients.remove(crowded.clientId, { actorId: null });
      // Two batches (500, then 1), then none left: all ended, and the removal finished.
      expect(await createOAuthGrantStore(core.database.db).sessionsOfClient(crowded.clientId)).toEqual([]);
      const ended = await Promise.all(ids.map((id) => core.sessionStore.findSession(id)));
      expect(ended.filter((session) => session?.revokedAt === null)).toEqual([]);
    });

    it('treats empty logout parameters as omitted (RFC 6749 §3.1): no hint checked or counted, no client looked up', async () => {
      const { browser } = await signedIn();
      const page = await browser.request(
        'GET',
        '/oauth/logout?id_token_hint=&client_id=&post_logout_redirect_uri=&state=',
      );
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain('data-testid="logout-ignored"');
      expect(page.body).toContain('data-testid="logout-confirm"');
    });

    it('logs out at the registered post-logout URI only, after confirmation, ending the app’s sessions', async () => {
      const { browser } = await signedIn();
      const tokens = await tokensFor(browser, spa);
      const url = (uri: string) =>
        `/oauth/logout?${new URLSearchParams({ client_id: spa.clientId, post_logout_redirect_uri: uri, state: 'bye' })}`;
      // An unregistered URI is ignored (RP-Initiated Logout §4): asked to confirm, never sent there.
      const evil = await browser.request('GET', url('https://evil.example/'));
      expect(evil.statusCode).toBe(200);
      expect(evil.headers.location).toBeUndefined();
      expect(evil.body).toContain('data-code="INVALID_REDIRECT_URI"');
      const page = await browser.request('GET', url(LOGOUT_REDIRECT));
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      // Still signed in until confirmed: a link alone signs nobody out.
      expect(await works(tokens.access_token)).toBe(true);
      const fields = {
        client_id: spa.clientId,
        post_logout_redirect_uri: LOGOUT_REDIRECT,
        state: 'bye',
        csrf_token: hiddenField(page.body, 'csrf_token'),
      };
      const forged = await app.inject({
        method: 'POST',
        url: '/oauth/logout',
        headers: { ...FORM, cookie: browser.cookieHeader() },
        payload: form({ ...fields, csrf_token: 'forged' }),
      });
      expect(forged.statusCode).toBe(403);
      const done = browser.absorb(
        await app.inject({
          method: 'POST',
          url: '/oauth/logout',
          headers: { ...FORM, cookie: browser.cookieHeader() },
          payload: form(fields),
        }),
      );
      expect(locationOf(done).toString()).toBe(`${LOGOUT_REDIRECT}?state=bye`);
      expect(await works(tokens.access_token)).toBe(false);
      expect((await browser.request('GET', '/users/me')).statusCode).toBe(401);
    });
  });

  describe('admin powers through an app’s tokens (red-team 2026-12d)', () => {
    it('I11: an admin’s app that a super_admin allowed cannot make its admin a super_admin', async () => {
      // An admin (clients:write, which every admin holds) registers an app asking for users:write.
      const admin = await createUser(app, { role: 'admin' });
      const adminToken = bearer(
        (await postToken(app, { grant_type: 'password', username: admin.email, password: PASSWORD })).json()
          .access_token,
      );
      const registered = await app.inject({
        method: 'POST',
        url: '/oauth/clients',
        headers: adminToken,
        payload: { name: 'Team dashboard', redirect_uris: [REDIRECT], scopes: ['openid', 'users:write'] },
      });
      expect(registered.statusCode, registered.body).toBe(201);
      const tool = await gatehouseCore(app.gatehouse).oauthClients.find(registered.json().client_id);
      if (tool === undefined) throw new Error('client not found');
      // A super_admin allows it on the consent page ("Change, disable and delete user accounts").
      const owner = await createUser(app, { role: 'super_admin' });
      const browser = new Browser(app);
      expect((await browser.login(owner.email)).statusCode).toBe(204);
      const { verifier, challenge } = pkce();
      const answer = await consent(browser, request(tool, challenge, { scope: 'openid users:write' }));
      const tokens = await exchange(tool, String(locationOf(answer).searchParams.get('code')), verifier);
      expect(tokens.json().scope).toContain('users:write');
      // The admin's app now acts with the super_admin's role: it promotes its own admin.
      const promoted = await app.inject({
        method: 'PATCH',
        url: `/users/${admin.id}`,
        headers: bearer(tokens.json().access_token),
        payload: { role: 'super_admin' },
      });
      expect((await app.gatehouse.users.get(admin.id))?.role).toBe('admin');
      expect(promoted.statusCode).toBe(403);
    });
  });

  describe('step-up through an app’s tokens (red-team 2026-12c)', () => {
    /** The app's tokens for `browser`'s person (consent given if asked), with `openid me`. */
    const appTokens = async (browser: Browser) => {
      const { verifier, challenge } = pkce();
      const url = request(spa, challenge, { scope: 'openid me' });
      const answer =
        (await browser.request('GET', url)).statusCode === 200 ? await consent(browser, url) : undefined;
      const code = String(locationOf(answer ?? (await browser.request('GET', url))).searchParams.get('code'));
      const tokens = await exchange(spa, code, verifier);
      expect(tokens.statusCode, tokens.body).toBe(200);
      return tokens.json<{ access_token: string; id_token: string }>();
    };

    // The code exchange started the app's session with `authTime` = the exchange, not the browser
    // sign-in the code carries, and the account's security routes took any token with `me`: any
    // app the person allowed passed step-up (RFC 9470, STEP_UP_MAX_AGE) at will and registered a
    // passkey of its own.
    it('H2: an app cannot register a passkey with a token minted long after the person signed in', async () => {
      // A proven address, so that the passkey routes get as far as step-up (red team 2026-12d I4).
      const { user, browser } = await signedIn({ verified: true });
      // Well past STEP_UP_MAX_AGE (300 s): the browser itself now needs to re-authenticate.
      clock.advance(301_000);
      const own = await browser.request('POST', '/users/me/passkeys/options', {
        headers: { 'x-csrf-token': await browser.csrf() },
      });
      expect(own.json().code).toBe('STEP_UP_REQUIRED');

      const appToken = bearer((await appTokens(browser)).access_token);
      // The app (its server, not a browser) answers with a software authenticator claiming our origin.
      const authenticator = createSoftAuthenticator(PUBLIC_URL);
      const started = await app.inject({
        method: 'POST',
        url: '/users/me/passkeys/options',
        headers: appToken,
      });
      const registered =
        started.statusCode === 200
          ? await app.inject({
              method: 'POST',
              url: '/users/me/passkeys',
              headers: appToken,
              payload: {
                passkey_token: started.json().passkey_token,
                credential: authenticator.register(started.json().options),
              },
            })
          : started;
      // With that passkey the app would sign in as the person, passwordless, from anywhere.
      expect(await gatehouseCore(app.gatehouse).passkeys.list(user.id)).toEqual([]);
      expect(registered.statusCode).toBe(403);
      expect(registered.json().code).toBe('FIRST_PARTY_ONLY');
    });

    it('H2: the app’s session carries the person’s sign-in time, so step-up measures that, not the token request', async () => {
      const { browser } = await signedIn();
      const signedInAt = clock();
      clock.advance(301_000);
      const tokens = await appTokens(browser);
      const { sid, auth_time: authTime } = decodeJwt(tokens.access_token);
      // The access token, the ID token and the session row agree on the browser sign-in.
      expect(authTime).toBe(Math.floor(signedInAt / 1000));
      expect(decodeJwt(tokens.id_token).auth_time).toBe(authTime);
      const core = gatehouseCore(app.gatehouse);
      expect((await core.sessionStore.findSession(String(sid)))?.authTime).toBe(signedInAt);
      // An embedding app's own step-up (RFC 9470) now refuses the app's token until the person
      // signs in again (`prompt=login` / `max_age`).
      await expect(core.stepUp.requireRecentAuthentication(String(sid))).rejects.toMatchObject({
        code: 'STEP_UP_REQUIRED',
      });
    });

    it('H2: an app’s token may read the account and change its name, but no sign-in method, session or app', async () => {
      const { user, browser } = await signedIn();
      const headers = bearer((await appTokens(browser)).access_token);
      const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
        app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
      expect((await call('GET', '/users/me')).statusCode).toBe(200);
      const renamed = await call('PATCH', '/users/me', { full_name: 'Renamed by the app' });
      expect(renamed.statusCode).toBe(200);
      expect(renamed.json().full_name).toBe('Renamed by the app');

      const refused: Array<[string, Awaited<ReturnType<typeof call>>]> = [];
      const attempts: Array<[method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object]> = [
        ['PATCH', '/users/me', { password: 'the app’s own passphrase', current_password: PASSWORD }],
        ['PATCH', '/users/me', { email: 'app@evil.example', current_password: PASSWORD }],
        ['DELETE', '/users/me', { current_password: PASSWORD }],
        ['GET', '/users/me/sessions'],
        ['DELETE', `/users/me/sessions/${crypto.randomUUID()}`],
        ['POST', '/auth/logout-all'],
        ['POST', '/auth/reauthenticate', { current_password: PASSWORD }],
        ['POST', '/auth/reauthenticate/passkey/options'],
        ['GET', '/users/me/mfa'],
        ['POST', '/users/me/mfa/totp'],
        ['POST', '/users/me/mfa/recovery-codes', { code: '000000' }],
        ['GET', '/users/me/passkeys'],
        ['POST', '/users/me/passkeys/options'],
        ['GET', '/users/me/connected-apps'],
        ['DELETE', `/users/me/connected-apps/${other.clientId}`],
      ];
      for (const [method, url, payload] of attempts)
        refused.push([`${method} ${url}`, await call(method, url, payload)]);
      expect(
        Object.fromEntries(
          refused.map(([what, answer]) => [what, `${answer.statusCode} ${answer.json().code}`]),
        ),
      ).toEqual(Object.fromEntries(refused.map(([what]) => [what, '403 FIRST_PARTY_ONLY'])));
      // Nothing changed: the person still signs in with their password, on a live session.
      expect((await browser.request('GET', '/users/me')).statusCode).toBe(200);
      expect(
        (await postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD }))
          .statusCode,
      ).toBe(200);
    });

    it('keeps the account routes open to first-party tokens, a password-grant label included', async () => {
      const { user } = await signedIn();
      const labelled = await postToken(app, {
        grant_type: 'password',
        username: user.email,
        password: PASSWORD,
        client_id: 'backup-script',
      });
      expect(labelled.statusCode).toBe(200);
      const token = labelled.json().access_token;
      expect(decodeJwt(token).client_id).toBe('backup-script');
      for (const url of [
        '/users/me/sessions',
        '/users/me/mfa',
        '/users/me/passkeys',
        '/users/me/connected-apps',
      ]) {
        expect((await app.inject({ method: 'GET', url, headers: bearer(token) })).statusCode, url).toBe(200);
      }
      const changed = await app.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: bearer(token),
        payload: { password: 'a brand new passphrase', current_password: PASSWORD },
      });
      expect(changed.statusCode).toBe(200);
    });
  });

  describe('prompt and max_age (red-team 2026-12c)', () => {
    // OIDC Core §3.1.2.1: `prompt=login` and `max_age` ask for a fresh authentication, `prompt=consent`
    // for the consent page; the OP must do so or answer an error (login_required, consent_required).
    // /authorize read only `prompt=none` (max_age was not even a parameter), so with a remembered
    // consent each of them silently answered a code for the old sign-in.
    it('H4: prompt=login, prompt=consent and max_age=0 never answer a code without a page', async () => {
      const { browser } = await signedIn();
      const { challenge } = pkce();
      locationOf(await consent(browser, request(spa, challenge)));
      clock.advance(60_000);
      const codes: Record<string, boolean> = {};
      for (const extra of [{ prompt: 'login' }, { prompt: 'consent' }, { max_age: '0' }]) {
        const answer = await browser.request('GET', request(spa, pkce().challenge, extra));
        const location = answer.statusCode === 303 ? locationOf(answer) : undefined;
        codes[JSON.stringify(extra)] = location?.searchParams.get('code') != null;
      }
      expect(codes).toEqual({
        '{"prompt":"login"}': false,
        '{"prompt":"consent"}': false,
        '{"max_age":"0"}': false,
      });
    });

    it('prompt=login sends the signed-in person to the login form, and the resumed request takes the new sign-in', async () => {
      const { user, browser } = await signedIn();
      locationOf(await consent(browser, request(spa, pkce().challenge)));
      clock.advance(60_000);
      const { verifier, challenge } = pkce();
      const asked = await browser.request(
        'GET',
        request(spa, challenge, { prompt: 'login consent', max_age: '0' }),
      );
      expect(asked.statusCode).toBe(303);
      const to = String(asked.headers.location);
      expect(to.startsWith('/#/login?reauthenticate=1&return_to=')).toBe(true);
      const back = new URL(decodeURIComponent(to.slice(to.indexOf('return_to=') + 10)), PUBLIC_URL);
      expect(back.pathname).toBe('/authorize');
      // The app's request, unchanged, plus the signed marker a sign-in after the redirect meets.
      expect(back.searchParams.get('prompt')).toBe('login consent');
      expect(back.searchParams.get('max_age')).toBe('0');
      expect(back.searchParams.get('login_after')).toMatch(/^[0-9]+\.[A-Za-z0-9_-]+$/);
      // Unchanged without signing in again: the old sign-in is a minute old, max_age wants 0.
      expect(
        locationOf(await browser.request('GET', request(spa, challenge, { max_age: '0' }))).pathname,
      ).toBe('/');

      clock.advance(1_000);
      expect((await browser.login(user.email)).statusCode).toBe(204);
      const signedInAgain = clock();
      // prompt=consent still asks, even though consent was remembered.
      const code = locationOf(await consent(browser, back.pathname + back.search)).searchParams.get('code');
      const tokens = await exchange(spa, String(code), verifier);
      expect(tokens.statusCode).toBe(200);
      expect(decodeJwt(tokens.json().id_token).auth_time).toBe(Math.floor(signedInAgain / 1000));
    });

    it('prompt=login from a signed-out browser asks for one sign-in, not two', async () => {
      // Found by the prompt=login browser test: the login form returned to the request as sent, whose
      // `prompt=login` then sent the person, now freshly signed in, to the form a second time.
      const user = await createUser(app);
      const browser = new Browser(app);
      const asked = await browser.request('GET', request(spa, pkce().challenge, { prompt: 'login' }));
      expect(asked.statusCode).toBe(303);
      const to = String(asked.headers.location);
      expect(to.startsWith('/#/login?return_to=')).toBe(true);
      const back = new URL(decodeURIComponent(to.slice(to.indexOf('return_to=') + 10)), PUBLIC_URL);
      // The app's request with the marker the sign-in about to happen meets (red-team 2026-12e J1).
      expect(back.searchParams.get('prompt')).toBe('login');
      expect(back.searchParams.get('max_age')).toBeNull();
      expect(back.searchParams.get('login_after')).toMatch(/^[0-9]+\.[A-Za-z0-9_-]+$/);
      expect((await browser.login(user.email)).statusCode).toBe(204);
      const resumed = await browser.request('GET', back.pathname + back.search);
      expect(resumed.statusCode).toBe(200); // the consent page, not the login form again
      expect(resumed.body).toContain('consent-form');
      // A request without prompt or max_age returns unchanged, byte for byte.
      const plain = request(spa, pkce().challenge);
      const plainTo = String((await new Browser(app).request('GET', plain)).headers.location);
      expect(decodeURIComponent(plainTo.slice(plainTo.indexOf('return_to=') + 10))).toBe(plain);
    });

    it('prompt=none with a too old sign-in is login_required; prompt=none with another value is invalid_request', async () => {
      const { browser } = await signedIn();
      locationOf(await consent(browser, request(spa, pkce().challenge)));
      clock.advance(120_000);
      const errorOf = async (extra: Record<string, string>) =>
        locationOf(await browser.request('GET', request(spa, pkce().challenge, extra))).searchParams.get(
          'error',
        );
      expect(await errorOf({ prompt: 'none', max_age: '60' })).toBe('login_required');
      expect(await errorOf({ prompt: 'none login' })).toBe('invalid_request');
      expect(await errorOf({ prompt: 'sometimes' })).toBe('invalid_request');
      expect(await errorOf({ max_age: '-1' })).toBe('invalid_request');
      // A max_age the sign-in meets answers silently, as before.
      const fine = locationOf(
        await browser.request('GET', request(spa, pkce().challenge, { prompt: 'none', max_age: '600' })),
      );
      expect(fine.searchParams.get('code')).not.toBeNull();
    });

    // Red-team 2026-12e J1: the resumed request drops `login` and says `max_age=600`, which the
    // *old* sign-in meets when it is under ten minutes old. Whoever sits at the signed-in browser
    // skips the login form (back button, or the return_to link itself) and the app's own
    // `prompt=login` request answers a code for the person who walked away.
    it('J1: the request prompt=login resumes is not met by the sign-in it asked to repeat', async () => {
      const { browser } = await signedIn();
      locationOf(await consent(browser, request(spa, pkce().challenge)));
      clock.advance(120_000);
      const { challenge } = pkce();
      const asked = await browser.request('GET', request(spa, challenge, { prompt: 'login' }));
      const to = String(asked.headers.location);
      expect(to.startsWith('/#/login?reauthenticate=1&return_to=')).toBe(true);
      const back = decodeURIComponent(to.slice(to.indexOf('return_to=') + 10));
      // Nobody signs in: the browser goes straight to the resumed request.
      const resumed = locationOf(await browser.request('GET', back));
      expect({ path: resumed.pathname, code: resumed.searchParams.get('code') !== null }).toEqual({
        path: '/',
        code: false,
      });
    });

    it('J1: a login_after marker counts only for its own request, signed by us, within the window', async () => {
      const { user, browser } = await signedIn();
      locationOf(await consent(browser, request(spa, pkce().challenge)));
      clock.advance(120_000);
      const resumedFrom = async (challenge: string) => {
        const asked = await browser.request('GET', request(spa, challenge, { prompt: 'login' }));
        const to = String(asked.headers.location);
        return new URL(decodeURIComponent(to.slice(to.indexOf('return_to=') + 10)), PUBLIC_URL);
      };
      const mine = pkce();
      const back = await resumedFrom(mine.challenge);
      const marker = String(back.searchParams.get('login_after'));
      const [at, mac] = marker.split('.');
      clock.advance(1_000);
      expect((await browser.login(user.email)).statusCode).toBe(204);
      const outcome = async (challenge: string, loginAfter: string) => {
        const to = locationOf(
          await browser.request('GET', request(spa, challenge, { prompt: 'login', login_after: loginAfter })),
        );
        return to.searchParams.get('code') !== null ? 'code' : to.pathname;
      };
      expect({
        // Its time changed, or carried over to another request (another PKCE challenge):
        // the signature no longer matches, so prompt=login asks for the form again.
        backdated: await outcome(mine.challenge, `${Number(at) - 600_000}.${mac}`),
        otherRequest: await outcome(pkce().challenge, marker),
        garbage: await outcome(mine.challenge, 'x.y'),
        // Its own request, after the new sign-in: answered.
        own: await outcome(mine.challenge, marker),
      }).toEqual({ backdated: '/', otherRequest: '/', garbage: '/', own: 'code' });
      // Past REAUTHENTICATION_WINDOW_SECONDS the marker is ignored: the form again (a new marker).
      const late = pkce();
      const lateBack = await resumedFrom(late.challenge);
      clock.advance(1_000);
      expect((await browser.login(user.email)).statusCode).toBe(204);
      clock.advance(REAUTHENTICATION_WINDOW_SECONDS * 1000 + 1);
      expect(await outcome(late.challenge, String(lateBack.searchParams.get('login_after')))).toBe('/');
    });
  });

  describe('password checks through an app’s sessions (red-team 2026-12c)', () => {
    // `verifyCurrentPassword` counts wrong passwords per session only (a trusted-device lane: no
    // account, address or global counter), and an app with a remembered consent starts a new
    // session per code, silently: every session brings a fresh allowance of guesses.
    it('H5: an app cannot guess the password at /auth/reauthenticate beyond one allowance by minting sessions', async () => {
      const { browser } = await signedIn();
      let consented = false;
      const appSession = async () => {
        const { verifier, challenge } = pkce();
        const url = request(spa, challenge, { scope: 'openid me' });
        const answer = consented ? await browser.request('GET', url) : await consent(browser, url);
        consented = true;
        const tokens = await exchange(spa, String(locationOf(answer).searchParams.get('code')), verifier);
        return bearer(tokens.json().access_token);
      };
      const answers: string[] = [];
      for (let session = 0; session < 3; session += 1) {
        const headers = await appSession();
        for (let guess = 0; guess < 5; guess += 1) {
          const response = await app.inject({
            method: 'POST',
            url: '/auth/reauthenticate',
            headers,
            payload: { current_password: `guess ${session}-${guess}` },
          });
          answers.push(String(response.json().code));
        }
      }
      // LOGIN_MAX_FAILURES_PER_DEVICE (5) wrong answers at most, whatever the number of sessions.
      expect(answers.filter((code) => code === 'INVALID_CURRENT_PASSWORD').length).toBeLessThanOrEqual(5);
      // Re-authentication is first-party only: no password is checked for an app's token at all.
      expect(new Set(answers)).toEqual(new Set(['FIRST_PARTY_ONLY']));
    });
  });

  describe('the live-code cap aimed from another site (red-team 2026-12e)', () => {
    // J2: /authorize answers a top-level GET, the SameSite=Lax cookie goes along, and with a
    // remembered consent each visit stores a code. An allowed app whose redirect page sends the tab
    // straight back (or any page, one click per visit) stores codes nobody will exchange, and
    // 20 of them (the account-wide cap then) refused every app's sign-in for that account.
    it('J2: codes nobody exchanges do not refuse the person’s next sign-in to an app', async () => {
      const { browser } = await signedIn();
      locationOf(await consent(browser, request(spa, pkce().challenge)));
      // The attacker's page: silent requests for the app the person already allowed, never exchanged.
      for (let visit = 0; visit < 25; visit += 1) {
        await browser.request('GET', request(spa, pkce().challenge, { prompt: 'none', state: `x${visit}` }));
      }
      // The person now signs in to another app (first consent) and to the allowed one.
      const toOther = locationOf(await consent(browser, request(other, pkce().challenge)));
      const same = locationOf(await browser.request('GET', request(spa, pkce().challenge)));
      expect([toOther.searchParams.get('error'), same.searchParams.get('error')]).toEqual([null, null]);
    });

    it('issues no more codes for an app once an account exchanged LOGIN_MAX_SUCCESSES_PER_ACCOUNT in the window; codes never exchanged spend nothing', async () => {
      // An outside tester looped /authorize and /token as their own user: ≈ 100 sign-ins a minute,
      // each a login_succeeded audit row with a 600-byte user agent, kept for AUDIT_RETENTION.
      const { config } = gatehouseCore(app.gatehouse);
      const { browser } = await signedIn();
      locationOf(await consent(browser, request(spa, pkce().challenge)));
      const silent = async (client: OAuthClient, challenge = pkce().challenge) =>
        locationOf(await browser.request('GET', request(client, challenge, { prompt: 'none' })));
      // Any site can send the browser through silent visits (the Lax cookie goes along), but it
      // never gets the codes: issuing them spends nothing (a review's finding on the first version).
      for (let visit = 0; visit <= config.loginMaxSuccessesPerAccount; visit += 1) {
        expect((await silent(spa)).searchParams.get('error')).toBeNull();
      }
      // The app's own exchanges do (a few seconds apart: spent codes hold a live-code slot until
      // they expire, 60 s, and 20 of them would refuse the app for that reason first).
      for (let signIn = 0; signIn < config.loginMaxSuccessesPerAccount; signIn += 1) {
        clock.advance(3_600);
        const { verifier, challenge } = pkce();
        const code = String((await silent(spa, challenge)).searchParams.get('code'));
        expect((await exchange(spa, code, verifier)).statusCode).toBe(200);
      }
      const refused = await silent(spa);
      expect(refused.searchParams.get('error')).toBe('temporarily_unavailable');
      // This allowance, not the live-code cap (which spent codes hold for 60 s).
      expect(refused.searchParams.get('error_description')).toMatch(
        /^Too many sign-ins to this app; try again in \d+ minutes?\.$/,
      );
      expect(refused.searchParams.get('state')).toBe('st-123');
      expect(refused.searchParams.get('code')).toBeNull();
      // Another app of the same person, and the same app for another person, are not touched.
      expect(
        locationOf(await consent(browser, request(other, pkce().challenge))).searchParams.get('code'),
      ).not.toBeNull();
      const { browser: someoneElse } = await signedIn();
      expect(await codeFor(someoneElse, spa, pkce().challenge)).not.toBe('null');
      // The window ends: the app signs the person in again.
      clock.advance(config.loginFailureWindow * 1000);
      expect((await silent(spa)).searchParams.get('code')).not.toBeNull();
    });

    it('answers an exchange whose session committed even when its sign-in cannot be counted', async () => {
      // Failing the answer then would make the app's retry a replay that revokes the session.
      const { throttle } = gatehouseCore(app.gatehouse);
      const record = vi.spyOn(throttle, 'recordAppSignIn').mockRejectedValue(new Error('counter store away'));
      try {
        const { browser } = await signedIn();
        const { verifier, challenge } = pkce();
        const code = await codeFor(browser, spa, challenge);
        const answer = await exchange(spa, code, verifier);
        expect(answer.statusCode).toBe(200);
        expect(record).toHaveBeenCalledTimes(1);
        expect(
          (await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(answer.json().access_token) }))
            .statusCode,
        ).toBe(200);
      } finally {
        record.mockRestore();
      }
    });

    it('J2: a flood of one app’s codes displaces its own oldest, never another app’s code in flight', async () => {
      const { user, browser } = await signedIn();
      locationOf(await consent(browser, request(spa, pkce().challenge)));
      const flood = async (visits: number) => {
        for (let visit = 0; visit < visits; visit += 1) {
          await browser.request(
            'GET',
            request(spa, pkce().challenge, { prompt: 'none', state: `x${visit}` }),
          );
        }
      };
      await flood(MAX_LIVE_CODES_PER_CLIENT);
      const mine = pkce();
      const toOther = locationOf(await consent(browser, request(other, mine.challenge)));
      // The flood goes on while the other app exchanges: its code is not the busiest client's.
      await flood(MAX_LIVE_CODES_PER_CLIENT * 2);
      const tokens = await exchange(other, String(toOther.searchParams.get('code')), mine.verifier);
      expect(tokens.statusCode).toBe(200);
      // The table stays bounded: the flooding app holds its own cap, the other app its spent code.
      const grants = createOAuthGrantStore(gatehouseCore(app.gatehouse).database.db);
      expect(await grants.countLiveCodes(user.id, clock())).toBe(MAX_LIVE_CODES_PER_CLIENT + 1);
    });

    // J5: OIDC Core §3.1.2.1: with `id_token_hint`, a positive answer only when the person it names
    // is the one signed in; otherwise an error such as login_required. /authorize ignores the hint,
    // so an app checking silently "is Alice still signed in?" gets a code, and an ID token, for Bob.
    it('J5: prompt=none with the id_token_hint of another person is login_required, not a code for whoever is signed in', async () => {
      const { user: alice, browser } = await signedIn();
      const first = pkce();
      const code = await codeFor(browser, spa, first.challenge);
      const hint = String((await exchange(spa, code, first.verifier)).json().id_token);
      expect(decodeJwt(hint).sub).toBe(alice.id);
      // The same browser now belongs to Bob, who also allowed the app.
      const bob = await createUser(app);
      expect((await browser.login(bob.email)).statusCode).toBe(204);
      locationOf(await consent(browser, request(spa, pkce().challenge)));
      const silent = locationOf(
        await browser.request('GET', request(spa, pkce().challenge, { prompt: 'none', id_token_hint: hint })),
      );
      expect({
        code: silent.searchParams.get('code') !== null,
        error: silent.searchParams.get('error'),
      }).toEqual({
        code: false,
        error: 'login_required',
      });
    });

    /** A browser signed in as a new person who allowed `spa`, and the ID token `spa` got for them. */
    const hintFor = async () => {
      const { user, browser } = await signedIn();
      const { verifier, challenge } = pkce();
      const code = await codeFor(browser, spa, challenge);
      return { user, browser, hint: String((await exchange(spa, code, verifier)).json().id_token) };
    };

    it('J5: the id_token_hint of the person signed in answers prompt=none with a code, expired hints included', async () => {
      const { browser, hint } = await hintFor();
      const fresh = locationOf(
        await browser.request('GET', request(spa, pkce().challenge, { prompt: 'none', id_token_hint: hint })),
      );
      expect(fresh.searchParams.get('code')).not.toBeNull();
      // OIDC Core §3.1.2.1: a hint is a hint after its `exp` (300 s) too; this is the usual silent renewal.
      clock.advance(600_000);
      const expired = locationOf(
        await browser.request('GET', request(spa, pkce().challenge, { prompt: 'none', id_token_hint: hint })),
      );
      expect([expired.searchParams.get('error'), expired.searchParams.get('code') !== null]).toEqual([
        null,
        true,
      ]);
    });

    // Item 4 of the 2026-12 gaps round: each id_token_hint costs an ES256 verification (≈ 0.2 ms
    // here), and anyone may send /authorize a forged one: failed hints are limited per address.
    it('limits failed id_token_hints per client address; hints that verify never count', async () => {
      const { hint } = await hintFor();
      const [header, payload, signature] = hint.split('.');
      // Our key id and claims, a signature of the right length that is not ours.
      const forged = `${header}.${payload}.${String(signature).startsWith('A') ? 'B' : 'A'}${String(signature).slice(1)}`;
      const anonymous = (idTokenHint: string, remoteAddress: string) =>
        app.inject({
          method: 'GET',
          url: request(spa, pkce().challenge, { id_token_hint: idTokenHint }),
          remoteAddress,
        });
      const answers: (string | null)[] = [];
      for (let attempt = 0; attempt <= ID_TOKEN_HINT_FAILURES_PER_MINUTE; attempt += 1) {
        const answer = await anonymous(forged, '203.0.113.44');
        answers.push(
          answer.statusCode === 303
            ? locationOf(answer).searchParams.get('error')
            : String(answer.statusCode),
        );
      }
      expect(answers.slice(0, -1)).toEqual(Array(ID_TOKEN_HINT_FAILURES_PER_MINUTE).fill('invalid_request'));
      // Refused at the app's redirect URI (RFC 6749 §4.1.2.1), not with a 429 page the app never
      // sees: the address may be a NAT whose other users' genuine hints land here too.
      for (const idTokenHint of [forged, hint]) {
        const refused = locationOf(await anonymous(idTokenHint, '203.0.113.44'));
        expect(refused.searchParams.get('error')).toBe('temporarily_unavailable');
        expect(refused.searchParams.get('state')).toBe('st-123');
      }
      // RP-Initiated Logout verifies hints too, with the same allowance; over it the hint is ignored
      // (§4): the person is asked to confirm, where a 429 left their sessions live.
      const logout = await app.inject({
        method: 'GET',
        url: `/oauth/logout?id_token_hint=${hint}`,
        remoteAddress: '203.0.113.44',
      });
      expect(logout.statusCode).toBe(200);
      // Another address has its own allowance; a genuine hint is never counted.
      expect((await anonymous(forged, '203.0.113.45')).statusCode).toBe(303);
      for (let attempt = 0; attempt <= ID_TOKEN_HINT_FAILURES_PER_MINUTE; attempt += 1)
        expect((await anonymous(hint, '203.0.113.46')).statusCode).toBe(303);
      // The window ends: the address may try again.
      clock.advance(60_000);
      expect((await anonymous(forged, '203.0.113.44')).statusCode).toBe(303);
    });

    it('J5: without prompt=none, another person’s hint sends the browser to the login form, not to the app', async () => {
      const { browser, hint } = await hintFor();
      const bob = await createUser(app);
      expect((await browser.login(bob.email)).statusCode).toBe(204);
      // Bob's sign-in is older than the redirect, as it is in a browser (the test clock stands still).
      clock.advance(5_000);
      const answer = await browser.request('GET', request(spa, pkce().challenge, { id_token_hint: hint }));
      expect(answer.statusCode).toBe(303);
      const to = String(answer.headers.location);
      expect(to.startsWith('/#/login?reauthenticate=1&return_to=')).toBe(true);
      // The request it returns to no longer names Alice: whoever signs in there chose to (no loop).
      const back = decodeURIComponent(to.slice(to.indexOf('return_to=') + 'return_to='.length));
      expect(back.startsWith('/authorize?')).toBe(true);
      const resumed = new URLSearchParams(back.slice(back.indexOf('?') + 1));
      expect(resumed.has('id_token_hint')).toBe(false);
      // J1's marker: only a sign-in after this redirect meets the resumed request, so Bob's own
      // (the Back button) gets no code for the app that asked about Alice.
      expect(resumed.has('login_after')).toBe(true);
      const notSignedInAgain = locationOf(await browser.request('GET', back));
      expect(notSignedInAgain.searchParams.get('code')).toBeNull();
    });

    it('J5: an id_token_hint that is not our ID token for this client is invalid_request', async () => {
      const { browser, hint } = await hintFor();
      const [header, payload, signature] = hint.split('.');
      const forged = `${header}.${payload}.${String(signature).slice(0, -4)}AAAA`;
      const errorOf = async (client: OAuthClient, idTokenHint: string) =>
        locationOf(
          await browser.request(
            'GET',
            request(client, pkce().challenge, { prompt: 'none', id_token_hint: idTokenHint }),
          ),
        ).searchParams.get('error');
      expect({
        forged: await errorOf(spa, forged),
        garbage: await errorOf(spa, 'not-a-jwt'),
        anotherClient: await errorOf(other, hint),
      }).toEqual({ forged: 'invalid_request', garbage: 'invalid_request', anotherClient: 'invalid_request' });
    });
  });
});
