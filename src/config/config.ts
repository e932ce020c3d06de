import type { Static } from 'typebox';
import { Type } from 'typebox';
// Check from typebox/schema, not Value from typebox/value: the same check (Value.Check calls it)
// without loading Value's converters, codecs and generators at start-up (≈ 1 MiB of heap, issue 10).
import { Check } from 'typebox/schema';
import { gatehouseConfigSchema } from './config-schema.js';
import { SETTING } from './setting.js';

export { gatehouseConfigSchema, MIN_SECRET_BYTES } from './config-schema.js';

/**
 * The complete, validated settings of one Gatehouse instance. Each property is described, with its
 * environment variable, bounds and default, by its entry in {@link gatehouseConfigSchema} (and the
 * README's settings table, generated from it).
 */
export type GatehouseConfig = Static<typeof gatehouseConfigSchema>;

/**
 * Signing algorithms Gatehouse can be configured with. Only the configured one is ever accepted.
 * RS256 is there because RFC 9068 §4 requires every implementation to support it.
 */
export type JwtAlgorithm = GatehouseConfig['jwtAlgorithm'];

/** How access tokens are represented: `jwt` (self-contained) or `database` (opaque, looked up). */
export type TokenStrategy = GatehouseConfig['tokenStrategy'];

const defaultsSchema = Type.Omit(gatehouseConfigSchema, ['secretKey', 'databaseUrl']);

function collectDefaults(): Static<typeof defaultsSchema> {
  const defaults: Record<string, unknown> = {};
  for (const [property, schema] of Object.entries(gatehouseConfigSchema.properties)) {
    const fallback = schema[SETTING].default;
    if (fallback !== undefined) defaults[property] = fallback.value;
  }
  // Checked at load: a default outside its own bounds is a bug in the schema, not in the caller.
  if (!Check(defaultsSchema, defaults)) {
    throw new Error(`gatehouseConfigSchema: defaults do not pass the schema: ${JSON.stringify(defaults)}`);
  }
  return defaults;
}

/**
 * Defaults for every setting except the secret and the database URL, from
 * {@link gatehouseConfigSchema}. Frozen: spread it into a new object to change a value.
 */
export const defaultConfig: Readonly<Omit<GatehouseConfig, 'secretKey' | 'databaseUrl'>> = Object.freeze(
  collectDefaults(),
);
