import cookie from '@fastify/cookie';
import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { gatehousePlugin } from '../../src/http/index.js';
import { createUser } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { useGatehouse } from '../support/embedding.js';

/**
 * @fastify/cookie parses cookies in the hook its registration names (`onRequest` by default,
 * `preHandler`, or none with `hook: false`). The plugin reuses a registration the app made before
 * it, and its guards (`preValidation` on its routes) and CSRF check read `request.cookies`, which is
 * then not there yet: a TypeError, every cookie request a 500.
 */
describe("gatehousePlugin under a host's @fastify/cookie that parses late or never", () => {
  const gatehouse = useGatehouse();

  for (const hook of ['preHandler', false] as const) {
    it(`signs in with the cookie and guards the host's routes (hook: ${String(hook)})`, async () => {
      const app: FastifyInstance = Fastify();
      await app.register(cookie, { hook });
      await app.register(gatehousePlugin, { gatehouse: gatehouse() });
      app.post('/mine', { preHandler: app.auth.require() }, async (request) => ({
        via: request.auth?.transport,
      }));
      try {
        await app.ready();
        const user = await createUser(app);
        const browser = new Browser(app);
        expect((await browser.login(user.email)).statusCode).toBe(204);
        expect((await browser.request('GET', '/users/me')).statusCode).toBe(200);
        const token = await browser.csrf();
        const mine = await browser.request('POST', '/mine', { headers: { 'x-csrf-token': token } });
        expect(mine.json()).toEqual({ via: 'cookie' });
        // A bad cookie is a 401, not a crash.
        const bad = await app.inject({
          method: 'GET',
          url: '/users/me',
          headers: { cookie: '__Host-gatehouse_session=x' },
        });
        expect(bad.statusCode).toBe(401);
      } finally {
        await app.close();
      }
    });
  }
});
