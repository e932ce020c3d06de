import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyInstance, type FastifySchema, type RouteOptions } from 'fastify';
import { SCOPES } from '../accounts/scopes.js';
import { gatehouseCore } from '../gatehouse-core.js';
import type { CookiePolicy } from './cookies.js';
import { OAUTH_ROUTES } from './error-handler.js';
import { CORE_ERROR_STATUSES } from './error-status.js';
import { lazyAppHandler } from './lazy-app.js';
import { coreSecuritySchemes, type OpenApiSecurityScheme } from './security-schemes.js';

/** The parts of an OpenAPI 3.1 document that {@link finishOpenApiDocument} rewrites. */
interface OpenApiResponse {
  $ref?: string;
  description?: string;
  content?: Record<string, { schema?: Record<string, unknown> }>;
  headers?: Record<string, unknown>;
}
interface OpenApiOperation {
  operationId?: string;
  security?: unknown[];
  responses?: Record<string, OpenApiResponse>;
}
interface OpenApiDocument {
  servers?: { url: string; description?: string }[];
  paths?: Record<string, Record<string, OpenApiOperation>>;
  components?: {
    schemas?: Record<string, { description?: unknown }>;
    securitySchemes?: Record<string, unknown>;
    responses?: Record<string, OpenApiResponse>;
    headers?: Record<string, unknown>;
  };
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

const PROBLEM_MEDIA_TYPE = 'application/problem+json';

/** Paths that touch no dependency, so they never answer 503. */
const NO_OUTAGE_PATHS = new Set([
  '/healthz',
  '/.well-known/jwks.json',
  '/.well-known/oauth-authorization-server',
]);

/** Methods whose requests Fastify reads a body of (`GET` and `HEAD` it never reads). */
const BODY_METHODS = new Set(['post', 'put', 'patch', 'delete']);

/**
 * Response headers declared once in `components.headers` and referenced from every response that
 * may carry them, by status: what the error handler sends for an error's `retryAfterSeconds` and
 * `challenge`, and what `reply.redirect` sends. A 201's `Location` is the route's own
 * (`declareLocation`): it names the resource made.
 */
const SHARED_HEADERS = {
  'Retry-After': {
    description: 'Seconds to wait before retrying (RFC 9110 §10.2.3)',
    schema: { type: 'integer', minimum: 0 },
  },
  'WWW-Authenticate': {
    description:
      'A challenge (RFC 9110 §11.6.1) where a credential would help: `Bearer` (RFC 6750 §3) for a missing or ' +
      'invalid token, with `error="insufficient_scope"` and the `scope` needed on a 403 for a token that lacks ' +
      'one, `error="insufficient_user_authentication"` (RFC 9470) for a step-up; `Basic` for a client that ' +
      'authenticated with HTTP Basic at an OAuth endpoint.',
    schema: { type: 'string' },
  },
  Location: {
    description: 'Where to go next (RFC 9110 §10.2.2, §15.4.4)',
    required: true,
    schema: { type: 'string', format: 'uri-reference' },
  },
} as const;
type SharedHeader = keyof typeof SHARED_HEADERS;

/** The stable `code`s a status can carry, for each error response's description. */
function codesFor(status: number, statuses: readonly [string, number][]): string[] {
  return statuses.filter(([, codeStatus]) => codeStatus === status).map(([code]) => code);
}

/** An error response's description: RFC 9457, the `code`s its status can carry, and `more`. */
function problemDescription(status: number, statuses: readonly [string, number][], more = ''): string {
  const codes = codesFor(status, statuses);
  return `Problem details (RFC 9457)${codes.length > 0 ? `; \`code\`: ${codes.join(', ')}` : ''}${more}`;
}

/**
 * Responses declared once in `components.responses` and referenced from every operation that can
 * get them: they come from before any route's handler (the 404 handler, Fastify's body parser), so
 * each reads the same on every path.
 */
function sharedResponses(statuses: readonly [string, number][]) {
  const problem = { [PROBLEM_MEDIA_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } };
  return {
    MethodNotAllowed: {
      description: problemDescription(
        405,
        statuses,
        '. The request’s method is not one this path takes (RFC 9110 §15.5.6): sent for every method not ' +
          'documented under the path, never for one that is.',
      ),
      headers: {
        Allow: {
          description: 'The methods the path takes (RFC 9110 §10.2.1), `HEAD` with `GET`',
          required: true,
          schema: { type: 'string' },
        },
      },
      content: problem,
    },
    ContentTooLarge: {
      description: problemDescription(
        413,
        statuses,
        '. The body is larger than `BODY_LIMIT` bytes (RFC 9110 §15.5.14), whatever its type.',
      ),
      content: problem,
    },
    UnsupportedMediaType: {
      description: problemDescription(
        415,
        statuses,
        '. The body’s `Content-Type` is not one the server reads (RFC 9110 §15.5.16): send the one the ' +
          'request body lists, or no body.',
      ),
      content: problem,
    },
  } satisfies Record<string, OpenApiResponse>;
}
type SharedResponse = keyof ReturnType<typeof sharedResponses>;

/** `GET /users/{id}/mfa` → `getUsersByIdMfa`: stable, unique per method and path. */
function operationIdOf(method: string, path: string): string {
  const words = path
    .split('/')
    .filter((segment) => segment !== '')
    .map((segment) => {
      const param = /^\{(.+)\}$/.exec(segment);
      return param === null ? segment : `by-${param[1]}`;
    })
    .flatMap((segment) => segment.split(/[^A-Za-z0-9]+/))
    .filter((word) => word !== '');
  return method + words.map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join('');
}

/** Whether a response schema is the RFC 9457 problem (by reference or inline). */
function isProblemSchema(schema: Record<string, unknown> | undefined): boolean {
  if (schema === undefined) return false;
  if (typeof schema.$ref === 'string') return schema.$ref.endsWith('/Problem');
  const properties = schema.properties as Record<string, unknown> | undefined;
  return properties !== undefined && 'status' in properties && 'code' in properties && 'title' in properties;
}

/**
 * Makes the collected document say what the server does (issue 11; Redocly's recommended rules):
 * `servers` from PUBLIC_URL; error responses as `application/problem+json` (what
 * `sendProblem` sends; `/token` and `/revoke` keep RFC 6749 JSON) listing their possible `code`s;
 * 503 with `Retry-After` on every operation that reaches the database, `Retry-After` on every 429,
 * `WWW-Authenticate` on every 401 and 403, `Location` on every 303; 405 with `Allow` on every
 * operation, 413 and 415 on every one whose method has a body (the OAuth endpoints answer those
 * 400 `invalid_request`, RFC 6749 §5.2), each a reference to one shared response;
 * an `operationId` on every operation (SDK generators need one); `security: []` on public ones
 * (guarded routes get theirs from the guard, see http/auth.ts).
 */
export function finishOpenApiDocument<T extends object>(
  document: T,
  publicUrl: string,
  statuses: readonly [code: string, status: number][] = Object.entries(CORE_ERROR_STATUSES),
): T {
  const doc = document as OpenApiDocument;
  doc.servers = [{ url: publicUrl, description: 'This server (PUBLIC_URL)' }];
  // Only what some operation refers to goes into `components` (Redocly: no unused components).
  const headersUsed = new Set<SharedHeader>();
  const withHeader = (response: OpenApiResponse, name: SharedHeader) => {
    headersUsed.add(name);
    // A route's own declaration of the header stays.
    response.headers = { [name]: { $ref: `#/components/headers/${name}` }, ...response.headers };
  };
  const responsesUsed = new Set<SharedResponse>();
  const refer = (name: SharedResponse): OpenApiResponse => {
    responsesUsed.add(name);
    return { $ref: `#/components/responses/${name}` };
  };
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const oauth = OAUTH_ROUTES.has(path);
    for (const [method, operation] of Object.entries(item)) {
      if (!HTTP_METHODS.has(method)) continue;
      operation.operationId ??= operationIdOf(method, path);
      operation.security ??= [];
      operation.responses ??= {};
      const responses = operation.responses;
      if (!NO_OUTAGE_PATHS.has(path) && responses['503'] === undefined && !oauth) {
        responses['503'] = {
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Problem' } } },
        };
      }
      for (const [status, response] of Object.entries(responses)) {
        const code = Number(status);
        if (response.$ref !== undefined) continue;
        if (code === 303) withHeader(response, 'Location');
        if (!(code >= 400)) continue;
        const schema = Object.values(response.content ?? {})[0]?.schema;
        if (!oauth && !isProblemSchema(schema)) continue;
        if (code === 429 || code === 503) withHeader(response, 'Retry-After');
        if (code === 401 || code === 403) withHeader(response, 'WWW-Authenticate');
        if (oauth) continue;
        response.content = { [PROBLEM_MEDIA_TYPE]: { schema: schema ?? {} } };
        response.description = problemDescription(code, statuses);
      }
      // The 404 handler answers any path it serves, the OAuth endpoints too, in problem+json.
      responses['405'] ??= refer('MethodNotAllowed');
      if (BODY_METHODS.has(method) && !oauth) {
        responses['413'] ??= refer('ContentTooLarge');
        responses['415'] ??= refer('UnsupportedMediaType');
      }
    }
  }
  // @fastify/swagger calls a response whose schema has no description "Default Response", which
  // reads as a placeholder (newcomer review 2026-12-06: 100 of 724 responses, every /token one
  // among them): the schema's own description, else what an OAuth error is, else the status's name.
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, operation] of Object.entries(item)) {
      if (!HTTP_METHODS.has(method)) continue;
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        if (response.$ref !== undefined) continue;
        if (response.description !== undefined && response.description !== DEFAULT_RESPONSE) continue;
        response.description = describeResponse(doc, status, response, OAUTH_ROUTES.has(path));
      }
    }
  }
  const shared = sharedResponses(statuses);
  if (responsesUsed.size > 0) {
    doc.components ??= {};
    doc.components.responses ??= {};
    for (const name of responsesUsed) doc.components.responses[name] = shared[name];
  }
  if (headersUsed.size > 0) {
    doc.components ??= {};
    doc.components.headers ??= {};
    for (const name of headersUsed) doc.components.headers[name] = SHARED_HEADERS[name];
  }
  // Resource-server mode and client tokens: each scheme is described only where a route accepts it.
  const uses = (scheme: string) =>
    Object.values(doc.paths ?? {}).some((item) =>
      Object.values(item).some((operation) =>
        (operation.security ?? []).some(
          (requirement) => typeof requirement === 'object' && requirement !== null && scheme in requirement,
        ),
      ),
    );
  if (!uses('externalBearer')) delete doc.components?.securitySchemes?.externalBearer;
  if (!uses('OAuth2ClientCredentials')) delete doc.components?.securitySchemes?.OAuth2ClientCredentials;
  return document;
}

/** What @fastify/swagger writes for a response whose schema has no `description`. */
const DEFAULT_RESPONSE = 'Default Response';

/**
 * A description for a response its route left undescribed: its schema's own (a shared schema's,
 * through its `$ref`), an OAuth endpoint's error format (RFC 6749 §5.2), or the status's name.
 */
function describeResponse(
  doc: OpenApiDocument,
  status: string,
  response: OpenApiResponse,
  oauth: boolean,
): string {
  const schema = Object.values(response.content ?? {})[0]?.schema;
  const ref = typeof schema?.$ref === 'string' ? schema.$ref.replace('#/components/schemas/', '') : undefined;
  const own = ref === undefined ? schema?.description : doc.components?.schemas?.[ref]?.description;
  if (typeof own === 'string' && own !== '') return own;
  // A response key is a status, a range (`4XX`) or `default` (OpenAPI 3.1 §4.8.16): red-team
  // 2026-12u F4 found "HTTP NaN" for the last two.
  const name =
    status === 'default'
      ? 'Any other status'
      : /^[1-5]XX$/i.test(status)
        ? `Any ${status[0]}xx status`
        : (STATUS_CODES[status] ?? `HTTP ${status}`);
  if (oauth && !/^[123]/.test(status))
    return `${name}: an OAuth error, \`error\` and \`error_description\` (RFC 6749 §5.2)`;
  return name;
}

/**
 * The document's fixed parts: title, licence, and the security schemes the guards refer to: the
 * core's (the OAuth2 flow listing `scopes`, the server's scopes with its apps') and those apps
 * registered on `app.openApiSecuritySchemes`.
 */
function openApiBase(
  cookies: CookiePolicy,
  scopes: Readonly<Record<string, string>>,
  appSchemes: Readonly<Record<string, OpenApiSecurityScheme>>,
) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gatehouse',
      version: '0.1.0',
      license: { name: 'MIT', identifier: 'MIT' },
      description:
        'Authentication and authorization for TypeScript APIs. Click **Authorize**, enter your email as ' +
        'username and your password (leave client fields empty) to try the protected routes. Errors are ' +
        '`application/problem+json` (RFC 9457) with a stable `code`, except `/token` (RFC 6749 §5.2).',
    },
    components: { securitySchemes: { ...coreSecuritySchemes(cookies, scopes), ...appSchemes } },
  };
}

/** Marks the forwarding routes as not part of the document. */
const HIDDEN = { schema: { hide: true } } as const;

/** The OpenAPI document's paths: JSON at the root, and Swagger UI's JSON and YAML copies. */
const DOCUMENT_PATHS = new Set(['/openapi.json', '/docs/json', '/docs/yaml']);
/** A file of Swagger UI's own (`/docs/static/swagger-ui-bundle.js`): one plain name, no folders. */
const DOCS_STATIC_FILE = /^\/docs\/static\/[\w-]+(?:\.[\w-]+)+$/;

/**
 * Registers OpenAPI 3.1 at `/openapi.json` and Swagger UI at `/docs`. Must run before routes are
 * added (it collects them as they register). The OAuth2 password scheme points at `/token` and
 * lists every scope, so "Authorize" in Swagger UI works and offers them.
 *
 * Lazy (issue 10, footprint): start-up only records the routes and their shared schemas. The
 * first request to `/openapi.json` or `/docs` imports `@fastify/swagger` (and its YAML parser),
 * `@fastify/swagger-ui` and `@fastify/static`, builds a small app holding the same routes
 * (schemas only; their handlers answer 404 and never run) and answers from it from then on
 * (see {@link lazyAppHandler}). A server nobody asks for its documentation never loads them.
 */
export function registerOpenApi(
  app: FastifyInstance,
  cookies: CookiePolicy,
  options: { publicUrl: string },
): void {
  // Bounded by the number of routes and plugin contexts, both fixed once the server is ready.
  const routes: RouteOptions[] = [];
  const contexts: FastifyInstance[] = [app];
  app.addHook('onRoute', (route) => {
    // A reference: hooks that run after this one (the guards' OpenAPI security) still show.
    if (route.method !== 'HEAD' && route.schema?.hide !== true) routes.push(route);
  });
  app.addHook('onRegister', (context) => {
    contexts.push(context);
  });

  const build = async (): Promise<FastifyInstance> => {
    const [{ default: swagger }, { default: swaggerUi }] = await Promise.all([
      import('@fastify/swagger'),
      import('@fastify/swagger-ui'),
    ]);
    const docs = Fastify({ logger: false });
    // The copied routes never serve a request: no validator or serializer is worth compiling.
    docs.setValidatorCompiler(() => () => true);
    docs.setSerializerCompiler(() => (data) => JSON.stringify(data));
    const shared = new Map<string, unknown>();
    for (const context of contexts) {
      for (const [id, schema] of Object.entries(context.getSchemas())) shared.set(id, schema);
    }
    for (const schema of shared.values()) docs.addSchema(schema);
    await docs.register(swagger, {
      transformObject: (collected) =>
        finishOpenApiDocument(
          'openapiObject' in collected ? collected.openapiObject : collected.swaggerObject,
          options.publicUrl,
          // Read when the document is built, so the codes apps registered after this are listed.
          app.hasDecorator('gatehouseErrors') ? app.gatehouseErrors.entries() : undefined,
        ),
      // Name shared schemas by their $id (Problem, PublicUser…) instead of def-0, def-1…
      refResolver: {
        buildLocalReference: (json, _baseUri, _fragment, i) =>
          typeof json.$id === 'string' ? json.$id : `def-${i}`,
      },
      openapi: openApiBase(
        cookies,
        // Read when the document is built: the server's scopes (its apps' included) and the
        // schemes apps registered after this.
        app.hasDecorator('gatehouse') ? gatehouseCore(app.gatehouse).scopes.descriptions : SCOPES,
        app.hasDecorator('openApiSecuritySchemes') ? app.openApiSecuritySchemes.entries() : {},
      ),
    });
    for (const route of routes) {
      docs.route({
        method: route.method,
        url: route.url,
        ...(route.schema === undefined ? {} : { schema: route.schema as FastifySchema }),
        ...(route.config === undefined ? {} : { config: route.config }),
        handler: async (_request, reply) => reply.code(404).send(),
      });
    }
    docs.get('/openapi.json', HIDDEN, async () => docs.swagger());
    await docs.register(swaggerUi, {
      routePrefix: '/docs',
      uiConfig: { persistAuthorization: false, tryItOutEnabled: true },
      // The UI's own script and styles are static files: our CSP (script-src 'self') allows them.
      staticCSP: false,
    });
    return docs;
  };
  // The document (and the UI's own copies of it) and the UI's files are fixed once built: made
  // once, sent from memory.
  const handler = lazyAppHandler(build, {
    cacheable: (path) => DOCUMENT_PATHS.has(path) || DOCS_STATIC_FILE.test(path),
  });
  app.get('/openapi.json', HIDDEN, handler);
  app.get('/docs', HIDDEN, handler);
  app.get('/docs/*', HIDDEN, handler);
}
