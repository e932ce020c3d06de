import type { FastifyInstance } from 'fastify';
import { base64url, decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, createUser, login } from '../support/accounts.js';

describe('GET /users/me with a bearer token', () => {
  let app: FastifyInstance;
  let clock: TestClock;
  let token: string;
  let user: Awaited<ReturnType<typeof createUser>>;
  const secret = new Uint8Array(32).map((_, i) => (i * 7 + 7) % 256);

  beforeAll(async () => {
    clock = createTestClock();
    app = await buildTestServer({ secretKey: secret }, { clock });
    user = await createUser(app, { email: 'me@example.com' });
    token = (await login(app, user.email)).access_token;
  });
  afterAll(async () => app.close());

  const me = (headers: Record<string, string>) => app.inject({ method: 'GET', url: '/users/me', headers });

  const forge = async (
    mutate: (claims: Record<string, unknown>) => void,
    header: Record<string, unknown> = {},
    key = secret,
  ) => {
    const claims: Record<string, unknown> = { ...decodeJwt(token) };
    mutate(claims);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: 'x', ...header })
      .sign(key);
  };

  const expectInvalidToken = async (presented: string) => {
    const response = await me(bearer(presented));
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="gatehouse", error="invalid_token"/);
    expect(response.json()).toMatchObject({ code: 'INVALID_TOKEN' });
  };

  it('returns the user for a valid token', async () => {
    const response = await me(bearer(token));
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id: user.id, email: 'me@example.com', role: 'user' });
  });

  it('I7: personal data answers say Cache-Control: no-store', async () => {
    // Authenticated by a cookie they are not covered by RFC 9111 §3.5 (which only spares requests
    // with Authorization), and the web UI reads them with its cookie session on shared computers.
    const paths = [
      '/users/me',
      '/users/me/sessions',
      '/users/me/mfa',
      '/users/me/passkeys',
      '/users/me/connected-apps',
    ];
    const headers: Record<string, string | undefined> = {};
    for (const url of paths) {
      headers[url] = String(
        (await app.inject({ method: 'GET', url, headers: bearer(token) })).headers['cache-control'],
      );
    }
    expect(headers).toEqual(Object.fromEntries(paths.map((url) => [url, 'no-store'])));
  });

  it('asks for credentials with WWW-Authenticate when none are sent', async () => {
    const response = await me({});
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="gatehouse"');
    expect(response.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('answers 401 before validating the body, so anonymous callers learn nothing of the schema', async () => {
    const response = await app.inject({ method: 'PATCH', url: '/users/me', payload: { nonsense: true } });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('UNAUTHENTICATED');
  });

  it('rejects a tampered token', async () => {
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p ?? '', 'base64url').toString());
    claims.sub = 'someone-else';
    await expectInvalidToken(`${h}.${base64url.encode(JSON.stringify(claims))}.${s}`);
  });

  it('rejects alg none', async () => {
    const [, p] = token.split('.');
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }));
    await expectInvalidToken(`${header}.${p}.`);
  });

  it('rejects a token signed with another key', async () => {
    const kid =
      decodeJwt(token) && JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()).kid;
    await expectInvalidToken(
      await forge(
        () => {},
        { kid },
        new Uint8Array(32).map((_, i) => (i * 7 + 9) % 256),
      ),
    );
  });

  it('rejects wrong typ, aud, iss and a missing exp even when correctly signed', async () => {
    const kid = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()).kid;
    await expectInvalidToken(await forge(() => {}, { kid, typ: 'JWT' }));
    await expectInvalidToken(
      await forge(
        (c) => {
          c.aud = 'another-api';
        },
        { kid },
      ),
    );
    await expectInvalidToken(
      await forge(
        (c) => {
          c.iss = 'evil';
        },
        { kid },
      ),
    );
    await expectInvalidToken(
      await forge(
        (c) => {
          delete c.exp;
        },
        { kid },
      ),
    );
    // Control: the same forging path with nothing changed is accepted, so the rejections above are real.
    expect((await me(bearer(await forge(() => {}, { kid })))).statusCode).toBe(200);
  });

  it('rejects an expired token', async () => {
    // Its own server and clock: moving time on must not expire the other tests' token.
    const ownClock = createTestClock();
    const own = await buildTestServer({ secretKey: secret }, { clock: ownClock });
    try {
      const someone = await createUser(own);
      const short = (await login(own, someone.email)).access_token;
      ownClock.advance(901_000);
      const response = await own.inject({ method: 'GET', url: '/users/me', headers: bearer(short) });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ code: 'INVALID_TOKEN' });
      expect(response.headers['www-authenticate']).toContain('expired');
    } finally {
      await own.close();
    }
  });

  it('rejects the token of a disabled user', async () => {
    const other = await createUser(app);
    const otherToken = (await login(app, other.email)).access_token;
    await gatehouseCore(app.gatehouse).accounts.applyUserChange(other.id, { isActive: false });
    await expectInvalidToken(otherToken);
  });

  it.each([
    'Bearer',
    'Bearer ',
    'Bearer a b',
    'bearer x.y.z',
    'Bearer ....',
    `Bearer ${'a'.repeat(10_000)}`,
    'Bearer eyJhbGciOiJIUzI1NiJ9.%%%.x',
    'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln',
    'Bearer ghr_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    'Basic dXNlcjpwYXNz',
    'Bearer \u00ff\u00fe',
  ])('never answers 500 for Authorization: %j', async (value) => {
    const response = await me({ authorization: value });
    expect(response.statusCode).toBe(401);
  });
});

describe('GET /users/me from memory (the guard without promises)', () => {
  it('answers a repeated request without verifying or reading again, and still refuses it once revoked', async () => {
    const app = await buildTestServer();
    try {
      const user = await createUser(app, { email: 'me-memory@example.com' });
      const { access_token: token } = await login(app, user.email);
      const first = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
      expect(first.statusCode).toBe(200);
      const sessions = gatehouseCore(app.gatehouse).sessions;
      const before = { jwt: sessions.cacheStats().jwt, user: gatehouseCore(app.gatehouse).userCache.stats() };
      const second = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
      expect(second.statusCode).toBe(200);
      expect(second.body).toBe(first.body);
      // One more hit each, no miss: neither a signature check nor a user read ran.
      expect(sessions.cacheStats().jwt).toEqual({ hits: before.jwt.hits + 1, misses: before.jwt.misses });
      expect(gatehouseCore(app.gatehouse).userCache.stats()).toEqual({
        hits: before.user.hits + 1,
        misses: before.user.misses,
      });
      const sessionId = decodeJwt(token).sid;
      if (typeof sessionId !== 'string') throw new Error('no sid');
      await sessions.revokeSessions([sessionId]);
      const after = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
      expect(after.statusCode).toBe(401);
      expect(after.json()).toMatchObject({ code: 'INVALID_TOKEN' });
    } finally {
      await app.close();
    }
  });

  it('sends the body its response schema serializes, as JSON, and a changed account at once', async () => {
    const app = await buildTestServer();
    try {
      const user = await createUser(app, { email: 'me-body@example.com' });
      const { access_token: token } = await login(app, user.email);
      const first = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
      const again = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
      expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(again.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(again.body).toBe(first.body);
      // Exactly the bytes of the route's schema serializer: the fields in schema order, nothing else.
      const { id, email, full_name, role, is_active, email_verified, created_at } = first.json();
      expect(first.body).toBe(
        JSON.stringify({ id, email, full_name, role, is_active, email_verified, created_at }),
      );
      const changed = await app.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: bearer(token),
        payload: { full_name: 'Renamed Person' },
      });
      expect(changed.statusCode).toBe(200);
      const after = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
      expect(after.json()).toMatchObject({ id: user.id, full_name: 'Renamed Person' });
      expect(after.body).toBe(changed.body);
    } finally {
      await app.close();
    }
  });

  it('answers a cached token from memory only in a header the full parse accepts, counting one hit each', async () => {
    const app = await buildTestServer();
    try {
      const user = await createUser(app, { email: 'me-header-forms@example.com' });
      const { access_token: token } = await login(app, user.email);
      const me = (authorization: string) =>
        app.inject({ method: 'GET', url: '/users/me', headers: { authorization } });
      expect((await me(`Bearer ${token}`)).statusCode).toBe(200);
      const sessions = gatehouseCore(app.gatehouse).sessions;
      const hitsAfter = (before: { hits: number; misses: number }, hits: number) => ({
        hits: before.hits + hits,
        misses: before.misses,
      });
      // RFC 6750 §2.1 forms other than the usual `Bearer <token>` take the full parse: same answer.
      for (const authorization of [
        `bearer ${token}`,
        `BEARER ${token}`,
        `Bearer   ${token}`,
        `Bearer ${token}  `,
      ]) {
        const before = sessions.cacheStats().jwt;
        const response = await me(authorization);
        expect(response.statusCode, authorization.slice(0, 12)).toBe(200);
        expect(sessions.cacheStats().jwt).toEqual(hitsAfter(before, 1));
      }
      // The cached token followed or preceded by anything else is not that token.
      for (const authorization of [
        `Bearer ${token} x`,
        `Bearer ${token},x`,
        `Bearer ${token}x`,
        `Bearer x${token}`,
      ]) {
        const response = await me(authorization);
        expect(response.statusCode, authorization.slice(-12)).toBe(401);
        expect(response.json()).toMatchObject({ code: 'INVALID_TOKEN' });
      }
      const sessionId = decodeJwt(token).sid;
      if (typeof sessionId !== 'string') throw new Error('no sid');
      await sessions.revokeSessions([sessionId]);
      const before = sessions.cacheStats().jwt;
      const revoked = await me(`Bearer ${token}`);
      expect(revoked.statusCode).toBe(401);
      expect(revoked.headers['www-authenticate']).toContain('The session was ended.');
      expect(sessions.cacheStats().jwt).toEqual(hitsAfter(before, 1));
    } finally {
      await app.close();
    }
  });
});
