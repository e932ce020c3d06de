import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/accounts/roles.js';
import { gatehousePlugin, type RequireOptions } from '../../src/http/index.js';
import { createGatehouse, type Gatehouse } from '../../src/index.js';
import { testConfig } from '../../src/testing.js';
import { bearerFor, createUser } from '../support/accounts.js';

/**
 * A guard's options come from an embedding app, sometimes from JavaScript or from its own settings
 * (`role: process.env.REPORTS_ROLE as Role`). A role Gatehouse does not know must fail when the
 * guard is made, as an unknown scope does: `roleAtLeast` ranked it -1, below every role, so a
 * misspelt `'Admin'` or `'superadmin'` let every signed-in user through (fail open).
 */
describe('app.auth.require with a role Gatehouse does not know', () => {
  let gatehouse: Gatehouse;
  let app: FastifyInstance;
  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig());
    app = Fastify();
    await app.register(gatehousePlugin, { gatehouse });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await gatehouse?.close();
  });

  it('throws a TypeError when the guard is made', () => {
    for (const role of ['Admin', 'superadmin', '', 'toString']) {
      expect(() => app.auth.require({ role: role as Role }), role).toThrow(TypeError);
      expect(() => app.auth.require({ role: role as Role }), role).toThrow(/unknown role/);
    }
    // Known roles are fine.
    for (const role of ['user', 'admin', 'super_admin'] as const)
      expect(() => app.auth.require({ role })).not.toThrow();
  });

  it('never lets a plain user through a guard built around the check', async () => {
    const host = Fastify();
    await host.register(gatehousePlugin, { gatehouse });
    let guard: ReturnType<FastifyInstance['auth']['require']> | undefined;
    try {
      guard = host.auth.require({ role: 'Admin' as Role } as RequireOptions);
    } catch {
      guard = undefined;
    }
    if (guard !== undefined) host.get('/reports', { preHandler: guard }, async () => ({ secret: true }));
    try {
      await host.ready();
      const user = await bearerFor(host, await createUser(host));
      const response = await host.inject({ method: 'GET', url: '/reports', headers: user.headers });
      expect(response.statusCode).not.toBe(200);
    } finally {
      await host.close();
    }
  });
});
