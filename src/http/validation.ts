import { AjvCompiler } from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type {
  FastifyInstance,
  FastifySchemaCompiler,
  FastifyServerOptions,
  preParsingHookHandler,
} from 'fastify';
import { GatehouseError } from '../errors.js';
import { ACCEPT_PATCH } from './error-handler.js';

type FastifyValidationResult = ReturnType<FastifySchemaCompiler<unknown>>;

const build = AjvCompiler();
// Bodies are JSON and already typed: coercing `5` into "5" or "true" into true would accept input
// the schema says is wrong. Unknown fields must be rejected by name, never silently stripped
// (Fastify's default `removeAdditional: true` would drop a `role` field and answer 201).
const bodyCompiler = build(
  {},
  { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true } },
);
// Query strings, params and headers arrive as text, so numbers and booleans there need coercion.
const textCompiler = build(
  {},
  { customOptions: { coerceTypes: 'array', removeAdditional: false, useDefaults: true } },
);

/**
 * Wraps `compile` so each schema is compiled on its first use, not at start-up. Most of the
 * reference server's ≈ 80 routes are never called in a given process, and their compiled Ajv
 * validators were ≈ 4 MiB of the idle RSS (issue 10: footprint). The cost moves to the first
 * request of each route and part (a few ms, once). A schema Ajv cannot compile then fails that
 * request with a 500 problem+json (the route's tests catch it), not the start-up.
 */
export function compileOnFirstUse(compile: FastifySchemaCompiler<unknown>): FastifySchemaCompiler<unknown> {
  return (route) => {
    // Fastify reads `errors` off the function after a `false` answer (Ajv's shape): copied over.
    let validate: FastifyValidationResult | undefined;
    const lazy: FastifyValidationResult = (data: unknown) => {
      validate ??= compile(route);
      const result = validate(data);
      lazy.errors = validate.errors;
      return result;
    };
    return lazy;
  };
}

/** The path of the first number in `value` (an object or array, nested) that is ±Infinity or NaN. */
function nonFinitePath(value: unknown, path: string): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = nonFinitePath(item, `${path}/${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Wraps a coercing validator so a number that coerced to ±Infinity or NaN fails like any other
 * out-of-range value (red-team 2026-12c H1). Ajv 8 coerces `"1e400"`, `"Infinity"` and
 * `"-Infinity"` with `+value` and then guards `minimum`/`maximum` with `isFinite`, so ±Infinity
 * passed every bound and reached SQL `LIMIT`/`OFFSET` (a 500). No query, path or header value of
 * ours means "infinite", so one check here covers every route's integers and numbers, whatever
 * their bounds. Bodies need none: without coercion Ajv's own type check refuses non-finite numbers.
 */
function refuseNonFinite(validate: FastifyValidationResult): FastifyValidationResult {
  const checked: FastifyValidationResult = (data: unknown) => {
    const result = validate(data);
    checked.errors = validate.errors;
    if (result !== true) return result;
    const path = nonFinitePath(data, '');
    if (path === undefined) return result;
    checked.errors = [
      {
        keyword: 'type',
        instancePath: path,
        schemaPath: '#',
        params: { type: 'finite number' },
        message: 'must be a finite number',
      },
    ];
    return false;
  };
  return checked;
}

/** Validator compiler: strict for bodies, coercing for the text parts of a request; lazy. */
export const validatorCompiler: FastifySchemaCompiler<unknown> = compileOnFirstUse((route) =>
  route.httpPart === 'body'
    ? bodyCompiler(route as Parameters<typeof bodyCompiler>[0])
    : refuseNonFinite(textCompiler(route as Parameters<typeof textCompiler>[0])),
);

/** The media type `application/json` bodies are sent as, the only one a JSON route reads. */
const JSON_TYPE = 'application/json';

/**
 * A JSON route's `preParsing` step: a body of any other type is refused with 415 before it is read.
 * `@fastify/formbody` (for the OAuth endpoints, in the plugin's routes' context) and Fastify's
 * `text/plain` parser reach every route there, so
 * without it a JSON route took a form or plain-text body too: both are CORS-safelisted types, so any
 * web page could make its visitors' browsers sign up or ask for reset mails without a preflight
 * (standards audit 2026-12-05; RFC 9110 §15.5.16). Routes that take forms say so (`consumes`).
 */
const refuseNonJsonBody: preParsingHookHandler = (request, reply, payload, done) => {
  const type = request.headers['content-type'];
  if (type === undefined || mediaTypeOf(type) === JSON_TYPE) {
    done(null, payload);
    return;
  }
  reply.header('accept', JSON_TYPE);
  if (request.method === 'PATCH') reply.header('accept-patch', ACCEPT_PATCH);
  done(new GatehouseError('UNSUPPORTED_MEDIA_TYPE', `Send the body as ${JSON_TYPE}.`));
};

/** The media type of a `Content-Type` value, without parameters, in lower case. */
function mediaTypeOf(contentType: string): string {
  const end = contentType.indexOf(';');
  return (end === -1 ? contentType : contentType.slice(0, end)).trim().toLowerCase();
}

/**
 * Installs {@link validatorCompiler} on `app` (and the contexts registered under it), and the
 * JSON-only body check on every route registered from now on that has a body schema and declares
 * no `consumes` (a route of its own hook list: routes without a body pay nothing).
 */
export function installValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(validatorCompiler);
  app.addHook('onRoute', (route) => {
    if (route.schema?.body === undefined || route.schema.consumes !== undefined) return;
    const steps = route.preParsing === undefined ? [] : [route.preParsing].flat();
    // A context under one that installed this too sees the route twice.
    if (!steps.includes(refuseNonJsonBody)) route.preParsing = [refuseNonJsonBody, ...steps];
  });
}

type SerializerFactory = NonNullable<
  NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildSerializer']
>;

const buildDefaultSerializer = SerializerSelector();

/**
 * Fastify's serializer factory (fast-json-stringify, with the shared schemas), compiling each
 * response schema on its first use instead of at start-up: ≈ 80 routes × their error statuses make
 * several hundred serializers, most never used by a given process (issue 10: footprint). Set it as
 * `schemaController.compilersFactory.buildSerializer` when creating the Fastify instance.
 */
export const buildSerializerOnFirstUse: SerializerFactory = (externalSchemas, options) => {
  const compile = buildDefaultSerializer(externalSchemas, options);
  return (route) => {
    let serialize: ((data: unknown) => string) | undefined;
    return (data: unknown) => {
      serialize ??= compile(route);
      return serialize(data);
    };
  };
};
