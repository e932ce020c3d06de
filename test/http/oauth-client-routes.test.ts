import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { bearerFor, createAccount, type SignedIn, signIn } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

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
    const one = await app.inject({
      method: 'GET',
      url: `/oauth/clients/${body.client_id}`,
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
