import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { Type } from 'typebox';
import { Check } from 'typebox/schema';
import { ConfigError } from '../errors.js';
import { type GatehouseConfig, gatehouseConfigSchema } from './config.js';
import { type EnvSyntax, SETTING } from './setting.js';
import { describeStructureErrors, findCrossSettingProblems } from './validate-config.js';

/** Settings read from the environment; `secretKey` is absent when `SECRET_KEY` is unset. */
export type EnvConfig = Omit<GatehouseConfig, 'secretKey'> & { secretKey: Uint8Array | undefined };

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
 * Validates every Gatehouse variable in `env` and returns the settings. Each variable is read by
 * its entry in `gatehouseConfigSchema` (the schema `createGatehouse` checks code options against);
 * unset or empty variables take the default. All problems are collected and thrown together as a
 * {@link ConfigError} naming each variable and what it accepts.
 */
export function loadConfig(env: Env): EnvConfig {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  // Properties whose variable is unset, empty or refused: derived defaults apply to them.
  const unset = new Set<string>();
  for (const [property, schema] of Object.entries(gatehouseConfigSchema.properties)) {
    const info = schema[SETTING];
    const raw = env[info.env];
    values[property] = info.default?.value;
    if (raw === undefined || raw === '') {
      unset.add(property);
      continue;
    }
    const value = parseEnvValue(raw, info.syntax);
    if (value !== undefined && Check(schema, value)) {
      values[property] = value;
      continue;
    }
    unset.add(property);
    if (info.syntax === 'bytes') {
      const bytes = new TextEncoder().encode(raw).byteLength;
      problems.push(
        `${info.env} is ${bytes} bytes: it must be ${info.accepts.env}; generate one with: ` +
          "node -e \"console.log(require('node:crypto').randomBytes(32).toString('base64url'))\"",
      );
    } else {
      const shown = info.sensitive || info.syntax === 'json' ? '' : `=${JSON.stringify(raw)}`;
      const detail =
        info.syntax === 'json' && value === undefined
          ? ' (not valid JSON)'
          : describeStructureErrors(schema, value, info);
      problems.push(`${info.env}${shown}: expected ${info.accepts.env}${detail}`);
    }
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
