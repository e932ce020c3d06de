import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { bearerFor, createAccount, type SignedIn, signIn } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

describe.each(engines)('OAuth client admin routes ($name)', ({ name }) => {
  let app: FastifyInstance;
  let admin: SignedIn;
  let drop: () => Promise<void> = async () => {};

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({ databaseUrl: database.url });
    admin = await signIn(app, 'admin');
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  const create = (body: object, who: SignedIn = admin) =>
    app.inject({ method: 'POST', url: '/oauth/clients', headers: who.headers, payload: body });

  // Red-team F10: WHATWG URL accepts `;` and `,` in a host, and the consent page copied the origin
  // into its CSP (`form-action 'self' https://x.example;frame-ancestors; …`).
  it.each(['https://x.example;frame-ancestors/cb', 'https://x.example,evil/cb'])(
    'refuses the redirect URI %s, whose host is not a host name (400 problem+json)',
    async (uri) => {
      const response = await create({ name: 'Semicolon', redirect_uris: [uri] });
      expect(response.statusCode).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json().code).toBe('VALIDATION_FAILED');
    },
  );

  // An app's origin in CORS_CREDENTIALED_ORIGINS reads the person's session API with their cookies
  // (red-team 2026-12e J6's other half): the operator is told when the app is registered, in the
  // answer and the log, and at every start while it stays so.
  it('warns when an app redirects to an origin of CORS_CREDENTIALED_ORIGINS, in the answer, the log and at start-up', async () => {
    const database = await createTestDatabaseUrl(name);
    const logged: string[] = [];
    const logger = { level: 'warn', stream: { write: (line: string) => void logged.push(line) } };
    const settings = {
      // A file, for SQLite: the second start reads what the first wrote.
      databaseUrl: name === 'sqlite' ? `sqlite:${join(tempDir('gh-cors-apps-'), 'db.sqlite')}` : database.url,
      corsCredentialedOrigins: ['https://front.example', 'https://other.example'],
      // Both starts as one deployment: one SECRET_KEY (the database checks it).
      secretKey: new Uint8Array(randomBytes(32)),
    };
    let server = await buildTestServer(settings, { logger });
    try {
      const owner = await signIn(server, 'admin');
      const register = (body: object) =>
        server.inject({ method: 'POST', url: '/oauth/clients', headers: owner.headers, payload: body });
      const risky = await register({
        name: 'Partner',
        redirect_uris: ['https://front.example/cb', 'https://app.partner.example/cb'],
        post_logout_redirect_uris: ['https://other.example/bye'],
      });
      expect(risky.statusCode).toBe(201);
      const { client_id: riskyId, warnings } = risky.json<{ client_id: string; warnings: string[] }>();
      expect(warnings).toEqual([expect.stringContaining('https://front.example, https://other.example')]);
      expect(warnings[0]).toContain(riskyId);
      const warned = () =>
        logged.filter((line) => line.includes(riskyId) && line.includes('CORS_CREDENTIALED_ORIGINS'));
      expect(warned()).toHaveLength(1);
      // An app elsewhere (a private-use scheme has no origin at all): no warning.
      const fine = await register({
        name: 'Elsewhere',
        redirect_uris: ['https://app.partner.example/cb', 'com.example.app:/cb'],
      });
      expect(fine.statusCode).toBe(201);
      expect(fine.json()).not.toHaveProperty('warnings');
      await server.close();
      logged.length = 0;
      // The next start says it again, for that client alone.
      server = await buildTestServer(settings, { logger });
      await server.ready();
      expect(warned()).toHaveLength(1);
      expect(logged.filter((line) => line.includes(fine.json().client_id))).toEqual([]);
    } finally {
      await server.close();
      await database.drop();
    }
  });

  it('registers a public client (201, no secret, no-store) and shows it in the list and by id', async () => {
    const response = await create({ name: 'Notes', redirect_uris: ['https://notes.example/cb'] });
    expect(response.statusCode).toBe(201);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json();
    expect(body).toMatchObject({
      client_type: 'public',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'profile', 'email'],
    });
    expect(body).not.toHaveProperty('client_secret');
    // RFC 9110 §15.3.2: a 201 names the created resource in Location, the client's admin resource.
    expect(response.headers.location).toBe(`/oauth/clients/${body.client_id}`);
    const one = await app.inject({
      method: 'GET',
      url: String(response.headers.location),
      headers: admin.headers,
    });
    expect(one.json()).toEqual(body);
    const list = await app.inject({ method: 'GET', url: '/oauth/clients', headers: admin.headers });
    expect(list.json().items).toContainEqual(body);
  });

  it('returns a confidential client’s secret once; reads never show it', async () => {
    const response = await create({
      name: 'Billing',
      confidential: true,
      grant_types: ['client_credentials'],
    });
    expect(response.statusCode).toBe(201);
    const { client_id: id, client_secret: secret } = response.json();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const list = await app.inject({ method: 'GET', url: '/oauth/clients', headers: admin.headers });
    expect(list.body).not.toContain(secret);
    expect((await gatehouseCore(app.gatehouse).oauthClients.authenticate(id, secret)).ok).toBe(true);
  });

  it('answers bad registrations 400 VALIDATION_FAILED with one error per field, never a 500', async () => {
    const cases: [object, string[]][] = [
      [{ name: 'X', redirect_uris: ['http://evil.example/cb'] }, ['redirect_uris/0']],
      [{ name: 'X', redirect_uris: ['https://a.example/'], grant_types: ['implicit'] }, ['grant_types']],
      [{ name: 'X', grant_types: ['client_credentials'] }, ['grant_types']],
      [{ name: '', redirect_uris: ['https://a.example/'] }, ['name']],
    ];
    for (const [body, fields] of cases) {
      const response = await create(body);
      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('VALIDATION_FAILED');
      expect(response.json().errors.map((e: { field: string }) => e.field)).toEqual(fields);
    }
    for (const body of [{ name: 'X', extra: 1 }, { name: 'X', redirect_uris: 'https://a.example/' }, {}]) {
      const response = await create(body);
      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('VALIDATION_FAILED');
    }
  });

  // Abuse assignment: a client could only be removed, losing its registration, secret and consents.
  it('disables a client at once (its sessions end, it cannot authenticate or start a sign-in) and enables it again', async () => {
    const created = (
      await create({ name: 'Paused', confidential: true, redirect_uris: ['https://paused.example/cb'] })
    ).json();
    const id: string = created.client_id;
    const secret: string = created.client_secret;
    const core = gatehouseCore(app.gatehouse);
    const user = await createAccount(app, 'user');
    // A session the app holds for a person (what a code exchange starts).
    const held = await core.sessions.startBearerSession(
      user.id,
      ['openid', 'me'],
      { ip: '203.0.113.1', userAgent: 'test' },
      id,
    );
    const me = () =>
      app.inject({
        method: 'GET',
        url: '/users/me',
        headers: { authorization: `Bearer ${held.accessToken}` },
      });
    expect((await me()).statusCode).toBe(200);
    const patch = (disabled: boolean, who: SignedIn = admin) =>
      app.inject({
        method: 'PATCH',
        url: `/oauth/clients/${id}`,
        headers: who.headers,
        payload: { disabled },
      });
    const refresh = () =>
      app.inject({
        method: 'POST',
        url: '/token',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
        },
        payload: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: held.refreshToken,
        }).toString(),
      });
    const authorize = () =>
      app.inject({
        method: 'GET',
        url: `/authorize?${new URLSearchParams({
          response_type: 'code',
          client_id: id,
          redirect_uri: 'https://paused.example/cb',
          scope: 'openid',
          state: 's',
          code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
          code_challenge_method: 'S256',
        }).toString()}`,
      });

    // Only admins with clients:write.
    expect((await patch(true, await signIn(app, 'user'))).statusCode).toBe(403);
    const disabled = await patch(true);
    expect(disabled.statusCode).toBe(200);
    expect(disabled.json()).toMatchObject({ client_id: id, disabled: true });
    expect(
      (await app.inject({ method: 'GET', url: `/oauth/clients/${id}`, headers: admin.headers })).json(),
    ).toMatchObject({
      disabled: true,
    });
    expect((await me()).statusCode).toBe(401);
    const refused = await refresh();
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({
      error: 'invalid_client',
      error_description: 'This client is disabled.',
    });
    const page = await authorize();
    expect(page.statusCode).toBe(400);
    expect(page.headers.location).toBeUndefined();
    expect(page.body).toContain('This app is disabled.');
    // Repeating the state changes nothing and writes no second audit row.
    expect((await patch(true)).statusCode).toBe(200);

    const enabled = await patch(false);
    expect(enabled.json()).toMatchObject({ disabled: false });
    expect((await authorize()).statusCode).not.toBe(400);
    // The ended session stays ended; the client authenticates again (the refresh token is dead).
    const after = await refresh();
    expect(after.json()).toMatchObject({ error: 'invalid_grant' });
    const audit = await core.audit.list({ targetId: id, limit: 10, offset: 0 });
    expect(audit.items.map((item) => item.event).sort()).toEqual([
      'oauth_client_created',
      'oauth_client_disabled',
      'oauth_client_enabled',
    ]);
    const unknown = await app.inject({
      method: 'PATCH',
      url: '/oauth/clients/nobody',
      headers: admin.headers,
      payload: { disabled: true },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('CLIENT_NOT_FOUND');
    const malformed = await app.inject({
      method: 'PATCH',
      url: `/oauth/clients/${id}`,
      headers: admin.headers,
      payload: { disabled: 'yes' },
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().code).toBe('VALIDATION_FAILED');
  });

  it('deletes (204, then 404 CLIENT_NOT_FOUND); unknown and malformed ids are 404/400, not 500', async () => {
    const { client_id: id } = (
      await create({ name: 'Old', redirect_uris: ['https://old.example/cb'] })
    ).json();
    const remove = () =>
      app.inject({ method: 'DELETE', url: `/oauth/clients/${id}`, headers: admin.headers });
    expect((await remove()).statusCode).toBe(204);
    const again = await remove();
    expect(again.statusCode).toBe(404);
    expect(again.json().code).toBe('CLIENT_NOT_FOUND');
    const bad = await app.inject({ method: 'GET', url: '/oauth/clients/%00', headers: admin.headers });
    expect(bad.statusCode).toBe(400);
  });

  it('is for admins holding clients:read / clients:write: 401 signed out, 403 for users and narrower tokens', async () => {
    expect((await app.inject({ method: 'GET', url: '/oauth/clients' })).statusCode).toBe(401);
    const bob = await signIn(app, 'user');
    const forbidden = await create({ name: 'Mine', redirect_uris: ['https://a.example/'] }, bob);
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().code).toBe('FORBIDDEN');
    const reader = await bearerFor(app, await createAccount(app, 'admin'), 'clients:read');
    expect(
      (await app.inject({ method: 'GET', url: '/oauth/clients', headers: reader.headers })).statusCode,
    ).toBe(200);
    const refused = await create({ name: 'Mine', redirect_uris: ['https://a.example/'] }, reader);
    expect(refused.statusCode).toBe(403);
    expect(refused.json().code).toBe('INSUFFICIENT_SCOPE');
  });
});
