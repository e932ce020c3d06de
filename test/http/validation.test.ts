import Fastify, { type FastifySchemaCompiler } from 'fastify';
import { Type } from 'typebox';
import { describe, expect, it } from 'vitest';
import { PageQuery } from '../../src/http/schemas.js';
import {
  buildSerializerOnFirstUse,
  compileOnFirstUse,
  validatorCompiler,
} from '../../src/http/validation.js';

describe('validators compiled on first use', () => {
  it('compiles a schema only when its route is first called, once, and validates like the eager compiler', async () => {
    const compiled: string[] = [];
    const counting: FastifySchemaCompiler<unknown> = (route) => {
      compiled.push(`${route.method} ${route.url} ${route.httpPart}`);
      return validatorCompiler(route);
    };
    const app = Fastify();
    app.setValidatorCompiler(compileOnFirstUse(counting));
    const body = {
      type: 'object',
      properties: { name: { type: 'string' } },
      required: ['name'],
      additionalProperties: false,
    };
    app.post('/used', { schema: { body } }, async (request) => request.body);
    app.post('/unused', { schema: { body } }, async (request) => request.body);
    await app.ready();
    expect(compiled).toEqual([]);
    try {
      const ok = await app.inject({ method: 'POST', url: '/used', payload: { name: 'a' } });
      expect(ok.statusCode).toBe(200);
      const bad = await app.inject({ method: 'POST', url: '/used', payload: { name: 'a', role: 'admin' } });
      expect(bad.statusCode).toBe(400);
      // Ajv's errors reach Fastify through the wrapper (the message names the unknown field).
      expect(bad.json().message).toMatch(/additional properties/);
      const missing = await app.inject({ method: 'POST', url: '/used', payload: {} });
      expect(missing.statusCode).toBe(400);
      expect(compiled).toEqual(['POST /used body']);
    } finally {
      await app.close();
    }
  });
});

describe('serializers compiled on first use', () => {
  it('serializes with the shared schemas like the default, and drops fields the schema lacks', async () => {
    const app = Fastify({
      schemaController: { compilersFactory: { buildSerializer: buildSerializerOnFirstUse } },
    });
    app.addSchema({ $id: 'Thing', type: 'object', properties: { name: { type: 'string' } } });
    app.get('/thing', { schema: { response: { 200: { $ref: 'Thing#' } } } }, async () => ({
      name: 'a',
      secret: 'never sent',
    }));
    try {
      const first = await app.inject({ method: 'GET', url: '/thing' });
      const second = await app.inject({ method: 'GET', url: '/thing' });
      expect(first.body).toBe('{"name":"a"}');
      expect(second.body).toBe(first.body);
    } finally {
      await app.close();
    }
  });
});

describe('query integers (red-team 2026-12c H1)', () => {
  // Ajv's coercion turns "1e400", "Infinity" and "-Infinity" into ±Infinity and then skips the
  // property's other keywords: `minimum`/`maximum` never see it, and the value reaches SQL
  // `LIMIT`/`OFFSET` (SQLite: "datatype mismatch", a 500 on /users, /audit, /clothes, /rooms).
  it('H1: refuses a limit or offset that parses to ±Infinity (400, as any other value outside the bounds)', async () => {
    const app = Fastify();
    app.setValidatorCompiler(validatorCompiler);
    app.get('/page', { schema: { querystring: Type.Object(PageQuery) } }, async (request) => request.query);
    try {
      const statuses: Record<string, number> = {};
      for (const query of [
        'limit=1e400',
        'limit=Infinity',
        'limit=-Infinity',
        'offset=1e400',
        'offset=-Infinity',
      ]) {
        statuses[query] = (await app.inject({ method: 'GET', url: `/page?${query}` })).statusCode;
      }
      // The bounds hold for finite values: the control that shows the schema is the one in use.
      expect((await app.inject({ method: 'GET', url: '/page?limit=101' })).statusCode).toBe(400);
      expect(statuses).toEqual({
        'limit=1e400': 400,
        'limit=Infinity': 400,
        'limit=-Infinity': 400,
        'offset=1e400': 400,
        'offset=-Infinity': 400,
      });
    } finally {
      await app.close();
    }
  });

  // Unbounded integers and numbers (Dicery's `before`/`after` cursors, path parameters) took
  // ±Infinity too: the check is the compiler's, not the bounds'.
  it('refuses ±Infinity and NaN for unbounded numbers in the query and the path, naming the field', async () => {
    const app = Fastify();
    app.setValidatorCompiler(validatorCompiler);
    app.get(
      '/items/:id',
      {
        schema: {
          params: Type.Object({ id: Type.Integer() }),
          querystring: Type.Object({
            before: Type.Optional(Type.Integer()),
            ratio: Type.Optional(Type.Number()),
            ids: Type.Optional(Type.Array(Type.Integer())),
          }),
        },
      },
      async (request) => ({ params: request.params, query: request.query }),
    );
    app.setErrorHandler((error: Error & { validation?: unknown }, _request, reply) =>
      reply.code(400).send({ validation: error.validation }),
    );
    try {
      const refused = async (url: string) => {
        const answer = await app.inject({ method: 'GET', url });
        expect(answer.statusCode, url).toBe(400);
        return answer.json().validation[0];
      };
      expect(await refused('/items/1?before=1e400')).toMatchObject({
        instancePath: '/before',
        message: 'must be a finite number',
      });
      expect((await refused('/items/1?ratio=-Infinity')).instancePath).toBe('/ratio');
      expect((await refused('/items/1?ids=3&ids=Infinity')).instancePath).toBe('/ids/1');
      expect((await refused('/items/Infinity')).instancePath).toBe('/id');
      await refused('/items/1?ratio=NaN');
      // Finite values, large ones included, still pass and arrive as numbers.
      const fine = await app.inject({ method: 'GET', url: '/items/7?before=1e15&ratio=0.5&ids=1&ids=2' });
      expect(fine.statusCode).toBe(200);
      expect(fine.json()).toEqual({ params: { id: 7 }, query: { before: 1e15, ratio: 0.5, ids: [1, 2] } });
    } finally {
      await app.close();
    }
  });
});
