import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { type GatehousePluginOptions, gatehousePlugin } from '../../src/http/index.js';
import { useGatehouse } from '../support/embedding.js';

/**
 * The plugin's options, and where it is registered, are checked when it registers: a mistake is a
 * `ConfigError` from `ready()` naming the option, never a silent default or a crash deep inside.
 */
describe('gatehousePlugin: options and placement', () => {
  const gatehouse = useGatehouse();

  /** The error `ready()` rejects with when the plugin is registered with `options`. */
  const refusal = async (register: (app: FastifyInstance) => void): Promise<unknown> => {
    const app = Fastify();
    register(app);
    try {
      await app.ready();
      return undefined;
    } catch (error) {
      return error;
    } finally {
      await app.close();
    }
  };
  const withOptions = (options: unknown) =>
    refusal((app) => {
      app.register(gatehousePlugin, options as GatehousePluginOptions);
    });

  it('refuses a missing gatehouse, options of the wrong type, and unknown options by name', async () => {
    const cases: [unknown, RegExp][] = [
      [{}, /gatehousePlugin: the `gatehouse` option is required/],
      [{ gatehouse: {} }, /gatehousePlugin: `gatehouse`: not a Gatehouse instance/],
      [{ gatehouse: gatehouse(), routes: 'no' }, /gatehousePlugin: `routes` must be true or false/],
      [{ gatehouse: gatehouse(), errorHandler: 0 }, /gatehousePlugin: `errorHandler` must be true or false/],
      // A typo must not leave the account routes on (`route: false` meant `routes: false`).
      [{ gatehouse: gatehouse(), route: false }, /gatehousePlugin: unknown option `route`/],
    ];
    for (const [options, message] of cases) {
      const error = await withOptions(options);
      expect(error, JSON.stringify(Object.keys(options as object))).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.join('\n')).toMatch(message);
    }
    // Fastify's own register options are no mistake.
    expect(await withOptions({ gatehouse: gatehouse(), logLevel: 'warn' })).toBeUndefined();
  });

  it('refuses `prefix` (a fastify-plugin ignores it: the routes went to / unannounced)', async () => {
    const error = await withOptions({ gatehouse: gatehouse(), prefix: '/auth' });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.join('\n')).toMatch(/`prefix` is not supported/);
  });

  it('refuses its routes under a prefixed context, where every URL it writes would miss them', async () => {
    const error = await refusal((app) => {
      app.register(
        async (scoped: FastifyInstance) => {
          await scoped.register(gatehousePlugin, { gatehouse: gatehouse() });
        },
        { prefix: '/auth' },
      );
    });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.join('\n')).toMatch(/registered under the prefix \/auth/);
    // The guards alone have no URLs: fine anywhere.
    const guardsOnly = await refusal((app) => {
      app.register(
        async (scoped: FastifyInstance) => {
          await scoped.register(gatehousePlugin, { gatehouse: gatehouse(), routes: false });
          scoped.get('/me', { preHandler: scoped.auth.require() }, async () => 'ok');
        },
        { prefix: '/api' },
      );
    });
    expect(guardsOnly).toBeUndefined();
  });

  it("refuses, naming each, decorators and shared schemas of the app's that it needs (@fastify/auth's `auth`)", async () => {
    const error = await refusal((app) => {
      // What @fastify/auth does (its own type, which the plugin's augmentation does not know).
      (app as unknown as { decorate(name: string, value: unknown): void }).decorate('auth', () => undefined);
      app.decorateRequest('auth', null);
      app.addSchema({ $id: 'Problem', type: 'object' });
      app.register(gatehousePlugin, { gatehouse: gatehouse() });
    });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(
        /^gatehousePlugin: the app already has a decorator `auth` \(@fastify\/auth adds one\)/,
      ),
      expect.stringMatching(/^gatehousePlugin: requests already have a decorator `auth`/),
      expect.stringMatching(/^gatehousePlugin: the app already has a shared schema `Problem`/),
    ]);
    // In a context beside the plugin's, the other one's decorator is no clash.
    const app = Fastify();
    try {
      await app.register(async (other) => {
        (other as unknown as { decorate(name: string, value: unknown): void }).decorate(
          'auth',
          () => undefined,
        );
      });
      await app.register(gatehousePlugin, { gatehouse: gatehouse(), routes: false });
      await expect(app.ready()).resolves.toBeDefined();
    } finally {
      await app.close();
    }
  });

  it('refuses a second registration in the same context with a clear error', async () => {
    const error = await refusal((app) => {
      app.register(gatehousePlugin, { gatehouse: gatehouse() });
      app.register(gatehousePlugin, { gatehouse: gatehouse(), routes: false });
    });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.join('\n')).toMatch(/already registered/);
  });
});
