import { AjvCompiler } from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyInstance, FastifySchemaCompiler, FastifyServerOptions } from 'fastify';

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

/** Validator compiler: strict for bodies, coercing for the text parts of a request; lazy. */
export const validatorCompiler: FastifySchemaCompiler<unknown> = compileOnFirstUse((route) =>
  (route.httpPart === 'body' ? bodyCompiler : textCompiler)(route as Parameters<typeof bodyCompiler>[0]),
);

/** Installs {@link validatorCompiler} on `app` (and the contexts registered under it). */
export function installValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(validatorCompiler);
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
