import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { gatehousePlugin, gatehouseSecuritySchemes } from '../../src/http/index.js';
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

/** Every scheme name the document's operations (and its top level) name in `security`. */
function securityNames(document: OpenApiDocument): Set<string> {
  const names = new Set<string>();
  const requirements = [
    ...(document.security ?? []),
    ...Object.values(document.paths ?? {}).flatMap((item) =>
      Object.values(item).flatMap((operation) => operation.security ?? []),
    ),
  ];
  for (const requirement of requirements) for (const name of Object.keys(requirement)) names.add(name);
  return names;
}

interface OpenApiDocument {
  security?: Record<string, string[]>[];
  paths?: Record<string, Record<string, { security?: Record<string, string[]>[] }>>;
  components?: {
    securitySchemes?: Record<string, { name?: string; flows?: { password?: { scopes: object } } }>;
  };
}

describe("gatehouseSecuritySchemes: a host app's own @fastify/swagger document", () => {
  it('declares every scheme the guards name, the core’s and apps’, so the document builds', async () => {
    const gatehouse = await createGatehouse(testConfig(), {
      scopes: { 'reports:read': { description: 'Read the reports', roles: ['admin'] } },
    });
    const app = Fastify();
    try {
      await app.register(swagger, {
        openapi: {
          info: { title: 'Host', version: '1.0.0' },
          components: { securitySchemes: gatehouseSecuritySchemes(app) },
        },
      });
      await app.register(gatehousePlugin, { gatehouse });
      // An app's scheme, registered after the plugin, and a route that names it.
      app.openApiSecuritySchemes.register({ roomBearer: bearer });
      app.get('/rooms', { schema: { security: [{ roomBearer: [] }] } }, async () => []);
      app.get('/reports', { preHandler: app.auth.require({ scopes: ['reports:read'] }) }, async () => []);
      await app.ready();

      const document = app.swagger() as OpenApiDocument;
      const declared = document.components?.securitySchemes ?? {};
      const named = securityNames(document);
      expect([...named]).toEqual(
        expect.arrayContaining(['OAuth2PasswordBearer', 'sessionCookie', 'roomBearer']),
      );
      for (const name of named) expect(declared, name).toHaveProperty(name);
      expect(declared.sessionCookie?.name).toBe(app.cookiePolicy.sessionName);
      expect(declared.OAuth2PasswordBearer?.flows?.password?.scopes).toHaveProperty('reports:read');
      // Gatehouse's own routes are in the host's document, guarded ones with their requirement.
      expect(document.paths?.['/users/me']?.get?.security).toEqual(
        expect.arrayContaining([expect.objectContaining({ OAuth2PasswordBearer: expect.any(Array) })]),
      );
      expect(gatehouseSecuritySchemes(app)).toBe(document.components?.securitySchemes);
    } finally {
      await app.close();
      await gatehouse.close();
    }
  });

  it('fills the object asked for the root when the plugin sits in a context inside it', async () => {
    const gatehouse = await createGatehouse(testConfig());
    const app = Fastify();
    try {
      const schemes = gatehouseSecuritySchemes(app);
      await app.register(async (child) => {
        await child.register(gatehousePlugin, { gatehouse, routes: false });
        child.get('/mine', { preHandler: child.auth.require() }, async () => ({}));
      });
      await app.ready();
      expect(Object.keys(schemes)).toEqual(
        expect.arrayContaining([
          'OAuth2PasswordBearer',
          'sessionCookie',
          'externalBearer',
          'OAuth2ClientCredentials',
        ]),
      );
      // With routes: false this app serves no /token: "Authorize" goes to the issuer's.
      const issuer = testConfig().issuer;
      expect(schemes.OAuth2PasswordBearer).toMatchObject({
        flows: { password: { tokenUrl: `${issuer.replace(/\/+$/, '')}/token` } },
      });
      // A second app's object is its own.
      expect(gatehouseSecuritySchemes(Fastify())).toEqual({});
    } finally {
      await app.close();
      await gatehouse.close();
    }
  });

  it("keeps the host's own schemes beside Gatehouse's, and refuses one that takes a name of Gatehouse's", async () => {
    const gatehouse = await createGatehouse(testConfig());
    const app = Fastify();
    const clash = Fastify();
    try {
      const apiKey = { type: 'apiKey', in: 'header', name: 'X-Api-Key' } as const;
      const schemes = gatehouseSecuritySchemes(app, { apiKey });
      await app.register(gatehousePlugin, { gatehouse, routes: false });
      await app.ready();
      expect(schemes).toMatchObject({ apiKey, sessionCookie: { type: 'apiKey', in: 'cookie' } });

      gatehouseSecuritySchemes(clash, { sessionCookie: apiKey });
      await expect(clash.register(gatehousePlugin, { gatehouse, routes: false }).ready()).rejects.toThrow(
        /sessionCookie is Gatehouse's security scheme/,
      );
    } finally {
      await app.close();
      await clash.close();
      await gatehouse.close();
    }
  });
});

describe('gatehouseSecuritySchemes: the order of registrations (review of d2f2e3a, 7bdad2c)', () => {
  const bearerScheme = { type: 'http', scheme: 'bearer', description: 'A room token' } as const;

  it('fills an object asked for after the plugin (@fastify/swagger registered after it), apps’ schemes too', async () => {
    const gatehouse = await createGatehouse(testConfig());
    const app = Fastify();
    try {
      await app.register(gatehousePlugin, { gatehouse, routes: false });
      app.openApiSecuritySchemes.register({ roomBearer: bearerScheme });
      await app.register(swagger, {
        openapi: {
          info: { title: 'Host', version: '1.0.0' },
          components: { securitySchemes: gatehouseSecuritySchemes(app) },
        },
      });
      app.openApiSecuritySchemes.register({ seatBearer: bearerScheme });
      app.get('/mine', { preHandler: app.auth.require() }, async () => ({}));
      await app.ready();
      const document = app.swagger() as OpenApiDocument;
      expect(Object.keys(document.components?.securitySchemes ?? {})).toEqual(
        expect.arrayContaining(['OAuth2PasswordBearer', 'sessionCookie', 'roomBearer', 'seatBearer']),
      );
      // Asked for again: the same object, not filled twice, and the host may not replace ours.
      expect(gatehouseSecuritySchemes(app)).toBe(document.components?.securitySchemes);
      expect(() =>
        gatehouseSecuritySchemes(app, { sessionCookie: { type: 'apiKey', in: 'header', name: 'X' } }),
      ).toThrow(/sessionCookie is Gatehouse's security scheme/);
    } finally {
      await app.close();
      await gatehouse.close();
    }
  });

  it("refuses an app's scheme that would replace one of the host's own, or a sibling registration's", async () => {
    const gatehouse = await createGatehouse(testConfig());
    const app = Fastify();
    try {
      const hostOwn = { type: 'apiKey', in: 'header', name: 'X-Room', description: 'host' } as const;
      const schemes = gatehouseSecuritySchemes(app, { roomBearer: hostOwn });
      await app.register(async (first) => {
        await first.register(gatehousePlugin, { gatehouse, routes: false, errorHandler: false });
        expect(() => first.openApiSecuritySchemes.register({ roomBearer: bearerScheme })).toThrow(
          /roomBearer is declared with another definition/,
        );
        first.openApiSecuritySchemes.register({ seatBearer: bearerScheme });
      });
      await app.register(async (second) => {
        await second.register(gatehousePlugin, { gatehouse, routes: false, errorHandler: false });
        expect(() =>
          second.openApiSecuritySchemes.register({ seatBearer: { ...bearerScheme, description: 'other' } }),
        ).toThrow(/seatBearer is declared with another definition/);
      });
      await app.ready();
      expect(schemes.roomBearer).toEqual(hostOwn);
      expect(schemes.seatBearer).toEqual(bearerScheme);
    } finally {
      await app.close();
      await gatehouse.close();
    }
  });
});
