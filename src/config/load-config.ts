import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { ConfigError } from '../errors.js';
import { defaultConfig, type GatehouseConfig, type JwtAlgorithm, MIN_SECRET_BYTES } from './config.js';

/** Settings read from the environment; `secretKey` is absent when `SECRET_KEY` is unset. */
export type EnvConfig = Omit<GatehouseConfig, 'secretKey'> & { secretKey: Uint8Array | undefined };

type Env = Record<string, string | undefined>;

const DURATION = /^(\d{1,9})(s|m|h|d)?$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/**
 * Reads `.env` (when present in the working directory) under the real environment: variables
 * already set win, as with dotenv's default.
 */
export function readEnvironment(env: Env = process.env, cwd = process.cwd()): Env {
  const file = join(cwd, '.env');
  if (!existsSync(file)) return env;
  return { ...parseDotenv(readFileSync(file)), ...env };
}

/**
 * Validates every Gatehouse variable in `env` and returns the settings. All problems are
 * collected and thrown together as a {@link ConfigError} naming each variable and what it accepts.
 */
export function loadConfig(env: Env): EnvConfig {
  const problems: string[] = [];
  const str = (name: string, fallback: string): string => {
    const value = env[name];
    return value === undefined || value === '' ? fallback : value;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = /^\d{1,10}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`);
      return fallback;
    }
    return value;
  };
  const duration = (name: string, fallback: number, max = 366 * 86400): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const match = DURATION.exec(raw);
    const seconds = match
      ? Number(match[1]) * UNIT_SECONDS[(match[2] ?? 's') as keyof typeof UNIT_SECONDS]
      : 0;
    if (seconds < 1 || seconds > max) {
      problems.push(
        `${name}=${JSON.stringify(raw)}: expected a duration such as 900, 15m, 12h or 7d (1 s to ${max} s)`,
      );
      return fallback;
    }
    return seconds;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = env[name]?.toLowerCase();
    if (raw === undefined || raw === '') return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name}=${JSON.stringify(env[name])}: expected true or false`);
    return fallback;
  };
  const oneOf = <T extends string>(name: string, fallback: T, allowed: readonly T[]): T => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    problems.push(`${name}=${JSON.stringify(raw)}: expected one of ${allowed.join(', ')}`);
    return fallback;
  };

  const dataDir = str('DATA_DIR', defaultConfig.dataDir);
  const databaseUrl = str('DATABASE_URL', `sqlite:${join(dataDir, 'gatehouse.db')}`);
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(databaseUrl)) {
    problems.push('DATABASE_URL: expected sqlite:<path>, sqlite::memory: or postgres://user@host:port/db');
  }

  let secretKey: Uint8Array | undefined;
  const rawSecret = env.SECRET_KEY;
  if (rawSecret !== undefined && rawSecret !== '') {
    secretKey = new TextEncoder().encode(rawSecret);
    if (secretKey.byteLength < MIN_SECRET_BYTES) {
      problems.push(
        `SECRET_KEY is ${secretKey.byteLength} bytes: it must be at least ${MIN_SECRET_BYTES} bytes (256 bits); ` +
          "generate one with: node -e \"console.log(require('node:crypto').randomBytes(32).toString('base64url'))\"",
      );
    }
  }

  // Key rotation (issue 11): the replaced secret, held to the same length rule as SECRET_KEY.
  let secretKeyPrevious: Uint8Array | undefined;
  const rawPrevious = env.SECRET_KEY_PREVIOUS;
  if (rawPrevious !== undefined && rawPrevious !== '') {
    secretKeyPrevious = new TextEncoder().encode(rawPrevious);
    if (secretKeyPrevious.byteLength < MIN_SECRET_BYTES) {
      problems.push(
        `SECRET_KEY_PREVIOUS is ${secretKeyPrevious.byteLength} bytes: it must be at least ${MIN_SECRET_BYTES} bytes (256 bits)`,
      );
    }
  }

  const corsOrigins = parseOrigins(env.CORS_ORIGINS, problems);
  const redisUrl = env.REDIS_URL === undefined || env.REDIS_URL === '' ? undefined : env.REDIS_URL;
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push('REDIS_URL: expected redis://host:port or rediss://host:port');
  }

  // OAuth (issue 11): the external origin, which the issuer defaults to.
  const port = int('PORT', defaultConfig.port, 0, 65535);
  const publicUrl = parsePublicUrl(env.PUBLIC_URL, port, problems);

  const config: EnvConfig = {
    host: str('HOST', defaultConfig.host),
    port,
    dataDir,
    databaseUrl,
    secretKey,
    secretKeyPrevious,
    accessTokenTtl: duration('ACCESS_TOKEN_TTL', defaultConfig.accessTokenTtl, 24 * 3600),
    refreshIdleTtl: duration('REFRESH_TOKEN_IDLE_TTL', defaultConfig.refreshIdleTtl),
    sessionAbsoluteTtl: duration('SESSION_ABSOLUTE_TTL', defaultConfig.sessionAbsoluteTtl),
    tokenStrategy: oneOf('TOKEN_STRATEGY', defaultConfig.tokenStrategy, ['jwt', 'database']),
    jwtAlgorithm: oneOf<JwtAlgorithm>('JWT_ALG', defaultConfig.jwtAlgorithm, [
      'HS256',
      'EdDSA',
      'ES256',
      'RS256',
    ]),
    issuer: str('JWT_ISSUER', publicUrl),
    audience: str('JWT_AUDIENCE', defaultConfig.audience),
    trustProxy: parseTrustProxy(env.TRUST_PROXY, problems),
    corsOrigins,
    cookieSecure: bool('COOKIE_SECURE', defaultConfig.cookieSecure),
    redisUrl,
    logLevel: oneOf('LOG_LEVEL', defaultConfig.logLevel, [
      'fatal',
      'error',
      'warn',
      'info',
      'debug',
      'trace',
      'silent',
    ]),
    bodyLimit: int('BODY_LIMIT', defaultConfig.bodyLimit, 1024, 10 * 1024 * 1024),
    loginMaxFailuresPerAccount: int(
      'LOGIN_MAX_FAILURES_PER_ACCOUNT',
      defaultConfig.loginMaxFailuresPerAccount,
      1,
      1000,
    ),
    loginMaxFailuresPerIp: int('LOGIN_MAX_FAILURES_PER_IP', defaultConfig.loginMaxFailuresPerIp, 1, 100000),
    loginFailureWindow: duration('LOGIN_FAILURE_WINDOW', defaultConfig.loginFailureWindow, 24 * 3600),
    registrationsPerHour: int('REGISTRATIONS_PER_HOUR', defaultConfig.registrationsPerHour, 1, 1_000_000),
    passwordHashConcurrency: int('PASSWORD_HASH_CONCURRENCY', defaultConfig.passwordHashConcurrency, 1, 64),
    roomTokenTtl: duration('ROOM_TOKEN_TTL', defaultConfig.roomTokenTtl, 12 * 3600),
    roomJoinsPerMinute: int('ROOM_JOINS_PER_MINUTE', defaultConfig.roomJoinsPerMinute, 1, 10000),
    roomRollsPerMinute: int('ROOM_ROLLS_PER_MINUTE', defaultConfig.roomRollsPerMinute, 1, 100000),
    maxStreamsPerPlayer: int('MAX_STREAMS_PER_PLAYER', defaultConfig.maxStreamsPerPlayer, 1, 100),
    roomHeartbeatInterval: duration('ROOM_HEARTBEAT_INTERVAL', defaultConfig.roomHeartbeatInterval, 3600),
    databaseConnectTimeoutMs: millis(
      env,
      'DATABASE_CONNECT_TIMEOUT',
      defaultConfig.databaseConnectTimeoutMs,
      problems,
    ),
    databaseStatementTimeoutMs: millis(
      env,
      'DATABASE_STATEMENT_TIMEOUT',
      defaultConfig.databaseStatementTimeoutMs,
      problems,
    ),
    shutdownGracePeriodMs: millis(
      env,
      'SHUTDOWN_GRACE_PERIOD',
      defaultConfig.shutdownGracePeriodMs,
      problems,
    ),
    // Same syntax as the database timeouts (`2s`, `500ms`, bare numbers are seconds).
    redisCommandTimeoutMs: millis(
      env,
      'REDIS_COMMAND_TIMEOUT',
      defaultConfig.redisCommandTimeoutMs,
      problems,
    ),
    redisConnectTimeoutMs: millis(
      env,
      'REDIS_CONNECT_TIMEOUT',
      defaultConfig.redisConnectTimeoutMs,
      problems,
    ),
    redisMaxReconnectDelayMs: millis(
      env,
      'REDIS_MAX_RECONNECT_DELAY',
      defaultConfig.redisMaxReconnectDelayMs,
      problems,
    ),
    rateLimitMaxKeys: int('RATE_LIMIT_MAX_KEYS', defaultConfig.rateLimitMaxKeys, 1000, 10_000_000),
    revocationReloadInterval: duration(
      'REVOCATION_RELOAD_INTERVAL',
      defaultConfig.revocationReloadInterval,
      3600,
    ),
    revocationReloadOverlap: duration(
      'REVOCATION_RELOAD_OVERLAP',
      defaultConfig.revocationReloadOverlap,
      3600,
    ),
    // 0 is allowed here (strict rotation), which the duration parser refuses elsewhere.
    refreshReuseInterval:
      env.REFRESH_REUSE_INTERVAL === '0'
        ? 0
        : duration('REFRESH_REUSE_INTERVAL', defaultConfig.refreshReuseInterval, 300),
    roomsPerHourPerAccount: int(
      'ROOMS_PER_HOUR_PER_ACCOUNT',
      defaultConfig.roomsPerHourPerAccount,
      1,
      100_000,
    ),
    roomsPerHourPerIp: int('ROOMS_PER_HOUR_PER_IP', defaultConfig.roomsPerHourPerIp, 1, 1_000_000),
    maxOpenRoomsPerHost: int('MAX_OPEN_ROOMS_PER_HOST', defaultConfig.maxOpenRoomsPerHost, 1, 100_000),
    maxStreamsPerAccount: int('MAX_STREAMS_PER_ACCOUNT', defaultConfig.maxStreamsPerAccount, 1, 10_000),
    maxStreamsPerIp: int('MAX_STREAMS_PER_IP', defaultConfig.maxStreamsPerIp, 1, 100_000),
    roomRollsPerMinutePerIp: int(
      'ROOM_ROLLS_PER_MINUTE_PER_IP',
      defaultConfig.roomRollsPerMinutePerIp,
      1,
      1_000_000,
    ),
    maxPlayersPerRoom: int('MAX_PLAYERS_PER_ROOM', defaultConfig.maxPlayersPerRoom, 1, 10_000),
    deviceTokenTtl: duration('DEVICE_TOKEN_TTL', defaultConfig.deviceTokenTtl),
    loginMaxFailuresPerDevice: int(
      'LOGIN_MAX_FAILURES_PER_DEVICE',
      defaultConfig.loginMaxFailuresPerDevice,
      1,
      1000,
    ),
    loginMaxFailuresGlobal: int(
      'LOGIN_MAX_FAILURES_GLOBAL',
      defaultConfig.loginMaxFailuresGlobal,
      1,
      100_000_000,
    ),
    loginMaxSuccessesPerAccount: int(
      'LOGIN_MAX_SUCCESSES_PER_ACCOUNT',
      defaultConfig.loginMaxSuccessesPerAccount,
      1,
      1_000_000,
    ),
    passwordHashReservedSlots: int(
      'PASSWORD_HASH_RESERVED_SLOTS',
      defaultConfig.passwordHashReservedSlots,
      0,
      64,
    ),
    auditRetention: duration('AUDIT_RETENTION', defaultConfig.auditRetention, 10 * 366 * 86400),
    // Input hygiene (issue 8). Below 8 is refused at start-up (NIST SP 800-63B-4 §3.1.1.2); above 64
    // would refuse passwords that NIST says every verifier must accept.
    passwordMinLength: int('PASSWORD_MIN_LENGTH', defaultConfig.passwordMinLength, 8, 64),
    publicUrl,
    // Metrics (issue 10): unset or empty METRICS_PORT keeps them off.
    metricsPort:
      env.METRICS_PORT === undefined || env.METRICS_PORT === ''
        ? defaultConfig.metricsPort
        : int('METRICS_PORT', 0, 0, 65535),
    metricsHost: str('METRICS_HOST', defaultConfig.metricsHost),
  };
  if (config.metricsPort !== undefined && config.metricsPort !== 0 && config.metricsPort === config.port) {
    problems.push('METRICS_PORT: must differ from PORT (metrics are never served on the public port)');
  }
  // A revoking transaction stamps revoked_at before it commits; a reload must reach back past the
  // longest such transaction can stay open (idle-in-transaction ends it at 2× the statement
  // timeout, see open-database.ts) plus clock skew between instances, or it misses the row.
  const minOverlapMs = 2 * config.databaseStatementTimeoutMs + 5000;
  if (config.revocationReloadOverlap * 1000 < minOverlapMs) {
    problems.push(
      `REVOCATION_RELOAD_OVERLAP must be at least ${Math.ceil(minOverlapMs / 1000)} s ` +
        '(twice DATABASE_STATEMENT_TIMEOUT plus 5 s of clock skew)',
    );
  }
  if (config.refreshIdleTtl > config.sessionAbsoluteTtl) {
    problems.push('REFRESH_TOKEN_IDLE_TTL must not exceed SESSION_ABSOLUTE_TTL');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

const MILLIS = /^(\d{1,7})(ms|s)?$/;

/**
 * Reads a timeout such as `5s`, `750ms` or `5` (seconds), from 100 ms to 10 min: below that a
 * healthy database or client would trip it, above it a caller may as well have no timeout.
 */
function millis(env: Env, name: string, fallback: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const match = MILLIS.exec(raw);
  const ms = match ? Number(match[1]) * (match[2] === 'ms' ? 1 : 1000) : 0;
  if (ms < 100 || ms > 600_000) {
    problems.push(
      `${name}=${JSON.stringify(raw)}: expected a timeout such as 5s or 750ms (100 ms to 10 min)`,
    );
    return fallback;
  }
  return ms;
}

/** True when `value` is exactly an http(s) origin, `scheme://host[:port]`, as URL serializes it. */
function isHttpOrigin(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return /^https?:$/.test(url.protocol) && url.origin === value;
}

/**
 * `PUBLIC_URL`: an http(s) origin, without path, query or fragment (a trailing `/` is dropped).
 * Unset, it is `http://127.0.0.1:<PORT>`, right for the local quick start only.
 */
function parsePublicUrl(raw: string | undefined, port: number, problems: string[]): string {
  if (raw === undefined || raw === '') return `http://127.0.0.1:${port}`;
  const value = raw.endsWith('/') ? raw.slice(0, -1) : raw;
  // RFC 8414 §2: the issuer has no query or fragment; an origin keeps every derived URL simple.
  if (!isHttpOrigin(value)) {
    problems.push(
      `PUBLIC_URL=${JSON.stringify(raw)}: expected the external origin, like https://auth.example.com (no path)`,
    );
    return `http://127.0.0.1:${port}`;
  }
  return value;
}

function parseOrigins(raw: string | undefined, problems: string[]): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  const origins: string[] = [];
  for (const item of raw.split(',')) {
    const value = item.trim();
    if (value === '') continue;
    // An origin is exactly scheme://host[:port]; anything else could never match a browser's Origin.
    if (!isHttpOrigin(value)) {
      problems.push(`CORS_ORIGINS: ${JSON.stringify(value)} is not an origin like https://app.example.com`);
      continue;
    }
    origins.push(value);
  }
  return origins;
}

function parseTrustProxy(raw: string | undefined, problems: string[]): boolean | number | string[] {
  if (raw === undefined || raw === '' || ['0', 'false', 'no', 'off'].includes(raw.toLowerCase()))
    return false;
  if (['true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (/^[1-9]\d{0,2}$/.test(raw)) return Number(raw);
  const list = raw.split(',').map((part) => part.trim());
  if (list.every((part) => /^[0-9a-fA-F.:/]+$/.test(part))) return list;
  problems.push(`TRUST_PROXY=${JSON.stringify(raw)}: expected true, false, a hop count, or proxy IPs/CIDRs`);
  return false;
}
