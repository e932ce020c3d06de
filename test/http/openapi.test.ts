import { createHash } from 'node:crypto';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishOpenApiDocument } from '../../src/http/openapi.js';
import { buildTestServer } from '../../src/testing.js';
import { form, PASSWORD, postToken, signIn } from '../support/accounts.js';
import { createRoom, joinAsBot } from '../support/rooms.js';

const PUBLIC_URL = 'https://api.example.org';

interface Response {
  $ref?: string;
  description?: string;
  content?: Record<string, { schema: unknown }>;
  headers?: Record<string, unknown>;
}
interface Operation {
  operationId?: string;
  description?: string;
  security?: unknown[];
  responses: Record<string, Response>;
}
type Document = {
  servers: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: {
    securitySchemes: Record<string, { flows?: { password: { scopes: Record<string, string> } } }>;
    responses: Record<string, Response>;
    headers: Record<string, unknown>;
  };
};

/** The headers whose presence in a real response its declaration must list. */
const DECLARED_HEADERS = ['location', 'www-authenticate', 'retry-after', 'allow'];

/** JSON pointer escaping (RFC 6901), then URI-fragment encoding for Ajv's `$ref` lookup. */
const pointer = (...parts: string[]) =>
  parts.map((part) => encodeURIComponent(part.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/');

describe('the OpenAPI document', () => {
  let app: FastifyInstance;
  let doc: Document;
  let ajv: Ajv2020;
  beforeAll(async () => {
    app = await buildTestServer({ jwtAlgorithm: 'EdDSA', publicUrl: PUBLIC_URL, issuer: PUBLIC_URL });
    await app.ready();
    doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<Document>();
    // The whole document as one schema: response schemas and their `#/components/...` refs resolve in it.
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema({ ...doc, $id: 'openapi' });
  });
  afterAll(async () => app.close());

  /** A response, or the shared one it refers to, with its JSON pointer in the document. */
  const resolve = (where: string[], response: Response): { response: Response; at: string[] } => {
    const name = /^#\/components\/responses\/(.+)$/.exec(response.$ref ?? '')?.[1];
    if (name === undefined) return { response, at: where };
    const shared = doc.components.responses[name];
    expect(shared, `${response.$ref} is declared`).toBeDefined();
    return { response: shared ?? {}, at: ['components', 'responses', name] };
  };

  it('declares the core’s security schemes and those the apps registered, with every scope of the server', () => {
    const schemes = doc.components.securitySchemes;
    expect(Object.keys(schemes).sort()).toEqual([
      'OAuth2PasswordBearer',
      'roomBearer',
      'roomCookie',
      'sessionCookie',
      'spectatorBearer',
      'watchCookie',
    ]);
    expect(Object.keys(schemes.OAuth2PasswordBearer?.flows?.password.scopes ?? {}).sort()).toEqual([
      'audit:read',
      'clients:read',
      'clients:write',
      'clothes:read',
      'clothes:write',
      'me',
      'rooms:host',
      'users:read',
      'users:write',
    ]);
    // Every scheme an operation names is declared.
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const requirement of operation.security ?? []) {
          for (const name of Object.keys(requirement as object)) {
            expect(schemes, `${method} ${path} names ${name}`).toHaveProperty(name);
          }
        }
      }
    }
  });

  /**
   * Checks a real response against what the document declares for its route and status: the
   * media type must be listed, and the body must match its schema.
   */
  const expectDocumented = (path: string, method: string, response: LightMyRequestResponse) => {
    const operation = doc.paths[path]?.[method];
    expect(operation, `${method} ${path} is documented`).toBeDefined();
    const status = String(response.statusCode);
    const found = operation?.responses[status];
    expect(found, `${method} ${path} documents ${status}`).toBeDefined();
    const { response: declared, at } = resolve(['paths', path, method, 'responses', status], found ?? {});
    const headers = Object.keys(declared.headers ?? {}).map((name) => name.toLowerCase());
    for (const header of DECLARED_HEADERS) {
      if (response.headers[header] === undefined) continue;
      expect(headers, `${method} ${path} ${status} declares ${header}`).toContain(header);
    }
    if (response.statusCode === 204 || response.body === '') return;
    const mediaType = String(response.headers['content-type']).split(';')[0] ?? '';
    expect(Object.keys(declared.content ?? {}), `${method} ${path} ${status}`).toContain(mediaType);
    const validate = ajv.getSchema(`openapi#/${pointer(...at, 'content', mediaType, 'schema')}`);
    expect(validate).toBeDefined();
    const body = response.json();
    const valid = validate?.(body);
    expect(valid, `${method} ${path} ${response.statusCode}: ${JSON.stringify(validate?.errors)}`).toBe(true);
  };

  it('is made once and sent from memory with a strong ETag, as are /docs/json, /docs/yaml and Swagger UI’s files (red-team 2026-12l N2)', async () => {
    // Made per request, the document cost ≈ 7 ms of the event loop each time: 60 anonymous
    // keep-alive connections asking for it left every new connection unanswered.
    // Swagger UI's own files too: its 1.7 MB bundle cost 16 ms each through the inner app.
    for (const url of ['/openapi.json', '/docs/json', '/docs/yaml', '/docs/static/swagger-ui-bundle.js']) {
      const first = await app.inject({ method: 'GET', url });
      const second = await app.inject({ method: 'GET', url: `${url}?again=1` });
      expect(first.statusCode).toBe(200);
      const etag = String(first.headers.etag);
      expect(etag).toMatch(/^"[\w-]{27}"$/);
      expect(second.headers.etag).toBe(etag);
      expect(second.rawPayload.equals(first.rawPayload)).toBe(true);
      expect(first.headers['cache-control']).toBe('no-cache');
      // The security headers still come from the outer app.
      expect(first.headers['x-content-type-options']).toBe('nosniff');
      const revalidated = await app.inject({
        method: 'GET',
        url,
        headers: { 'if-none-match': `"other", ${etag}` },
      });
      expect(revalidated.statusCode).toBe(304);
      expect(revalidated.rawPayload.length).toBe(0);
      const head = await app.inject({ method: 'HEAD', url });
      expect(head.statusCode).toBe(200);
      expect(head.headers.etag).toBe(etag);
      expect(head.rawPayload.length).toBe(0);
      expect(head.headers['content-length']).toBe(String(first.rawPayload.length));
    }
    // Swagger UI's page is not kept (its redirects and page): HEAD still says GET's length (§8.6).
    for (const url of ['/docs', '/docs/']) {
      const get = await app.inject({ method: 'GET', url });
      const head = await app.inject({ method: 'HEAD', url });
      expect([head.statusCode, head.headers['content-length']], url).toEqual([
        get.statusCode,
        String(get.rawPayload.length),
      ]);
    }
    expect(
      String((await app.inject({ method: 'GET', url: '/openapi.json' })).headers['content-type']),
    ).toMatch(/^application\/json/);
    // A file that is not there is a 404 each time, never kept.
    for (let i = 0; i < 2; i++) {
      expect((await app.inject({ method: 'GET', url: '/docs/static/no-such-file.js' })).statusCode).toBe(404);
    }
    expect(String((await app.inject({ method: 'GET', url: '/docs/yaml' })).headers['content-type'])).toMatch(
      /^application\/x-yaml/,
    );
  });

  it('names and describes every operation, declares its security, and takes servers from PUBLIC_URL', () => {
    expect(doc.servers).toEqual([expect.objectContaining({ url: PUBLIC_URL })]);
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        expect(operation.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z0-9]+$/);
        // Swagger UI shows the description under the summary: what the route answers and when.
        expect(operation.description?.trim(), `${method} ${path} has a description`).toBeTruthy();
        expect(ids.has(String(operation.operationId))).toBe(false);
        ids.add(String(operation.operationId));
        expect(Array.isArray(operation.security), `${method} ${path} declares security`).toBe(true);
        for (const [status, response] of Object.entries(operation.responses)) {
          if (Number(status) < 400 || path === '/readyz') continue;
          const types = Object.keys(resolve([], response).response.content ?? {});
          // The provider's browser pages answer errors as HTML pages (a person reads them). The
          // shared responses (405, 413, 415) come before any route's own format.
          const expected =
            response.$ref !== undefined
              ? 'application/problem+json'
              : ['/token', '/revoke', '/introspect'].includes(path)
                ? 'application/json'
                : ['/authorize', '/oauth/logout'].includes(path) && status !== '503'
                  ? 'text/html'
                  : 'application/problem+json';
          expect(types, `${method} ${path} ${status}`).toEqual([expected]);
        }
      }
    }
    expect(doc.paths['/users/me']?.get?.responses['503']).toBeDefined();
    expect(doc.paths['/.well-known/oauth-authorization-server']?.get?.security).toEqual([]);
  });

  // Newcomer review 2026-12-06: 100 of 724 responses read "Default Response", @fastify/swagger's
  // placeholder for a schema without a description, every /token response among them.
  it('describes every response, none with the placeholder "Default Response"', () => {
    const placeholders: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          const { description } = resolve([], response).response;
          if (!description?.trim() || description === 'Default Response')
            placeholders.push(`${method} ${path} ${status}`);
        }
      }
    }
    expect(placeholders).toEqual([]);
    const token = doc.paths['/token']?.post?.responses ?? {};
    expect(token['400']?.description).toMatch(/RFC 6749 §5\.2/);
    expect(doc.paths['/auth/logout']?.post?.responses['204']).toMatchObject({ description: 'No Content' });
  });

  it('declares Location, WWW-Authenticate, and the 405, 413 and 415 any route can get, each once (standards audit)', () => {
    const ref = (name: string) => ({ $ref: `#/components/responses/${name}` });
    expect(Object.keys(doc.components.responses).sort()).toEqual([
      'ContentTooLarge',
      'MethodNotAllowed',
      'UnsupportedMediaType',
    ]);
    expect(doc.components.responses.MethodNotAllowed?.headers).toHaveProperty('Allow');
    expect(Object.keys(doc.components.headers).sort()).toEqual([
      'Location',
      'Retry-After',
      'WWW-Authenticate',
    ]);
    let redirects = 0;
    let challenges = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      const oauth = ['/token', '/revoke', '/introspect'].includes(path);
      for (const [method, operation] of Object.entries(item)) {
        const where = `${method} ${path}`;
        const { responses } = operation;
        // The 404 handler's 405 (with Allow) for a method the path does not take: every path has one.
        expect(responses['405'], where).toEqual(ref('MethodNotAllowed'));
        // Fastify reads a body of these methods, whatever the route; the OAuth endpoints answer 400.
        const body = ['post', 'put', 'patch', 'delete'].includes(method) && !oauth;
        expect(responses['413'], where).toEqual(body ? ref('ContentTooLarge') : undefined);
        expect(responses['415'], where).toEqual(body ? ref('UnsupportedMediaType') : undefined);
        for (const [status, response] of Object.entries(responses)) {
          if (status === '303') {
            redirects += 1;
            expect(response.headers?.Location, `${where} 303`).toEqual({
              $ref: '#/components/headers/Location',
            });
          }
          // Challenges come with problem+json and OAuth errors; the provider's HTML pages send none.
          if ((status === '401' || status === '403') && !('text/html' in (response.content ?? {}))) {
            challenges += 1;
            expect(response.headers?.['WWW-Authenticate'], `${where} ${status}`).toEqual({
              $ref: '#/components/headers/WWW-Authenticate',
            });
          }
        }
      }
    }
    expect(redirects).toBeGreaterThanOrEqual(4);
    expect(challenges).toBeGreaterThan(100);
    // The 201s that name what they made; the route says which resource.
    for (const path of ['/rooms', '/oauth/clients', '/auth/register', '/clothes']) {
      expect(doc.paths[path]?.post?.responses['201']?.headers?.Location, `post ${path} 201`).toMatchObject({
        schema: { type: 'string', format: 'uri-reference' },
      });
    }
  });

  it('describes real 2xx and 4xx responses of every route family', async () => {
    const user = await signIn(app, 'user');
    const admin = await signIn(app, 'admin');
    const token = await postToken(app, {
      grant_type: 'password',
      username: user.user.email,
      password: PASSWORD,
    });
    expectDocumented('/token', 'post', token);
    expectDocumented('/token', 'post', await postToken(app, { grant_type: 'nope' }));
    const revoke = (payload: string) =>
      app.inject({
        method: 'POST',
        url: '/revoke',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload,
      });
    expectDocumented('/revoke', 'post', await revoke(form({ token: 'unknown' })));
    expectDocumented('/revoke', 'post', await revoke(form({})));
    const get = (url: string, headers: Record<string, string> = {}) =>
      app.inject({ method: 'GET', url, headers });
    expectDocumented(
      '/.well-known/oauth-authorization-server',
      'get',
      await get('/.well-known/oauth-authorization-server'),
    );
    expectDocumented('/.well-known/jwks.json', 'get', await get('/.well-known/jwks.json'));
    expectDocumented('/healthz', 'get', await get('/healthz'));
    expectDocumented('/readyz', 'get', await get('/readyz'));
    const register = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'not an email' },
    });
    expectDocumented('/auth/register', 'post', register);
    const registered = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'documented@example.com', password: PASSWORD },
    });
    expect(registered.statusCode).toBe(201);
    expectDocumented('/auth/register', 'post', registered);
    // The body parser's 413 and 415, before the route.
    const tooLarge = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'x'.repeat(70_000) },
    });
    expect(tooLarge.statusCode).toBe(413);
    expectDocumented('/auth/register', 'post', tooLarge);
    const csv = await app.inject({
      method: 'POST',
      url: '/auth/register',
      headers: { 'content-type': 'text/csv' },
      payload: 'a,b',
    });
    expect(csv.statusCode).toBe(415);
    expectDocumented('/auth/register', 'post', csv);
    // A 405 is declared on each operation of its path (OpenAPI has no path-level responses).
    const notAllowed = await app.inject({ method: 'DELETE', url: '/healthz' });
    expect(notAllowed.statusCode).toBe(405);
    expectDocumented('/healthz', 'get', notAllowed);
    const client = await app.inject({
      method: 'POST',
      url: '/oauth/clients',
      headers: admin.headers,
      payload: { name: 'Documented', redirect_uris: ['https://app.example/callback'] },
    });
    expect(client.statusCode).toBe(201);
    expectDocumented('/oauth/clients', 'post', client);
    const challenge = createHash('sha256').update('documented verifier').digest('base64url');
    const toLogin = await get(
      `/authorize?${new URLSearchParams({
        response_type: 'code',
        client_id: client.json().client_id,
        redirect_uri: 'https://app.example/callback',
        scope: 'openid',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      })}`,
    );
    expect(toLogin.statusCode).toBe(303);
    expectDocumented('/authorize', 'get', toLogin);
    expectDocumented('/users/me', 'get', await get('/users/me', user.headers));
    const signedOut = await get('/users/me');
    expect(signedOut.headers['www-authenticate']).toBe('Bearer realm="gatehouse"');
    expectDocumented('/users/me', 'get', signedOut);
    expectDocumented('/users/me/sessions', 'get', await get('/users/me/sessions', user.headers));
    expectDocumented('/users', 'get', await get('/users', user.headers));
    expectDocumented('/users', 'get', await get('/users', admin.headers));
    expectDocumented('/clothes', 'get', await get('/clothes', user.headers));
    expectDocumented('/clothes/{id}', 'get', await get(`/clothes/${crypto.randomUUID()}`, user.headers));
    const created = await app.inject({
      method: 'POST',
      url: '/rooms',
      headers: user.headers,
      payload: { name: 'Documented' },
    });
    expect(created.headers.location).toBeDefined();
    expectDocumented('/rooms', 'post', created);
    const room = await createRoom(app, user);
    const player = await joinAsBot(app, room.code, 'Robo');
    expectDocumented('/rooms/{code}', 'get', await get(`/rooms/${room.code}`, player.headers));
    expectDocumented('/rooms/{code}', 'get', await get('/rooms/ZZZZZZ', player.headers));
    const roll = (notation: string) =>
      app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/rolls`,
        headers: player.headers,
        payload: { notation },
      });
    expectDocumented('/rooms/{code}/rolls', 'post', await roll('2d20kh1+5'));
    expectDocumented('/rooms/{code}/rolls', 'post', await roll('2d'));
    const join = await app.inject({ method: 'POST', url: '/rooms/ZZZZZZ/join', payload: { player: 'X' } });
    expectDocumented('/rooms/{code}/join', 'post', join);
  });
});

describe('finishOpenApiDocument on status ranges and default (red-team 2026-12u F4)', () => {
  it('names them as ranges, never "HTTP NaN"', () => {
    const object = { content: { 'application/json': { schema: { type: 'object' } } } };
    const doc = finishOpenApiDocument(
      {
        openapi: '3.1.0',
        paths: {
          '/reports': {
            get: {
              responses: {
                '2XX': { description: 'Default Response', ...object },
                default: { description: 'Default Response', ...object },
              },
            },
          },
        },
      },
      'https://auth.example.org',
    ) as { paths: Record<string, Record<string, { responses: Record<string, { description?: string }> }>> };
    const responses = doc.paths['/reports']?.get?.responses ?? {};
    expect(responses['2XX']?.description).toBe('Any 2xx status');
    expect(responses.default?.description).toBe('Any other status');
  });
});
