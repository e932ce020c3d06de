import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { gatehousePlugin } from '../../src/http/index.js';
import { useGatehouse } from '../support/embedding.js';

/**
 * Fastify takes one 404 handler per prefix. An app that set its own before registering the plugin
 * got Fastify's bare "Not found handler already set" from `ready()`, after the plugin had already
 * replaced its error handler, with nothing saying what to do.
 */
describe("gatehousePlugin next to a host's own 404 handler", () => {
  const gatehouse = useGatehouse();

  it('fails ready() with a ConfigError that names errorHandler: false, leaving the error handler alone', async () => {
    const app = Fastify();
    app.setNotFoundHandler((_request, reply) => reply.code(404).send({ mine: true }));
    app.register(gatehousePlugin, { gatehouse: gatehouse() });
    const error = await app.ready().then(
      () => undefined,
      (failure: unknown) => failure,
    );
    await app.close();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.join('\n')).toMatch(/own 404 handler.*errorHandler: false/);
  });

  it('keeps the host 404 handler with errorHandler: false', async () => {
    const app = Fastify();
    app.setNotFoundHandler((_request, reply) => reply.code(404).send({ mine: true }));
    await app.register(gatehousePlugin, { gatehouse: gatehouse(), errorHandler: false });
    try {
      expect((await app.inject({ method: 'GET', url: '/nothing' })).json()).toEqual({ mine: true });
      expect((await app.inject({ method: 'GET', url: '/users/me' })).statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });
});
