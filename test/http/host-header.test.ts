import type { FastifyInstance, FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refuseCrossSiteRequest } from '../../src/http/csrf.js';
import { isValidHost } from '../../src/http/host-header.js';
import { buildTestServer } from '../../src/testing.js';
import { createUser, login } from '../support/accounts.js';
import { listenOnLoopback, rawRequest } from '../support/listen.js';

describe('isValidHost (RFC 9110 §7.2)', () => {
  it('takes host[:port] with a reg-name, an IPv4 address or a bracketed IPv6 literal', () => {
    for (const host of [
      'localhost',
      'localhost:8000',
      '127.0.0.1:45133',
      '[::1]:8000',
      'auth.example.com',
      'xn--bcher-kva.example',
    ])
      expect(isValidHost(host), host).toBe(true);
  });

  it('refuses user-info, paths, spaces, two joined lines, empty values and long ports', () => {
    for (const host of [
      undefined,
      '',
      'evil@localhost:18941',
      'a b',
      'localhost:18941/x',
      'a, b',
      'localhost:123456',
      '[::1',
      'host:port',
    ])
      expect(isValidHost(host), String(host)).toBe(false);
  });
});

describe('the Host header on the reference server (red-team 2026-12m M2)', () => {
  let app: FastifyInstance;
  let port: number;
  let token: string;
  beforeAll(async () => {
    app = await buildTestServer();
    const user = await createUser(app);
    token = (await login(app, user.email)).access_token;
    port = Number(new URL(await listenOnLoopback(app)).port);
  });
  afterAll(async () => app.close());

  it('answers a malformed Host with 400 problem+json (RFC 9112 §3.2)', async () => {
    for (const host of ['evil@localhost', 'a b', 'localhost/x']) {
      const response = await app.inject({ method: 'GET', url: '/healthz', headers: { host } });
      expect(response.statusCode, host).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ code: 'BAD_REQUEST' });
    }
    expect(
      (await app.inject({ method: 'GET', url: '/healthz', headers: { host: '[::1]:8000' } })).statusCode,
    ).toBe(200);
  });

  it('answers an empty Host with 400 problem+json', async () => {
    const answer = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
  });

  it('answers an HTTP/1.1 request without Host with 400 problem+json, not a bare 400', async () => {
    const answer = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
    expect(answer).toMatch(/"code":"BAD_REQUEST"/);
  });

  it('answers two Host lines with 400, instead of reading the first', async () => {
    const answer = await rawRequest(
      port,
      'GET /healthz HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toMatch(/content-type: application\/problem\+json/i);
  });

  it('does not read the first of two Authorization lines as the credential', async () => {
    const one = await rawRequest(
      port,
      `GET /users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    expect(one).toMatch(/^HTTP\/1\.1 200 /);
    const two = await rawRequest(
      port,
      `GET /users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer other\r\nConnection: close\r\n\r\n`,
    );
    expect(two).toMatch(/^HTTP\/1\.1 401 /);
  });

  it('lets HTTP/1.0 omit Host, as RFC 9112 allows', async () => {
    const answer = await rawRequest(port, 'GET /healthz HTTP/1.0\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  });
});

describe("the CSRF guard's own origin", () => {
  it('is no origin at all for a malformed Host, so an Origin copying it is cross-site', () => {
    const request = (host: string, origin: string) =>
      ({ headers: { origin }, protocol: 'http', host }) as unknown as FastifyRequest;
    expect(() =>
      refuseCrossSiteRequest(request('localhost:8000', 'http://localhost:8000'), new Set()),
    ).not.toThrow();
    for (const host of ['evil@localhost:8000', 'evil.example, localhost:8000', 'a b']) {
      expect(() => refuseCrossSiteRequest(request(host, `http://${host}`), new Set()), host).toThrow(
        expect.objectContaining({ code: 'CROSS_SITE_REQUEST' }),
      );
    }
  });
});
