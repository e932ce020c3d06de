import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildServer } from '../../src/server.js';
import { buildTestServer, testConfig } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD, postToken } from '../support/accounts.js';

describe('a database outage', () => {
  let app: FastifyInstance;
  let email: string;
  let accessToken: string;
  beforeAll(async () => {
    app = await buildTestServer();
    const user = await createUser(app);
    email = user.email;
    accessToken = (await login(app, email)).access_token;
    // The first authenticated request caches the user, as in production.
    expect(
      (await app.inject({ method: 'GET', url: '/users/me', headers: bearer(accessToken) })).statusCode,
    ).toBe(200);
    // The database goes away under the running server.
    await gatehouseCore(app.gatehouse).database.close();
  });
  afterAll(async () => app.close().catch(() => {}));

  it('answers 503 problem+json DATABASE_UNAVAILABLE with Retry-After, never a 500', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'new@example.com', password: PASSWORD },
    });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
    expect(response.json()).toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE' });
    expect(response.body).not.toMatch(/\bat .+\.(ts|js):\d+/);
  });

  it('answers /token in the RFC 6749 shape: temporarily_unavailable, our code, no-store', async () => {
    const response = await postToken(app, { grant_type: 'password', username: email, password: PASSWORD });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
    expect(response.json()).toEqual({
      error: 'temporarily_unavailable',
      error_description: expect.any(String),
      code: 'DATABASE_UNAVAILABLE',
    });
  });

  it('keeps serving JWT-authenticated reads from memory', async () => {
    const response = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(accessToken) });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ email });
  });
});

describe('the log line of a database outage', () => {
  it('names the reason (not pino\'s "[not an Error]")', async () => {
    const lines: string[] = [];
    const app = await buildServer(testConfig({ logLevel: 'warn' }), {
      logStream: { write: (line) => void lines.push(line) },
      webUi: false,
    });
    try {
      await gatehouseCore(app.gatehouse).database.close();
      const response = await app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email: 'outage@example.com', password: PASSWORD },
      });
      expect(response.statusCode).toBe(503);
    } finally {
      await app.close().catch(() => {});
    }
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const warning = entries.find((entry) => entry.msg === 'database unavailable');
    expect(warning).toBeDefined();
    expect(typeof warning?.error).toBe('string');
    expect(String(warning?.error)).not.toBe('');
    expect(JSON.stringify(warning)).not.toContain('[not an Error]');
  });
});
