import cookie from '@fastify/cookie';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehousePlugin } from '../../src/http/index.js';
import { createGatehouse, type Gatehouse } from '../../src/index.js';
import { testConfig } from '../../src/testing.js';
import { cookiesOf, createUser } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';

const SESSION = '__Host-gatehouse_session';

/**
 * An embedding app that registered @fastify/cookie before the plugin (the plugin then uses that
 * registration) with defaults of its own in `parseOptions`: those are defaults for the app's
 * cookies, and must not reach Gatehouse's, whose attributes are its security (`__Host-`: no Domain).
 */
describe("gatehousePlugin under a host's @fastify/cookie with parseOptions", () => {
  let gatehouse: Gatehouse;
  let app: FastifyInstance;
  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig());
    app = Fastify();
    await app.register(cookie, {
      secret: 'the host app’s own cookie-signing secret, 32+ chars',
      parseOptions: { domain: 'example.com', signed: true, maxAge: 999, partitioned: true, priority: 'high' },
    });
    await app.register(gatehousePlugin, { gatehouse });
    // The host's own cookie still gets its defaults.
    app.get('/host-cookie', async (_request, reply) => reply.setCookie('theme', 'dark').send({ ok: true }));
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await gatehouse?.close();
  });

  it('sets its cookies with its own attributes only, and cookie sign-in works', async () => {
    const user = await createUser(app);
    const browser = new Browser(app);
    const csrf = await browser.request('GET', '/auth/csrf');
    const login = await browser.login(user.email);
    expect(login.statusCode).toBe(204);
    for (const response of [csrf, login]) {
      for (const [name, { value, attributes }] of cookiesOf(response)) {
        // A Domain on a __Host- cookie makes browsers drop it; on an unprefixed one (COOKIE_SECURE
        // off) it would send the session to every subdomain.
        expect(
          attributes.filter((a) => /^(domain|partitioned|priority)/.test(a)),
          name,
        ).toEqual([]);
        expect(value, name).not.toMatch(/\.[A-Za-z0-9+/_-]{20,}$/); // not signed by the host's secret
      }
    }
    const session = cookiesOf(login).get(SESSION);
    expect(session?.attributes).toContain(`max-age=${testConfig().sessionAbsoluteTtl}`);
    // The CSRF cookies live as long as the browser session, not the host's default Max-Age.
    expect(
      cookiesOf(csrf)
        .get('__Host-gatehouse_csrf')
        ?.attributes.some((a) => a.startsWith('max-age')),
    ).toBe(false);
    const me = await browser.request('GET', '/users/me');
    expect(me.statusCode).toBe(200);
    expect(me.json().id).toBe(user.id);
  });

  it("leaves the host's own cookies their defaults", async () => {
    const theme = cookiesOf(await app.inject({ method: 'GET', url: '/host-cookie' })).get('theme');
    expect(theme?.attributes).toContain('domain=example.com');
  });
});
