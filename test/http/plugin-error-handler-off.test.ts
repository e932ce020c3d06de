import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehousePlugin } from '../../src/http/index.js';
import { createGatehouse, type Gatehouse } from '../../src/index.js';
import { testConfig } from '../../src/testing.js';
import { createUser, postToken } from '../support/accounts.js';

/**
 * `errorHandler: false` leaves the host's routes to the host's own error and 404 handling; it must
 * not break Gatehouse's routes. Their response schemas describe problem+json and RFC 6749 bodies,
 * so Fastify's default handler (or a host handler's body) cannot be serialized there: every
 * refusal was a 500 `FST_ERR_FAILED_ERROR_SERIALIZATION`.
 */
describe('gatehousePlugin with errorHandler: false', () => {
  let gatehouse: Gatehouse;
  let app: FastifyInstance;
  const logged: { level: number; msg: string }[] = [];
  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig());
    app = Fastify({
      logger: {
        level: 'info',
        stream: { write: (line: string) => logged.push(JSON.parse(line) as { level: number; msg: string }) },
      },
    });
    await app.register(gatehousePlugin, { gatehouse, errorHandler: false });
    app.get('/mine', { preHandler: app.auth.require() }, async () => ({ ok: true }));
    app.get('/boom', async () => {
      throw Object.assign(new Error('host detail'), { statusCode: 409 });
    });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await gatehouse?.close();
  });

  it("answers Gatehouse's own refusals with their status and problem+json, never 500", async () => {
    const me = await app.inject({ method: 'GET', url: '/users/me' });
    expect(me.statusCode).toBe(401);
    expect(me.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(me.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(me.headers['www-authenticate']).toBe('Bearer realm="gatehouse"');

    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: {} });
    expect(login.statusCode).toBe(400);
    expect(login.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('answers the token endpoint in RFC 6749 §5.2 form: a wrong password is 400 invalid_grant', async () => {
    const user = await createUser(app);
    const wrong = await postToken(app, {
      grant_type: 'password',
      username: user.email,
      password: 'wrong wrong wrong',
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ error: 'invalid_grant' });
    const unknown = await postToken(app, { grant_type: 'nope' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toMatchObject({ error: 'unsupported_grant_type' });
    // Fastify logs a 5xx as an error with its stack: each wrong password wrote one.
    expect(logged.filter((line) => line.level >= 50)).toEqual([]);
  });

  it("leaves the host's routes and unknown paths to Fastify's (the host's) handlers", async () => {
    const mine = await app.inject({ method: 'GET', url: '/mine' });
    expect(mine.statusCode).toBe(401);
    expect(mine.headers['content-type']).toMatch(/^application\/json/);
    expect(mine.headers['www-authenticate']).toBe('Bearer realm="gatehouse"');
    const boom = await app.inject({ method: 'GET', url: '/boom' });
    expect(boom.statusCode).toBe(409);
    expect(boom.json()).toMatchObject({ message: 'host detail' });
    const unknown = await app.inject({ method: 'GET', url: '/nothing' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'Not Found' });
    // No 405 from Gatehouse's not-found handler either.
    expect((await app.inject({ method: 'DELETE', url: '/mine' })).statusCode).toBe(404);
  });
});
