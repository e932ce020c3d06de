import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';

// Issue 13: an IP address cannot be a WebAuthn rp id, so with PUBLIC_URL at localhost the web UI's
// pages opened at 127.0.0.1 (same port) move there; API routes answer on any host.
describe('web UI pages at a loopback address', () => {
  let app: FastifyInstance;
  let other: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ publicUrl: 'http://localhost:8000' });
    other = await buildTestServer({ publicUrl: 'https://auth.example.org' });
  });
  afterAll(async () => {
    await app.close();
    await other.close();
  });

  it('redirects a page at 127.0.0.1:8000 or [::1]:8000 to PUBLIC_URL, keeping the path', async () => {
    for (const host of ['127.0.0.1:8000', '[::1]:8000']) {
      const page = await app.inject({ url: '/index.html?x=1', headers: { host } });
      expect(page.statusCode).toBe(308);
      expect(page.headers.location).toBe('http://localhost:8000/index.html?x=1');
    }
    const root = await app.inject({ url: '/', headers: { host: '127.0.0.1:8000' } });
    expect(root.headers.location).toBe('http://localhost:8000/');
  });

  it('leaves API routes, other ports, localhost itself and other PUBLIC_URLs alone', async () => {
    expect((await app.inject({ url: '/healthz', headers: { host: '127.0.0.1:8000' } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/', headers: { host: '127.0.0.1:9999' } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/', headers: { host: 'localhost:8000' } })).statusCode).toBe(200);
    expect((await other.inject({ url: '/', headers: { host: '127.0.0.1:8000' } })).statusCode).toBe(200);
  });
});
