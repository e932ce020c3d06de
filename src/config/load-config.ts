import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { Type } from 'typebox';
import { Check } from 'typebox/schema';
import { ConfigError } from '../errors.js';
import { type AppSettings, type AppSettingValues, assertRegistrable } from './app-settings.js';
import { type GatehouseConfig, gatehouseConfigSchema, MIN_SECRET_BYTES } from './config.js';
import { type EnvSyntax, SETTING, type SettingSchema } from './setting.js';
import { describeStructureErrors, findCrossSettingProblems } from './validate-config.js';

/** Settings read from the environment; `secretKey` is absent when `SECRET_KEY` is unset. */
export type EnvConfig = Omit<GatehouseConfig, 'secretKey'> & { secretKey: Uint8Array | undefined };

/** Options of {@link loadConfig} and `resolveConfig`. */
export interface LoadConfigOptions {
  /**
   * The apps whose settings are read too, each through its own schema, beside the core's
   * (an app's schema names its variables). A property or variable two of them share is refused.
   * @default []
   */
  settings?: readonly AppSettings[];
}

type Env = Record<string, string | undefined>;

// The environment may leave the secret out (`resolveConfig` then generates or reads one).
const envConfigSchema = Type.Object({
  ...gatehouseConfigSchema.properties,
  secretKey: Type.Union([gatehouseConfigSchema.properties.secretKey, Type.Undefined()]),
});

const DURATION = /^(\d{1,9})(s|m|h|d)?$/;
const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };
const MILLIS = /^(\d{1,7})(ms|s)?$/;
const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

/**
 * Reads `.env` (when present in the working directory) under the real environment: variables
 * already set win, as with dotenv's default.
 */
export function readEnvironment(env: Env = process.env, cwd = process.cwd()): Env {
  const file = join(cwd, '.env');
  if (!existsSync(file)) return env;
  return { ...parseDotenv(readFileSync(file)), ...env };
}

/** The value a variable's string stands for, before the schema checks it; undefined when unreadable. */
function parseEnvValue(raw: string, syntax: EnvSyntax): unknown {
  switch (syntax) {
    case 'text':
      return raw;
    case 'integer':
      return /^\d{1,10}$/.test(raw) ? Number(raw) : undefined;
    case 'seconds': {
      const match = DURATION.exec(raw);
      const unitSeconds = UNIT_SECONDS[match?.[2] ?? 's'];
      return match && unitSeconds !== undefined ? Number(match[1]) * unitSeconds : undefined;
    }
    case 'milliseconds': {
      const match = MILLIS.exec(raw);
      return match ? Number(match[1]) * (match[2] === 'ms' ? 1 : 1000) : undefined;
    }
    case 'boolean':
      if (TRUE.includes(raw.toLowerCase())) return true;
      return FALSE.includes(raw.toLowerCase()) ? false : undefined;
    case 'list':
      return raw
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    case 'origin':
      return raw.endsWith('/') ? raw.slice(0, -1) : raw;
    case 'trust-proxy':
      if (FALSE.includes(raw.toLowerCase())) return false;
      if (TRUE.slice(1).includes(raw.toLowerCase())) return true;
      if (/^[1-9]\d{0,2}$/.test(raw)) return Number(raw);
      return raw.split(',').map((part) => part.trim());
    case 'bytes':
      return new TextEncoder().encode(raw);
    case 'json':
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        return undefined;
      }
  }
}

/**
 * Reads one setting's variable into `values` (its default when unset or empty); a refused value
 * adds its problem, naming the variable and what it accepts.
 */
function readSetting(
  property: string,
  schema: SettingSchema,
  env: Env,
  found: { values: Record<string, unknown>; unset: Set<string>; problems: string[] },
): void {
  const info = schema[SETTING];
  const raw = env[info.env];
  found.values[property] = info.default?.value;
  if (raw === undefined || raw === '') {
    found.unset.add(property);
    return;
  }
  const value = parseEnvValue(raw, info.syntax);
  if (value !== undefined && Check(schema, value)) {
    found.values[property] = value;
    return;
  }
  found.unset.add(property);
  if (info.syntax === 'bytes') {
    const bytes = new TextEncoder().encode(raw).byteLength;
    // Long enough, and refused all the same: it is the randomness (SECRET_KEY's entropy floor).
    const what = bytes >= MIN_SECRET_BYTES ? `is ${bytes} bytes but plainly not random` : `is ${bytes} bytes`;
    found.problems.push(
      `${info.env} ${what}: it must be ${info.accepts.env}; generate one with: ` +
        "node -e \"console.log(require('node:crypto').randomBytes(32).toString('base64url'))\"",
    );
  } else {
    const shown = info.sensitive || info.syntax === 'json' ? '' : `=${JSON.stringify(raw)}`;
    const detail =
      info.syntax === 'json' && value === undefined
        ? ' (not valid JSON)'
        : describeStructureErrors(schema, value, info);
    found.problems.push(`${info.env}${shown}: expected ${info.accepts.env}${detail}`);
  }
}

/**
 * Validates every Gatehouse variable in `env`, and those of the apps in `options.settings`, and
 * returns the settings in one flat object. Each variable is read by its entry in
 * `gatehouseConfigSchema` or its app's schema (the schemas `createGatehouse` checks code options
 * against); unset or empty variables take the default. All problems are collected and thrown
 * together as a {@link ConfigError} naming each variable and what it accepts.
 */
export function loadConfig(env: Env, options: LoadConfigOptions = {}): EnvConfig & AppSettingValues {
  const apps = options.settings ?? [];
  assertRegistrable(apps);
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  // Properties whose variable is unset, empty or refused: derived defaults apply to them.
  const unset = new Set<string>();
  const found = { values, unset, problems };
  for (const [property, schema] of Object.entries(gatehouseConfigSchema.properties)) {
    readSetting(property, schema, env, found);
  }
  for (const app of apps) {
    for (const [property, schema] of Object.entries(app.schema.properties))
      readSetting(property, schema, env, found);
  }
  // Defaults that derive from other settings, when their own variable is unset.
  if (unset.has('databaseUrl')) values.databaseUrl = `sqlite:${join(String(values.dataDir), 'gatehouse.db')}`;
  if (unset.has('publicUrl')) values.publicUrl = `http://localhost:${String(values.port)}`;
  if (unset.has('issuer')) values.issuer = values.publicUrl;

  if (!Check(envConfigSchema, values)) {
    // Every value is a checked one or a default; reaching this is a bug in the schema.
    throw new Error('gatehouseConfigSchema: environment settings do not pass the schema');
  }
  const envName = (property: keyof GatehouseConfig) =>
    gatehouseConfigSchema.properties[property][SETTING].env;
  problems.push(...findCrossSettingProblems(values, envName));
  if (problems.length > 0) throw new ConfigError(problems);
  return values;
}
