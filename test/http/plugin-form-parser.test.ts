import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { gatehousePlugin } from '../../src/http/index.js';
import { form } from '../support/accounts.js';
import { useGatehouse } from '../support/embedding.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/**
 * The form parser the OAuth endpoints need is Gatehouse's own business: an embedding app's routes
 * must not start taking form bodies (a CORS-safelisted type any web page can make a browser send
 * without a preflight) because the plugin was registered next to them.
 */
describe('gatehousePlugin: the form parser stays inside the plugin', () => {
  const gatehouse = useGatehouse();

  const hostApp = async (setUp: (app: FastifyInstance) => Promise<void> = async () => {}) => {
    const app = Fastify();
    app.post('/before', async (request) => ({ body: request.body }));
    await setUp(app);
    app.post('/after', async (request) => ({ body: request.body }));
    return app;
  };

  it("leaves the host's own routes refusing form bodies (415), before and after the plugin", async () => {
    const app = await hostApp(async (host) => {
      await host.register(gatehousePlugin, { gatehouse: gatehouse() });
    });
    try {
      for (const url of ['/before', '/after']) {
        const response = await app.inject({ method: 'POST', url, headers: FORM, payload: 'amount=100' });
        expect(response.statusCode, url).toBe(415);
      }
      // Gatehouse's own form endpoints still read forms.
      const token = await app.inject({
        method: 'POST',
        url: '/token',
        headers: FORM,
        payload: 'grant_type=nope',
      });
      expect(token.statusCode).toBe(400);
      expect(token.json().error).toBe('unsupported_grant_type');
    } finally {
      await app.close();
    }
  });

  it('lets the host register @fastify/formbody after the plugin (it used to crash the process)', async () => {
    const app = await hostApp(async (host) => {
      await host.register(gatehousePlugin, { gatehouse: gatehouse() });
      await host.register(formbody);
    });
    try {
      await app.ready();
      const response = await app.inject({ method: 'POST', url: '/after', headers: FORM, payload: 'a=1' });
      expect(response.json()).toEqual({ body: { a: '1' } });
    } finally {
      await app.close();
    }
  });

  it("reads OAuth forms with its own parser, not a host's that drops repeated parameters", async () => {
    const app = await hostApp(async (host) => {
      // A host parser that keeps the last of a repeated key (as many do).
      host.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string' },
        (_r, body, done) => {
          done(null, Object.fromEntries(new URLSearchParams(String(body))));
        },
      );
      await host.register(gatehousePlugin, { gatehouse: gatehouse() });
    });
    try {
      // RFC 6749 §3.1: a repeated parameter is refused, never resolved to one of its values.
      const token = await app.inject({
        method: 'POST',
        url: '/token',
        headers: FORM,
        payload: form({ grant_type: ['nope', 'refresh_token'], refresh_token: 'x' }),
      });
      expect(token.statusCode).toBe(400);
      expect(token.json().error_description).toMatch(/grant_type parameter is repeated/);
      // The host's parser still serves the host's routes.
      const mine = await app.inject({ method: 'POST', url: '/after', headers: FORM, payload: 'a=1&a=2' });
      expect(mine.json()).toEqual({ body: { a: '2' } });
    } finally {
      await app.close();
    }
  });
});
