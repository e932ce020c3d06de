import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';

/** Sends one raw `GET <target>` (any request-target form) and resolves with the answer's head. */
function rawGet(port: number, target: string, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('end', () => resolve(answer.split('\r\n\r\n')[0] ?? ''));
    socket.on('error', reject);
  });
}

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

  it('never redirects to a host named in the request target (absolute-form, RFC 9112 §3.2.2) or path', async () => {
    // Red-team 2026-12h M2: `GET http://evil.example/ HTTP/1.1` with `Host: 127.0.0.1:8000` was
    // answered 308 `Location: http://evil.example/` (a cacheable open redirect), since the target
    // was resolved as a URL against PUBLIC_URL instead of taking its path.
    const server = await buildTestServer({ publicUrl: 'http://localhost:8000' });
    try {
      await server.listen({ port: 0, host: '127.0.0.1' });
      const address = server.server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      for (const [target, location] of [
        ['http://evil.example/', 'http://localhost:8000/'],
        ['http://evil.example/index.html?x=1', 'http://localhost:8000/index.html?x=1'],
        ['//evil.example/index.html', undefined],
      ] as const) {
        const answer = await rawGet(port, target, '127.0.0.1:8000');
        // Not a page (404), or a page moved to PUBLIC_URL: never elsewhere.
        if (location === undefined)
          expect(answer, target).not.toMatch(/^location: (?!http:\/\/localhost:8000\/)/im);
        else expect(answer.match(/^location: (.*)\r$/im)?.[1], target).toBe(location);
      }
    } finally {
      await server.close();
    }
  });

  it('leaves API routes, other ports, localhost itself and other PUBLIC_URLs alone', async () => {
    expect((await app.inject({ url: '/healthz', headers: { host: '127.0.0.1:8000' } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/', headers: { host: '127.0.0.1:9999' } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/', headers: { host: 'localhost:8000' } })).statusCode).toBe(200);
    expect((await other.inject({ url: '/', headers: { host: '127.0.0.1:8000' } })).statusCode).toBe(200);
  });
});
