import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { gatehousePlugin } from '../../src/http/index.js';
import { createSecuritySchemeRegistry } from '../../src/http/security-schemes.js';
import { createGatehouse } from '../../src/index.js';
import { testConfig } from '../../src/testing.js';

const bearer = { type: 'http', scheme: 'bearer', description: 'A bearer token' } as const;

describe('createSecuritySchemeRegistry', () => {
  it('keeps what apps register, and accepts the same definition twice (two instances of a plugin)', () => {
    const registry = createSecuritySchemeRegistry();
    registry.register({ roomBearer: bearer });
    registry.register({ roomBearer: bearer });
    expect(registry.entries()).toEqual({ roomBearer: bearer });
  });

  it('refuses a core name, a malformed name and a clashing redefinition, naming each', () => {
    const registry = createSecuritySchemeRegistry();
    registry.register({ roomBearer: bearer });
    expect(() =>
      registry.register({
        sessionCookie: bearer,
        'bad name': bearer,
        roomBearer: { ...bearer, description: 'Another' },
      }),
    ).toThrow(ConfigError);
    try {
      registry.register({
        sessionCookie: bearer,
        'bad name': bearer,
        roomBearer: { ...bearer, description: 'x' },
      });
    } catch (error) {
      expect((error as ConfigError).problems).toEqual([
        'security scheme sessionCookie belongs to the core; pick another name',
        'security scheme "bad name" must match [A-Za-z0-9._-]+',
        'security scheme roomBearer is already registered with another definition',
      ]);
    }
    // Nothing of a refused batch is kept.
    expect(Object.keys(registry.entries())).toEqual(['roomBearer']);
  });
});

describe('auth.require with scopes', () => {
  it('refuses, when the route is declared, a scope the server does not know', async () => {
    const gatehouse = await createGatehouse(testConfig(), {
      scopes: { 'lookbook:read': { description: 'See the lookbook', roles: ['user'] } },
    });
    const app = Fastify();
    try {
      await app.register(gatehousePlugin, { gatehouse, routes: false });
      expect(() => app.auth.require({ scopes: ['lookbook:read'] })).not.toThrow();
      expect(() => app.auth.require({ scopes: ['lookbok:read'] })).toThrow(/unknown scope lookbok:read/);
    } finally {
      await app.close();
      await gatehouse.close();
    }
  });
});
