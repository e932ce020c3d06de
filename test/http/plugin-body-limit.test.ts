import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { gatehousePlugin } from '../../src/http/index.js';
import { useGatehouse } from '../support/embedding.js';

const BODY_LIMIT = 4096;
const OVER = 10_000;

/**
 * BODY_LIMIT (`bodyLimit`) is a core setting an embedding app passes to `createGatehouse`; only
 * `buildServer` applied it (as Fastify's server option), so under the plugin the anonymous routes
 * (`/token`, `/auth/login`, `/auth/register`) read bodies up to whatever the host allows (Fastify's
 * 1 MiB by default, more on an app that takes uploads) and parsed them as JSON before refusing.
 */
describe("gatehousePlugin: BODY_LIMIT holds on Gatehouse's routes in a host app", () => {
  const gatehouse = useGatehouse({ bodyLimit: BODY_LIMIT });

  const withApp = async (hostLimit: number | undefined, run: (app: FastifyInstance) => Promise<void>) => {
    const app = Fastify(hostLimit === undefined ? {} : { bodyLimit: hostLimit });
    await app.register(gatehousePlugin, { gatehouse: gatehouse() });
    app.post('/upload', async (request) => ({ length: JSON.stringify(request.body).length }));
    try {
      await run(app);
    } finally {
      await app.close();
    }
  };

  it("refuses a body over BODY_LIMIT on its routes unread, and leaves the host's routes the host's limit", async () => {
    await withApp(undefined, async (app) => {
      const login = await app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: 'a@example.com', password: 'x'.repeat(OVER) },
      });
      expect(login.statusCode).toBe(413);
      expect(login.json()).toMatchObject({ code: 'BODY_TOO_LARGE' });
      const token = await app.inject({
        method: 'POST',
        url: '/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `grant_type=password&username=a&password=${'x'.repeat(OVER)}`,
      });
      expect(token.statusCode).toBe(400);
      expect(token.json()).toMatchObject({ error: 'invalid_request', code: 'BODY_TOO_LARGE' });
      const upload = await app.inject({
        method: 'POST',
        url: '/upload',
        payload: { data: 'x'.repeat(OVER) },
      });
      expect(upload.statusCode).toBe(200);
    });
  });

  it("keeps a host's stricter limit on Gatehouse's routes too", async () => {
    await withApp(2048, async (app) => {
      const login = await app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { email: 'a@example.com', password: 'x'.repeat(3000) },
      });
      expect(login.statusCode).toBe(413);
    });
  });
});
