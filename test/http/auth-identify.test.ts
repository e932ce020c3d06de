import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';

/**
 * Red-team 2026-12j E2: `app.auth.identify()` (an "optional sign-in" route) took the session
 * cookie of an unsafe request with no CSRF token and a foreign Origin, which a guard refuses: a
 * site that can make the browser send a same-site request (a sibling subdomain) posted as the
 * person. identify() now checks it as a guard does, unless the route says it has its own defence.
 */
describe('app.auth.identify on unsafe methods', () => {
  let app: FastifyInstance;
  let browser: Browser;
  let email: string;

  beforeAll(async () => {
    app = await buildTestServer();
    app.post('/comments', async (request) => ({
      as: (await app.auth.identify(request))?.user.email ?? null,
    }));
    app.post('/own-form', async (request) => ({
      as: (await app.auth.identify(request, { csrf: false }))?.user.email ?? null,
    }));
    app.get('/comments', async (request) => ({ as: (await app.auth.identify(request))?.user.email ?? null }));
    email = (await createUser(app)).email;
    browser = new Browser(app);
    expect((await browser.login(email)).statusCode).toBe(204);
  });
  afterAll(async () => app.close());

  const crossSite = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' };

  it('refuses a cookie POST without the CSRF token, or from another origin, as a guard does', async () => {
    const missing = await browser.request('POST', '/comments', { payload: {} });
    expect(missing.statusCode).toBe(403);
    expect(missing.json().code).toBe('CSRF_TOKEN_MISSING');
    const foreign = await browser.request('POST', '/comments', {
      headers: { ...crossSite, 'x-csrf-token': await browser.csrf() },
      payload: {},
    });
    expect(foreign.statusCode).toBe(403);
    expect(foreign.json().code).toBe('CROSS_SITE_REQUEST');
  });

  it('identifies the person with the token, on safe methods, and with a bearer token', async () => {
    const posted = await browser.request('POST', '/comments', {
      headers: { 'x-csrf-token': await browser.csrf() },
      payload: {},
    });
    expect(posted.json()).toEqual({ as: email });
    expect((await browser.request('GET', '/comments')).json()).toEqual({ as: email });
    const token = (await login(app, email)).access_token;
    const viaBearer = await app.inject({
      method: 'POST',
      url: '/comments',
      headers: bearer(token),
      payload: {},
    });
    expect(viaBearer.json()).toEqual({ as: email });
    expect((await app.inject({ method: 'POST', url: '/comments', payload: {} })).json()).toEqual({
      as: null,
    });
  });

  it('leaves the check to a route that says it has its own (csrf: false)', async () => {
    const own = await browser.request('POST', '/own-form', { headers: crossSite, payload: {} });
    expect(own.json()).toEqual({ as: email });
  });
});
