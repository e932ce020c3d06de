import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehousePlugin } from '../../src/http/index.js';
import { createGatehouse, type Gatehouse } from '../../src/index.js';
import { testConfig } from '../../src/testing.js';
import { createUser } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';

const PUBLIC_URL = 'https://auth.example.com';

/**
 * The usual deployment of an embedding app: TLS ends at a proxy, and the app (Fastify's default
 * `trustProxy: false`) sees plain HTTP. The CSRF guard's own origin came from the request alone
 * (`http://auth.example.com`), so a browser's `Origin: https://auth.example.com`, which is
 * PUBLIC_URL itself, was refused as cross-site: nobody could sign in with the cookie.
 */
describe('gatehousePlugin behind a TLS-terminating proxy (no trustProxy)', () => {
  let gatehouse: Gatehouse;
  let app: FastifyInstance;
  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig({ publicUrl: PUBLIC_URL }));
    app = Fastify();
    await app.register(gatehousePlugin, { gatehouse });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await gatehouse?.close();
  });

  const loginFrom = async (origin: string) => {
    const user = await createUser(app);
    const browser = new Browser(app);
    const headers = { host: 'auth.example.com' };
    const token = (await browser.request('GET', '/auth/csrf', { headers })).json().csrf_token as string;
    return browser.request('POST', '/auth/login', {
      headers: { ...headers, origin, 'x-csrf-token': token },
      payload: { email: user.email, password: user.password },
    });
  };

  it("accepts PUBLIC_URL's origin as its own", async () => {
    expect((await loginFrom(PUBLIC_URL)).statusCode).toBe(204);
  });

  it('still refuses any other origin', async () => {
    const evil = await loginFrom('https://evil.example.com');
    expect(evil.statusCode).toBe(403);
    expect(evil.json().code).toBe('CROSS_SITE_REQUEST');
  });
});
