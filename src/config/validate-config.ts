import { isIP } from 'node:net';
import type { TSchema } from 'typebox';
import { Check, Errors } from 'typebox/schema';
import { ConfigError } from '../errors.js';
import { parseRedisUrl } from '../events/redis-url.js';
import { type AppSettings, findRegistrationProblems } from './app-settings.js';
import { type GatehouseConfig, gatehouseConfigSchema } from './config.js';
import { SETTING, type SettingInfo, type SettingSchema } from './setting.js';

/** The settings the rules between settings read (every one but the secret). */
type CheckedSettings = Omit<GatehouseConfig, 'secretKey'>;

/** Names a setting in a message: its environment variable, or its property in code. */
export type SettingLabel = (property: keyof GatehouseConfig) => string;

/**
 * The shortest prefixes a trusted-proxy range may have. Wider ranges (`0.0.0.0/0`, `::/0`, two
 * `/1` halves, `::ffff:0.0.0.0/96`, which proxy-addr matches against every IPv4 peer) trust
 * clients' own X-Forwarded-For, the hole `TRUST_PROXY=true` is refused for (red-team F7; operator
 * red-team and review 2026-12-04): per-address limits dodged, audit addresses forged. IPv4 (mapped
 * or not) down to /8 (`10.0.0.0/8`); IPv6 down to /32, or /7 inside unique-local `fc00::/7`.
 */
const MIN_IPV4_PREFIX = 8;
const MIN_IPV6_PREFIX = 32;

/** Why `entry` is not a proxy address or range Gatehouse trusts; undefined when it is fine. */
function trustedProxyProblem(entry: string): string | undefined {
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return 'is not an IP address or CIDR range';
  if (prefix === undefined) return undefined;
  const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN;
  if (!(bits <= (family === 4 ? 32 : 128))) return 'has an invalid prefix length';
  const tooWide = `is too wide a range to trust: it would trust clients' own X-Forwarded-For`;
  if (family === 4) return bits < MIN_IPV4_PREFIX ? tooWide : undefined;
  // An IPv4-mapped range (::ffff:a.b.c.d/n) covers IPv4 peers: its IPv4 part is n − 96 bits.
  if (/^::ffff:/i.test(address)) return bits - 96 < MIN_IPV4_PREFIX ? tooWide : undefined;
  const uniqueLocal = /^f[cd]/i.test(address) && bits >= 7;
  return bits < MIN_IPV6_PREFIX && !uniqueLocal ? tooWide : undefined;
}

/**
 * Rules between settings that are each valid alone, shared by the environment and the code path
 * (`label` names the settings the way the caller wrote them).
 */
export function findCrossSettingProblems(config: CheckedSettings, label: SettingLabel): string[] {
  const problems: string[] = [];
  if (config.metricsPort !== undefined && config.metricsPort !== 0 && config.metricsPort === config.port) {
    problems.push(
      `${label('metricsPort')}: must differ from ${label('port')} (metrics are never served on the public port)`,
    );
  }
  // A revoking transaction stamps revoked_at before it commits; a reload must reach back past the
  // longest such transaction can stay open (idle-in-transaction ends it at 2× the statement
  // timeout, see open-database.ts) plus clock skew between instances, or it misses the row.
  const minOverlapMs = 2 * config.databaseStatementTimeoutMs + 5000;
  if (config.revocationReloadOverlap * 1000 < minOverlapMs) {
    problems.push(
      `${label('revocationReloadOverlap')} must be at least ${Math.ceil(minOverlapMs / 1000)} s ` +
        `(twice ${label('databaseStatementTimeoutMs')} plus 5 s of clock skew)`,
    );
  }
  if (config.refreshIdleTtl > config.sessionAbsoluteTtl) {
    problems.push(`${label('refreshIdleTtl')} must not exceed ${label('sessionAbsoluteTtl')}`);
  }
  // Our own tokens are verified by the keyring; an external entry with our issuer would route them
  // to the external verifier and its fetched keys instead.
  if (config.externalIssuers.some((entry) => entry.issuer === config.issuer)) {
    problems.push(`${label('externalIssuers')}: must not list ${label('issuer')} (Gatehouse's own tokens)`);
  }
  if (Array.isArray(config.trustProxy)) {
    for (const entry of config.trustProxy) {
      const problem = trustedProxyProblem(entry);
      if (problem !== undefined) problems.push(`${label('trustProxy')}: ${JSON.stringify(entry)} ${problem}`);
    }
  }
  // A URL the WHATWG parser refuses (a password holding an unencoded / or #, a port out of range)
  // failed only later, in the driver: SMTP's printed the whole URL, password included, in a
  // deprecation warning, and a database's or Redis's was retried for ever (red-team 2026-12k P4).
  // The message never echoes the URL.
  const unparsable = (url: string) => {
    try {
      return new URL(url).hostname === '' && /^smtps?:/.test(url);
    } catch {
      return true;
    }
  };
  const encodeHint =
    'is not a valid URL (percent-encode reserved characters such as / # ? @ : in the user name and password, e.g. / as %2F; the port must be 1 to 65535)';
  if (config.smtpUrl !== undefined && unparsable(config.smtpUrl))
    problems.push(`${label('smtpUrl')}: ${encodeHint}`);
  if (/^postgres(ql)?:/.test(config.databaseUrl) && unparsable(config.databaseUrl)) {
    problems.push(`${label('databaseUrl')}: ${encodeHint}`);
  }
  if (config.redisUrl !== undefined && !config.redisUrl.startsWith('unix:') && unparsable(config.redisUrl)) {
    problems.push(`${label('redisUrl')}: ${encodeHint}`);
  }
  // The schema checks the scheme; a Unix-socket URL's path and parameters are checked here, so a
  // typo fails at start-up rather than as a reconnect loop (the message never echoes the URL).
  if (config.redisUrl !== undefined) {
    const redis = parseRedisUrl(config.redisUrl);
    if (!redis.ok) problems.push(`${label('redisUrl')}: ${redis.problem}`);
  }
  return problems;
}

/**
 * Every problem with settings passed in code, one line each, naming the property, what it got and
 * what it accepts: wrong types, out-of-bounds or non-finite numbers, unknown algorithms, short
 * secrets, unknown properties (a typo would otherwise fall back to a default silently), and the
 * rules between settings. The settings of the registered `apps` sit beside the core's and are
 * checked by their own schemas the same way; an app setting left out takes its default. Empty when
 * `config` is a valid {@link GatehouseConfig} with valid app settings.
 */
export function findConfigProblems(config: unknown, apps: readonly AppSettings[] = []): string[] {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    return ['expected an object of Gatehouse settings'];
  }
  const registration = findRegistrationProblems(apps);
  if (registration.length > 0) return registration;
  const given = new Map<string, unknown>(Object.entries(config));
  const problems: string[] = [];
  const check = (property: string, schema: SettingSchema, value: unknown) => {
    if (Check(schema, value)) return;
    const info = schema[SETTING];
    problems.push(
      `${property}: got ${describeValue(value, info)}; expected ${info.accepts.code} (env ${info.env})` +
        describeStructureErrors(schema, value, info),
    );
  };
  const known = new Set<string>();
  for (const [property, schema] of Object.entries(gatehouseConfigSchema.properties)) {
    known.add(property);
    check(property, schema, given.get(property));
  }
  for (const app of apps) {
    for (const [property, schema] of Object.entries(app.schema.properties)) {
      known.add(property);
      // Left out, an app setting takes its default: the embedder chose the core's settings, the app ships its own.
      const fallback = schema[SETTING].default;
      if (!given.has(property) && fallback !== undefined) continue;
      check(property, schema, given.get(property));
    }
  }
  const registered =
    apps.length === 0 ? '' : ` or of the registered apps (${apps.map((app) => app.app).join(', ')})`;
  for (const property of given.keys()) {
    if (!known.has(property)) problems.push(`${property}: not a Gatehouse setting${registered}`);
  }
  // The rules between settings only mean something once each setting is valid alone.
  const core = Object.fromEntries(
    Object.keys(gatehouseConfigSchema.properties).map((key) => [key, given.get(key)]),
  );
  if (problems.length === 0 && Check(gatehouseConfigSchema, core)) {
    problems.push(...findCrossSettingProblems(core, (property) => property));
  }
  return problems;
}

/**
 * Checks settings passed in code against {@link gatehouseConfigSchema} (and the registered `apps`'
 * schemas), the schemas the environment is read through, so both paths refuse the same values.
 * Throws a {@link ConfigError} listing every problem at once.
 */
export function assertValidConfig(
  config: unknown,
  apps: readonly AppSettings[] = [],
): asserts config is GatehouseConfig {
  const problems = findConfigProblems(config, apps);
  if (problems.length > 0) throw new ConfigError(problems);
}

/**
 * For a structured setting (syntax `json`), where the value departs from the schema: the first
 * three errors with their JSON pointers (`at /0/issuer: must be an https URL`); empty otherwise.
 */
export function describeStructureErrors(schema: TSchema, value: unknown, info: SettingInfo): string {
  if (info.syntax !== 'json') return '';
  const [, errors] = Errors(schema, value);
  const shown = errors
    .filter((error) => error.keyword !== 'boolean')
    .slice(0, 3)
    .map((error) => `at ${error.instancePath === '' ? '/' : error.instancePath}: ${error.message}`);
  return shown.length === 0 ? '' : ` (${shown.join('; ')})`;
}

/** The value as a message shows it; a sensitive one by its kind only. */
function describeValue(value: unknown, info: SettingInfo): string {
  if (value === undefined || value === null) return String(value);
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  const printable = (item: unknown) => ['string', 'number', 'boolean'].includes(typeof item);
  if (!info.sensitive && (printable(value) || (Array.isArray(value) && value.every(printable)))) {
    const text = typeof value === 'number' ? String(value) : JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  }
  if (Array.isArray(value)) return 'an array';
  return /^[aeiou]/.test(typeof value) ? `an ${typeof value}` : `a ${typeof value}`;
}
