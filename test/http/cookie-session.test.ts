import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer, createTestClock } from '../../src/testing.js';
import { bearer, cookiesOf, createUser, login, PASSWORD } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';

const SESSION = '__Host-gatehouse_session';
const CSRF_SECRET = '__Host-gatehouse_csrf_secret';
/** An OAuth app's origin (CORS_ORIGINS): cross-origin reads with bearer tokens, no session. */
const BEARER_APP = 'https://spa.example.com';

describe('cookie sessions, CSRF and CORS', () => {
  let app: FastifyInstance;
  let user: Awaited<ReturnType<typeof createUser>>;
  beforeAll(async () => {
    app = await buildTestServer({
      corsCredentialedOrigins: ['https://app.example.com'],
      corsOrigins: [BEARER_APP],
    });
    user = await createUser(app);
  });
  afterAll(async () => app.close());

  it('sets a __Host- session cookie with every attribute on login', async () => {
    const browser = new Browser(app);
    const response = await browser.login(user.email);
    expect(response.statusCode).toBe(204);
    const cookie = cookiesOf(response).get(SESSION);
    expect(cookie?.value).toMatch(/^ghs_[A-Za-z0-9_-]{43}$/);
    expect(cookie?.attributes).toEqual(
      expect.arrayContaining(['httponly', 'secure', 'samesite=lax', 'path=/']),
    );
    expect(cookie?.attributes.some((a) => a.startsWith('domain'))).toBe(false);
    expect(cookie?.attributes.some((a) => a.startsWith('max-age='))).toBe(true);
    const raw = ([] as string[])
      .concat(response.headers['set-cookie'] ?? [])
      .find((l) => l.startsWith(SESSION));
    expect(Buffer.byteLength(raw ?? '')).toBeLessThanOrEqual(4096);
    const me = await browser.request('GET', '/users/me');
    expect(me.statusCode).toBe(200);
    expect(me.json().id).toBe(user.id);
  });

  it('mints a new session token on every login (no fixation) and ends the previous one', async () => {
    const browser = new Browser(app);
    await browser.login(user.email);
    const first = browser.jar.get(SESSION);
    await browser.login(user.email);
    const second = browser.jar.get(SESSION);
    expect(second).not.toBe(first);
    const old = await app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { cookie: `${SESSION}=${first}` },
    });
    expect(old.statusCode).toBe(401);
  });

  it('protects login against login CSRF', async () => {
    const noToken = await app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { email: user.email, password: PASSWORD },
    });
    expect(noToken.statusCode).toBe(403);
    expect(noToken.json().code).toBe('CSRF_TOKEN_MISSING');
    const browser = new Browser(app);
    await browser.csrf();
    const forged = await browser.request('POST', '/auth/login', {
      headers: { 'x-csrf-token': 'forged-token' },
      payload: { email: user.email, password: PASSWORD },
    });
    expect(forged.json().code).toBe('CSRF_TOKEN_INVALID');
  });

  it('requires a valid CSRF token bound to the session for unsafe cookie requests', async () => {
    const browser = new Browser(app);
    await browser.login(user.email);
    const missing = await browser.request('PATCH', '/users/me', { payload: { full_name: 'X' } });
    expect(missing.statusCode).toBe(403);
    expect(missing.json().code).toBe('CSRF_TOKEN_MISSING');
    const wrong = await browser.request('PATCH', '/users/me', {
      headers: { 'x-csrf-token': 'nope' },
      payload: { full_name: 'X' },
    });
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json().code).toBe('CSRF_TOKEN_INVALID');

    // A token from another browser's session does not fit this session.
    const other = new Browser(app);
    await other.login(user.email);
    const foreign = await other.csrf();
    const crossed = await browser.request('PATCH', '/users/me', {
      headers: { 'x-csrf-token': foreign },
      payload: { full_name: 'X' },
    });
    expect(crossed.json().code).toBe('CSRF_TOKEN_INVALID');

    const token = await browser.csrf();
    const ok = await browser.request('PATCH', '/users/me', {
      headers: { 'x-csrf-token': token },
      payload: { full_name: 'Cookie Person' },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().full_name).toBe('Cookie Person');
  });

  it('refuses cross-site cookie requests by Origin and Sec-Fetch-Site even with a valid token', async () => {
    const browser = new Browser(app);
    await browser.login(user.email);
    const token = await browser.csrf();
    const evil = await browser.request('PATCH', '/users/me', {
      headers: { 'x-csrf-token': token, origin: 'https://evil.example' },
      payload: { full_name: 'Y' },
    });
    expect(evil.statusCode).toBe(403);
    expect(evil.json().code).toBe('CROSS_SITE_REQUEST');
    const site = await browser.request('PATCH', '/users/me', {
      headers: { 'x-csrf-token': token, 'sec-fetch-site': 'cross-site' },
      payload: { full_name: 'Y' },
    });
    expect(site.json().code).toBe('CROSS_SITE_REQUEST');
    const allowed = await browser.request('PATCH', '/users/me', {
      headers: { 'x-csrf-token': token, origin: 'https://app.example.com', 'sec-fetch-site': 'cross-site' },
      payload: { full_name: 'Z' },
    });
    expect(allowed.statusCode).toBe(200);
    // An origin of CORS_ORIGINS (an OAuth app's, bearer tokens only) is not first-party (J6).
    const fromApp = await browser.request('PATCH', '/users/me', {
      headers: { 'x-csrf-token': token, origin: BEARER_APP, 'sec-fetch-site': 'same-site' },
      payload: { full_name: 'W' },
    });
    expect(fromApp.json().code).toBe('CROSS_SITE_REQUEST');
  });

  it('needs no CSRF token for bearer requests', async () => {
    const { access_token } = await login(app, user.email);
    const response = await app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: bearer(access_token),
      payload: { full_name: 'B' },
    });
    expect(response.statusCode).toBe(200);
  });

  it('logout revokes the session and clears the cookie with the same attributes', async () => {
    const browser = new Browser(app);
    await browser.login(user.email);
    const sessionToken = browser.jar.get(SESSION);
    const token = await browser.csrf();
    const response = await browser.request('POST', '/auth/logout', { headers: { 'x-csrf-token': token } });
    expect(response.statusCode).toBe(204);
    const cleared = cookiesOf(response).get(SESSION);
    expect(cleared?.attributes).toEqual(
      expect.arrayContaining(['max-age=0', 'httponly', 'secure', 'samesite=lax', 'path=/']),
    );
    const replay = await app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { cookie: `${SESSION}=${sessionToken}` },
    });
    expect(replay.statusCode).toBe(401);
  });

  it('keeps the CSRF secret HttpOnly and SameSite=Strict', async () => {
    const response = await app.inject({ method: 'GET', url: '/auth/csrf' });
    const secret = cookiesOf(response).get(CSRF_SECRET);
    expect(secret?.attributes).toEqual(
      expect.arrayContaining(['httponly', 'secure', 'samesite=strict', 'path=/']),
    );
    expect(response.headers['cache-control']).toBe('no-store');
  });

  describe('CORS', () => {
    const preflight = (origin: string) =>
      app.inject({
        method: 'OPTIONS',
        url: '/users/me',
        headers: { origin, 'access-control-request-method': 'PATCH' },
      });

    it('echoes a CORS_ORIGINS origin without credentials (bearer tokens only, red-team 2026-12e J6)', async () => {
      const response = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: BEARER_APP } });
      expect(response.headers['access-control-allow-origin']).toBe(BEARER_APP);
      expect(response.headers['access-control-allow-credentials']).toBeUndefined();
      const answer = await preflight(BEARER_APP);
      expect(answer.statusCode).toBe(204);
      expect(answer.headers['access-control-allow-origin']).toBe(BEARER_APP);
      expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
    });

    it('echoes a CORS_CREDENTIALED_ORIGINS origin with credentials and Vary: Origin', async () => {
      const response = await app.inject({
        method: 'GET',
        url: '/healthz',
        headers: { origin: 'https://app.example.com' },
      });
      expect(response.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(response.headers['access-control-allow-credentials']).toBe('true');
      expect(String(response.headers.vary)).toMatch(/Origin/i);
      expect((await preflight('https://app.example.com')).headers['access-control-allow-origin']).toBe(
        'https://app.example.com',
      );
    });

    it.each([
      'https://evil.example',
      'null',
      'https://app.example.com.evil.example',
      'https://evilapp.example.com',
      'http://app.example.com',
      'https://app.example.co',
    ])('gives %s no Access-Control-Allow-Origin', async (origin) => {
      const response = await app.inject({ method: 'GET', url: '/healthz', headers: { origin } });
      expect(response.headers['access-control-allow-origin']).toBeUndefined();
      expect((await preflight(origin)).headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  describe('security headers', () => {
    it('sends a CSP and the usual helmet headers', async () => {
      const response = await app.inject({ method: 'GET', url: '/healthz' });
      expect(response.headers['content-security-policy']).toContain("script-src 'self'");
      expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['strict-transport-security']).toBeDefined();
    });

    it('serves /docs under that CSP without inline scripts', async () => {
      const page = await app.inject({ method: 'GET', url: '/docs/' });
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toMatch(/<script>(?!\s*<\/script>)/);
      const spec = await app.inject({ method: 'GET', url: '/openapi.json' });
      const doc = spec.json();
      expect(doc.components.securitySchemes.OAuth2PasswordBearer.flows.password.tokenUrl).toBe('/token');
      expect(
        Object.keys(doc.components.securitySchemes.OAuth2PasswordBearer.flows.password.scopes),
      ).toContain('clothes:write');
      expect(doc.components.securitySchemes.sessionCookie).toMatchObject({
        type: 'apiKey',
        in: 'cookie',
        name: SESSION,
      });
      expect(doc.paths['/users/me'].get.security).toEqual([
        { OAuth2PasswordBearer: ['me'] },
        { sessionCookie: [] },
      ]);
      expect(doc.paths['/token'].post.requestBody.content).toHaveProperty(
        'application/x-www-form-urlencoded',
      );
    });
  });
});

describe('COOKIE_SECURE=false', () => {
  it('drops Secure and the __Host- prefix (which would need it)', async () => {
    const app = await buildTestServer({ cookieSecure: false });
    const user = await createUser(app);
    const browser = new Browser(app);
    const response = await browser.login(user.email);
    const cookie = cookiesOf(response).get('gatehouse_session');
    expect(cookie?.attributes).not.toContain('secure');
    expect(cookie?.attributes).toContain('httponly');
    expect(response.headers['strict-transport-security']).toBeUndefined();
    await app.close();
  });
});

describe('a revocation this instance never heard of', () => {
  it('still ends a cached cookie session within the re-check interval', async () => {
    const clock = createTestClock();
    const app = await buildTestServer({}, { clock });
    const user = await createUser(app);
    const browser = new Browser(app);
    await browser.login(user.email);
    const sessions = (await browser.request('GET', '/users/me/sessions')).json() as {
      id: string;
      current: boolean;
    }[];
    const current = sessions.find((s) => s.current);
    // Straight in the database, as another instance would, with the broadcast lost.
    await gatehouseCore(app.gatehouse).sessionStore.revokeSessions([current?.id ?? ''], clock());
    expect((await browser.request('GET', '/users/me')).statusCode).toBe(200);
    clock.advance(30_000);
    expect((await browser.request('GET', '/users/me')).statusCode).toBe(401);
    await app.close();
  });
});
