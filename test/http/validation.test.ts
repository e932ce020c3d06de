import { gzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance, type FastifySchemaCompiler } from 'fastify';
import { Type } from 'typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PageQuery } from '../../src/http/schemas.js';
import {
  buildSerializerOnFirstUse,
  compileOnFirstUse,
  validatorCompiler,
} from '../../src/http/validation.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD } from '../support/accounts.js';

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

// Standards audit 2026-12-05: the form parser (for the OAuth endpoints) and Fastify's text/plain
// parser are app-wide, so JSON routes took those bodies too; both are CORS-safelisted, so any page
// could make its visitors' browsers sign up or ask for reset mails without a preflight.
describe('JSON routes take JSON bodies only (RFC 9110 §15.5.16)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer();
  });
  afterAll(async () => app.close());

  const form = 'application/x-www-form-urlencoded';
  const crossSite = { origin: 'https://evil.example' };

  it('refuses a form or plain-text body with 415 before reading it, and creates nothing', async () => {
    const email = 'form-signup@example.com';
    for (const type of [form, 'text/plain', 'TEXT/PLAIN; charset=utf-8']) {
      const signUp = await app.inject({
        method: 'POST',
        url: '/auth/register',
        headers: { ...crossSite, 'content-type': type },
        payload: `email=${encodeURIComponent(email)}&password=correct+horse+battery+staple`,
      });
      expect([signUp.statusCode, signUp.json().code, signUp.headers.accept]).toEqual([
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        'application/json',
      ]);
    }
    const reset = await app.inject({
      method: 'POST',
      url: '/auth/forgot-password',
      headers: { ...crossSite, 'content-type': form },
      payload: `email=${encodeURIComponent(email)}`,
    });
    expect(reset.statusCode).toBe(415);
    // No account was made: the same address signs up now, as JSON (parameters allowed).
    const json = await app.inject({
      method: 'POST',
      url: '/auth/register',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      payload: JSON.stringify({ email, password: PASSWORD }),
    });
    expect(json.statusCode).toBe(201);
  });

  it("covers the reference server's apps too, and PATCH says what it takes", async () => {
    const join = await app.inject({
      method: 'POST',
      url: '/rooms/ABCDEFGH/join',
      headers: { 'content-type': form },
      payload: 'player=Pat&transport=bearer',
    });
    expect([join.statusCode, join.json().code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    const user = await createUser(app);
    const { access_token } = await login(app, user.email);
    const patch = await app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: { ...bearer(access_token), 'content-type': 'text/plain' },
      payload: 'name=Pat',
    });
    expect([patch.statusCode, patch.headers['accept-patch']]).toEqual([415, 'application/json']);
    const merge = await app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: { ...bearer(access_token), 'content-type': 'application/merge-patch+json' },
      payload: '{}',
    });
    expect([merge.statusCode, merge.headers['accept-patch']]).toEqual([415, 'application/json']);
  });

  it('refuses a body in a content coding with 415 and Accept-Encoding: identity, in RFC 6749 form on /token', async () => {
    const json = await app.inject({
      method: 'POST',
      url: '/auth/register',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      payload: gzipSync(JSON.stringify({ email: 'gzip@example.com', password: PASSWORD })),
    });
    expect([json.statusCode, json.json().code, json.headers['accept-encoding']]).toEqual([
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      'identity',
    ]);
    const token = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'GZIP' },
      payload: gzipSync('grant_type=password&username=a%40example.com&password=x'),
    });
    expect([token.statusCode, token.json().error, token.headers['accept-encoding']]).toEqual([
      400,
      'invalid_request',
      'identity',
    ]);
    const identity = await app.inject({
      method: 'POST',
      url: '/auth/register',
      headers: { 'content-type': 'application/json', 'content-encoding': 'identity' },
      payload: JSON.stringify({ email: 'identity@example.com', password: PASSWORD }),
    });
    expect(identity.statusCode).toBe(201);
  });

  it('leaves the form endpoints (declared with consumes) taking forms', async () => {
    const user = await createUser(app);
    expect((await login(app, user.email)).access_token).toEqual(expect.any(String));
  });
});
