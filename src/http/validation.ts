import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifyInstance, FastifySchemaCompiler } from 'fastify';

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

/** Validator compiler: strict for bodies, coercing for the text parts of a request. */
export const validatorCompiler: FastifySchemaCompiler<unknown> = (route) =>
  (route.httpPart === 'body' ? bodyCompiler : textCompiler)(route as Parameters<typeof bodyCompiler>[0]);

/** Installs {@link validatorCompiler} on `app` (and the contexts registered under it). */
export function installValidation(app: FastifyInstance): void {
  app.setValidatorCompiler(validatorCompiler);
}
