import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { UserAuthContext } from '../../src/http/auth.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login } from '../support/accounts.js';

/** Issue 16: code handed the signed-in user (an embedding app's handler) never sees the hash. */
describe('request.auth.user', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildTestServer();
    app.get('/whoami-keys', { preHandler: app.auth.require() }, async (request) =>
      Object.keys(request.auth?.kind === 'user' ? request.auth.user : {}),
    );
  });
  afterAll(async () => app?.close());

  it('has no password hash in its type', () => {
    expectTypeOf<UserAuthContext['user']>().not.toHaveProperty('passwordHash');
    expectTypeOf<UserAuthContext['user']>().toHaveProperty('role');
  });

  it('has no password hash at run time, on a fresh read and on a cached one', async () => {
    const user = await createUser(app);
    const tokens = await login(app, user.email);
    for (let i = 0; i < 2; i++) {
      const response = await app.inject({
        method: 'GET',
        url: '/whoami-keys',
        headers: bearer(tokens.access_token),
      });
      expect(response.statusCode).toBe(200);
      const keys: string[] = response.json();
      expect(keys).toContain('email');
      expect(keys).not.toContain('passwordHash');
    }
  });
});
