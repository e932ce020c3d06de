import { connect, type Socket } from 'node:net';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handleClientError, serializeError, serializeRequest } from '../../src/http/log-options.js';
import { buildServer } from '../../src/server.js';
import { startServer } from '../../src/start-server.js';
import { testConfig } from '../../src/testing.js';
import { cookiesOf, createUser, form } from '../support/accounts.js';
import { listenOnLoopback } from '../support/listen.js';

const SESSION = '__Host-gatehouse_session';
const PASSWORD = 'log-test passphrase violet 7731';

/** Every form a secret could take in a log line: text, URL-encoded, JSON byte array, base64, hex. */
function encodingsOf(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [
    secret,
    encodeURIComponent(secret),
    // A Buffer serialized as JSON: {"type":"Buffer","data":[98,101,…]}, or a Uint8Array's values.
    [...bytes].join(','),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    bytes.toString('hex'),
  ];
}

/** Sends raw bytes on a fresh connection and waits until the server has closed it. */
function sendRaw(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.write(payload, 'latin1');
  });
}

describe('logs at trace level hold no secret (issue 8)', () => {
  let app: FastifyInstance;
  let port: number;
  const lines: string[] = [];
  const secrets = new Map<string, string>();

  beforeAll(async () => {
    app = await buildServer(testConfig({ logLevel: 'trace' }), {
      logStream: { write: (line: string) => void lines.push(line) },
      webUi: false,
    });
    port = Number(new URL(await listenOnLoopback(app)).port);
  });
  afterAll(async () => app?.close());

  const cookieOf = (response: LightMyRequestResponse) =>
    [...cookiesOf(response)].map(([name, { value }]) => `${name}=${value}`).join('; ');

  it('after a full sign-in, refresh, cookie login and malformed requests, the log has none of them', async () => {
    const user = await createUser(app, { password: PASSWORD });
    secrets.set('password', PASSWORD);

    const granted = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ grant_type: 'password', username: user.email, password: PASSWORD }),
    });
    expect(granted.statusCode).toBe(200);
    const tokens = granted.json() as { access_token: string; refresh_token: string };
    secrets.set('access token', tokens.access_token);
    secrets.set('refresh token', tokens.refresh_token);

    const refreshed = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }),
    });
    expect(refreshed.statusCode).toBe(200);
    secrets.set('rotated refresh token', refreshed.json().refresh_token);

    // Browser login: CSRF cookie and token, then the session cookie.
    const csrf = await app.inject({ method: 'GET', url: '/auth/csrf' });
    const csrfCookie = cookieOf(csrf);
    const cookieLogin = await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { cookie: csrfCookie, 'x-csrf-token': csrf.json().csrf_token },
      payload: { email: user.email, password: PASSWORD },
    });
    expect(cookieLogin.statusCode).toBeLessThan(300);
    const session = cookiesOf(cookieLogin).get(SESSION)?.value;
    expect(session).toBeDefined();
    secrets.set('session cookie', session ?? '');
    const cookieHeader = `${csrfCookie}; ${SESSION}=${session}`;

    const headers = { authorization: `Bearer ${tokens.access_token}`, cookie: cookieHeader };
    expect((await app.inject({ method: 'GET', url: '/users/me', headers })).statusCode).toBe(200);
    // A token in the query string (some clients do this) is redacted from the logged URL.
    await app.inject({ method: 'GET', url: `/users/me?access_token=${tokens.access_token}`, headers });
    // Validation failures and broken JSON that carry the password in the body.
    await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'x@example.com', password: PASSWORD, role: 'super_admin' },
    });
    await app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { 'content-type': 'application/json', cookie: cookieHeader },
      payload: `{"email":"${user.email}","password":"${PASSWORD}"`,
    });
    await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      payload: form({ grant_type: 'password', username: user.email, password: PASSWORD, scope: '\u0000' }),
    });

    // Requests that fail HTTP parsing: Node hands Fastify the raw bytes as `err.rawPacket`.
    const request = (extra: string) =>
      `POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tokens.access_token}\r\n` +
      `Cookie: ${cookieHeader}\r\nContent-Type: application/x-www-form-urlencoded\r\n${extra}` +
      `Content-Length: ${PASSWORD.length + 9}\r\n\r\npassword=${PASSWORD}`;
    const badByte = await sendRaw(port, request('X-Bad: a\u0001b\r\n'));
    expect(badByte).toMatch(/^HTTP\/1\.1 400 /);
    expect(badByte).toContain('application/problem+json');
    const overflow = await sendRaw(port, request(`X-Padding: ${'p'.repeat(17 * 1024)}\r\n`));
    expect(overflow).toMatch(/^HTTP\/1\.1 431 /);

    const log = lines.join('');
    // The run did log at trace level, including the two parser failures: the test can fail.
    expect(log).toContain('incoming request');
    expect(log.match(/"client error"/g)).toHaveLength(2);
    expect(log).toContain('HPE_HEADER_OVERFLOW');
    expect(log).toContain('[redacted]');
    for (const [name, secret] of secrets) {
      for (const encoded of encodingsOf(secret)) {
        expect(log.includes(encoded), `${name} found in the log as ${encoded.slice(0, 24)}…`).toBe(false);
      }
    }
  });
});

describe('log serializers', () => {
  it('keep only type, message, stack, code, status and cause of an error, following causes a bounded depth', () => {
    const inner = Object.assign(new Error('inner'), { rawPacket: Buffer.from('secret'), parameters: ['p'] });
    const outer = Object.assign(new Error('outer', { cause: inner }), { code: 'E_OUTER', headers: { a: 1 } });
    const logged = serializeError(outer);
    expect(Object.keys(logged).sort()).toEqual(['cause', 'code', 'message', 'stack', 'statusCode', 'type']);
    expect(logged.cause).toMatchObject({ type: 'Error', message: 'inner' });
    expect(JSON.stringify(logged)).not.toContain('rawPacket');
    const cyclic = new Error('loop');
    cyclic.cause = cyclic;
    let depth = 0;
    for (let at: { cause?: unknown } | undefined = serializeError(cyclic); at !== undefined; depth++) {
      at = at.cause as { cause?: unknown } | undefined;
    }
    expect(depth).toBe(5);
    expect(serializeError('a string with a secret')).toEqual({
      type: 'string',
      message: '[not an Error]',
      stack: '',
    });
  });

  it('log the method, path and query with credential values redacted, never headers', () => {
    expect(
      serializeRequest({
        method: 'GET',
        url: '/x?limit=5&access_token=abc&Password=p&code=1&broken%=v',
        ip: '127.0.0.1',
      }),
    ).toEqual({
      method: 'GET',
      url: '/x?limit=5&access_token=[redacted]&Password=[redacted]&code=[redacted]&broken%=v',
      host: undefined,
      remoteAddress: '127.0.0.1',
    });
  });

  // Red-team 2026-12k P2: OpenID Connect's login_hint and the admin search put addresses in the
  // query, which the info-level request log kept, IP alongside, past the account's deletion.
  it('redact whom a request is about: login_hint, email keys, and any value holding an @', () => {
    expect(
      serializeRequest({
        method: 'GET',
        url: '/authorize?client_id=app&login_hint=alice%40example.com&scope=openid&state=s1',
      }).url,
    ).toBe('/authorize?client_id=app&login_hint=[redacted]&scope=openid&state=s1');
    expect(serializeRequest({ method: 'GET', url: '/users?email_prefix=ali&limit=20' }).url).toBe(
      '/users?email_prefix=[redacted]&limit=20',
    );
    expect(serializeRequest({ method: 'GET', url: '/callback?who=bob@example.org&page=2' }).url).toBe(
      '/callback?who=[redacted]&page=2',
    );
  });
});

describe('the listening shell of `gatehouse serve` logs no secret either (issue 8)', () => {
  it('answers unparsable requests as problem+json and keeps their raw bytes out of a trace log', async () => {
    const lines: string[] = [];
    // startServer's own Fastify owns the socket, so its client-error path is the one that runs.
    const server = await startServer(testConfig({ logLevel: 'trace', port: 0 }), {
      logStream: { write: (line: string) => void lines.push(line) },
      webUi: false,
    });
    try {
      expect(await server.ready).toBeDefined();
      const port = Number(new URL(server.url).port);
      const bearer = `gha_${'s3cr3t'.repeat(8)}`;
      const cookie = `__Host-gatehouse_session=${'c00k1e'.repeat(8)}`;
      const request = (extra: string) =>
        `POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${bearer}\r\nCookie: ${cookie}\r\n` +
        `Content-Type: application/x-www-form-urlencoded\r\n${extra}` +
        `Content-Length: ${PASSWORD.length + 9}\r\n\r\npassword=${PASSWORD}`;
      expect(await sendRaw(port, request('X-Bad: a\u0001b\r\n'))).toMatch(/^HTTP\/1\.1 400 /);
      expect(await sendRaw(port, request(`X-Padding: ${'p'.repeat(17 * 1024)}\r\n`))).toMatch(
        /^HTTP\/1\.1 431 /,
      );
      const log = lines.join('');
      expect(log.match(/"client error"/g)).toHaveLength(2);
      for (const secret of [bearer, cookie, PASSWORD]) {
        for (const encoded of encodingsOf(secret)) expect(log.includes(encoded)).toBe(false);
      }
    } finally {
      await server.close();
    }
  });
});

/**
 * Sends raw bytes on a fresh connection; resolves with the answer once the server closed the
 * connection or sent one whole final answer (interim 1xx answers skipped; body by Content-Length,
 * or chunked up to its last chunk).
 */
function answerTo(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    const done = () => {
      socket.destroy();
      resolve(answer);
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      answer += chunk;
      const final = answer.replace(/^(?:HTTP\/1\.1 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
      const end = final.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(final);
      if (end !== -1 && length !== null && final.length >= end + 4 + Number(length[1])) done();
      else if (end !== -1 && /transfer-encoding: chunked/i.test(final) && final.endsWith('0\r\n\r\n')) done();
    });
    socket.on('error', reject);
    socket.on('close', done);
    socket.write(payload, 'latin1');
  });
}

/** The problem+json body of a raw answer, after checking its status line and framing headers. */
function problemOf(answer: string, status: number): Record<string, unknown> {
  expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  expect(head).toMatch(/\r\ncontent-type: application\/problem\+json/i);
  expect(head).toMatch(/\r\nconnection: close\r\n/i);
  const problem = JSON.parse(body) as Record<string, unknown>;
  expect(problem).toMatchObject({ type: 'about:blank', status });
  return problem;
}

describe('answers of the HTTP layer, before any route (RFC 9110, RFC 9112)', () => {
  let app: FastifyInstance;
  let port: number;
  const lines: string[] = [];
  const TARGET_MARK = 'tgt-marker-5c1f';

  beforeAll(async () => {
    app = await buildServer(testConfig({ logLevel: 'debug' }), {
      logStream: { write: (line: string) => void lines.push(line) },
      webUi: false,
    });
    port = Number(new URL(await listenOnLoopback(app)).port);
  });
  afterAll(async () => app?.close());

  it('answers a request-target longer than the header limit 414 URI_TOO_LONG, not 431 (RFC 9112 §3)', async () => {
    const answer = await answerTo(
      port,
      `GET /users/me?${TARGET_MARK}=${'a'.repeat(20 * 1024)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    );
    expect(problemOf(answer, 414)).toMatchObject({ title: 'URI Too Long', code: 'URI_TOO_LONG' });
    expect(answer).not.toContain(TARGET_MARK);
    expect(lines.join('')).not.toContain(TARGET_MARK);
  });

  it('keeps 431 HEADERS_TOO_LARGE for header fields over the limit, with a code of its own', async () => {
    const answer = await answerTo(
      port,
      `GET /users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'p'.repeat(20 * 1024)}\r\n\r\n`,
    );
    expect(problemOf(answer, 431)).toMatchObject({
      title: 'Request Header Fields Too Large',
      code: 'HEADERS_TOO_LARGE',
    });
  });

  it('answers an unknown method 501 NOT_IMPLEMENTED (RFC 9110 §9.1), without echoing it', async () => {
    const answer = await answerTo(port, 'FOOMETHOD /users/me HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(problemOf(answer, 501)).toMatchObject({ title: 'Not Implemented', code: 'NOT_IMPLEMENTED' });
    expect(answer).not.toContain('FOOMETHOD');
    expect(lines.join('')).not.toContain('FOOMETHOD');
  });

  it('answers bytes that are not HTTP at all (a TLS hello on the plain port) 400 BAD_REQUEST', async () => {
    const answer = await answerTo(port, '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u01fc\u0003\u0003');
    expect(problemOf(answer, 400)).toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('answers an expectation it cannot meet 417 EXPECTATION_FAILED as problem+json, not a bare 417', async () => {
    const answer = await answerTo(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 200-ok\r\n\r\n');
    expect(problemOf(answer, 417)).toMatchObject({ title: 'Expectation Failed', code: 'EXPECTATION_FAILED' });
    expect(answer).not.toContain('200-ok');
  });

  it('still meets Expect: 100-continue', async () => {
    const answer = await answerTo(
      port,
      'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(answer).toContain('{"status":"ok"}');
  });
});

describe('handleClientError tells a request-target overflow from a header overflow by the packet', () => {
  /** The answer `handleClientError` writes for an overflow of `packet` at `offset`. */
  function statusFor(packet: string, offset = packet.length): number {
    let written = '';
    const socket = {
      destroyed: false,
      writable: true,
      end(text: string) {
        written = text;
      },
    };
    const error = Object.assign(new Error('Header overflow'), {
      code: 'HPE_HEADER_OVERFLOW',
      bytesParsed: offset,
      rawPacket: Buffer.from(packet, 'latin1'),
    });
    const app = { log: { debug: () => {} } } as unknown as FastifyInstance;
    handleClientError.call(app, error, socket as unknown as Socket);
    return Number(/^HTTP\/1\.1 (\d{3}) /.exec(written)?.[1]);
  }
  const long = 'a'.repeat(17 * 1024);

  it('414 when the request line is still open: in one packet, pipelined, or ending in a later one', () => {
    expect(statusFor(`GET /${long}`)).toBe(414);
    expect(statusFor(`GET /${long} HTTP/1.1\r\n\r\n`, 5 + long.length)).toBe(414);
    expect(statusFor(`\r\nGET /${long}`)).toBe(414);
    const first = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
    expect(statusFor(`${first}GET /${long}`)).toBe(414);
    // A later packet of the target: the overflow stopped on the space before the version.
    expect(statusFor(`${long} HTTP/1.1\r\nHost: x\r\n\r\n`, long.length)).toBe(414);
  });

  it('431 once a line has ended, and when the packet cannot tell (a header value over several packets)', () => {
    expect(statusFor(`GET /a HTTP/1.1\r\nCookie: ${long}`)).toBe(431);
    expect(statusFor(`GET /a HTTP/1.1\r\nX-A: ${long} HTTP/1.1\r\n\r\n`, 22 + long.length + 9)).toBe(431);
    expect(statusFor(`c=${long}; d=e`)).toBe(431);
    expect(statusFor(long)).toBe(431);
  });
});
