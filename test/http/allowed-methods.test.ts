import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trackAllowedMethods } from '../../src/http/allowed-methods.js';
import { gatehousePlugin } from '../../src/http/index.js';
import { createGatehouse, type Gatehouse } from '../../src/index.js';
import { buildTestServer, testConfig } from '../../src/testing.js';
import { listenOnLoopback, rawRequest } from '../support/listen.js';

describe('trackAllowedMethods', () => {
  it('names the methods of the routes matching a path, HEAD after GET, wildcards aside', async () => {
    const app = Fastify({ exposeHeadRoutes: false });
    const allowed = trackAllowedMethods(app);
    app.get('/items/:id', async () => 'item');
    app.route({ method: ['PATCH', 'DELETE'], url: '/items/:id', handler: async () => 'changed' });
    app.post('/items', async () => 'created');
    app.options('*', async () => 'preflight');
    app.get('/files/*', async () => 'file');
    await app.ready();
    expect(allowed.at('/items/7')).toEqual(['GET', 'HEAD', 'PATCH', 'DELETE']);
    expect(allowed.at('/items')).toEqual(['POST']);
    expect(allowed.at('/files/a/b')).toEqual(['GET', 'HEAD']);
    // The bare wildcard matches everything: counting it would make every unknown path a 405.
    expect(allowed.at('/nothing')).toEqual([]);
    expect(allowed.at('/items/7/more')).toEqual([]);
    // Paths the router cannot read are served by no route, never an exception.
    expect(allowed.at('')).toEqual([]);
    expect(allowed.at('*')).toEqual([]);
    expect(allowed.at('/items/%zz')).toEqual([]);
    expect(allowed.all()).toEqual(['GET', 'HEAD', 'PATCH', 'DELETE', 'POST']);
    await app.close();
  });
});

describe('a method a path does not take (RFC 9110 §15.5.6)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer();
  });
  afterAll(async () => app.close());

  it('answers 405 problem+json METHOD_NOT_ALLOWED with Allow, not 404', async () => {
    const response = await app.inject({ method: 'GET', url: '/token' });
    expect(response.statusCode).toBe(405);
    // The 405's Allow names what OPTIONS answers too (RFC 9110 §15.5.6: every method supported).
    expect(response.headers.allow).toBe('POST, OPTIONS');
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({
      status: 405,
      code: 'METHOD_NOT_ALLOWED',
      title: 'Method Not Allowed',
    });
    const health = await app.inject({ method: 'DELETE', url: '/healthz?x=1' });
    expect([health.statusCode, health.headers.allow]).toEqual([405, 'GET, HEAD, OPTIONS']);
  });

  it('answers HEAD with the headers GET gets, Content-Length included (RFC 9110 §9.3.2, §8.6)', async () => {
    for (const url of ['/token', '/no/such/path']) {
      const get = await app.inject({ method: 'GET', url });
      const head = await app.inject({ method: 'HEAD', url });
      expect([head.statusCode, head.headers['content-length'], head.body]).toEqual([
        get.statusCode,
        String(Buffer.byteLength(get.body)),
        '',
      ]);
    }
  });

  it('says where PATCH is what it takes (RFC 5789 Accept-Patch), and OPTIONS * names every method', async () => {
    const options = await app.inject({ method: 'OPTIONS', url: '/users/me' });
    expect([options.statusCode, options.headers['accept-patch']]).toEqual([204, 'application/json']);
    expect(
      (await app.inject({ method: 'OPTIONS', url: '/healthz' })).headers['accept-patch'],
    ).toBeUndefined();
    // `OPTIONS *` needs a socket: inject sends the target as `/*`.
    const port = Number(new URL(await listenOnLoopback(app)).port);
    const server = await rawRequest(
      port,
      'OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    );
    expect(server).toMatch(/^HTTP\/1\.1 204 /);
    expect(/^allow: (.*)\r$/im.exec(server)?.[1]?.split(', ')).toEqual(
      expect.arrayContaining(['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS']),
    );
  });

  it('answers OPTIONS on a served path (not a preflight) 204 with Allow', async () => {
    const response = await app.inject({ method: 'OPTIONS', url: '/healthz' });
    expect(response.statusCode).toBe(204);
    expect(response.headers.allow).toBe('GET, HEAD, OPTIONS');
    expect(response.body).toBe('');
  });

  it('still answers 404 for a path no route serves, whatever the method', async () => {
    // A route of the method that found nothing (a web UI asset that is not there) is a 404 too.
    const asset = await app.inject({ method: 'GET', url: '/assets/nope.js' });
    expect([asset.statusCode, asset.headers.allow, asset.json().code]).toEqual([404, undefined, 'NOT_FOUND']);
    const posted = await app.inject({ method: 'POST', url: '/assets/nope.js' });
    expect([posted.statusCode, posted.headers.allow]).toEqual([405, 'GET, HEAD, OPTIONS']);
    for (const method of ['GET', 'POST', 'OPTIONS'] as const) {
      const response = await app.inject({ method, url: '/no/such/path' });
      expect(response.statusCode).toBe(404);
      expect(response.headers.allow).toBeUndefined();
      expect(response.json().code).toBe('NOT_FOUND');
    }
    // A path with a broken escape is Fastify's 400 before any handler, never a 500.
    expect((await app.inject({ method: 'POST', url: '/users/me%zz' })).statusCode).toBe(400);
  });
});

describe('an embedding app', () => {
  let gatehouse: Gatehouse;
  let app: FastifyInstance;
  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig());
    app = Fastify();
    await app.register(gatehousePlugin, { gatehouse, routes: false });
    app.post('/reports', async () => ({ ok: true }));
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await gatehouse.close();
  });

  it('gets 405 for its own routes registered after the plugin', async () => {
    const response = await app.inject({ method: 'GET', url: '/reports' });
    expect([response.statusCode, response.headers.allow, response.json().code]).toEqual([
      405,
      'POST, OPTIONS',
      'METHOD_NOT_ALLOWED',
    ]);
  });
});
