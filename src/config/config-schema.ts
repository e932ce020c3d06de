import { availableParallelism } from 'node:os';
import { Type } from 'typebox';
import { ROLES } from '../accounts/roles.js';
import { REDIS_URL_PATTERN } from '../events/redis-url.js';
import { ExternalIssuersSchema } from '../resource-server/external-issuer-schema.js';
import {
  choiceSetting,
  flagSetting,
  integerSetting,
  millisecondsSetting,
  secondsSetting,
  setting,
  textSetting,
} from './setting.js';

/** The shortest secret accepted: 256 bits, as RFC 7518 §3.2 requires for HS256 keys. */
export const MIN_SECRET_BYTES = 32;

/**
 * The least estimated entropy (bits) a `SECRET_KEY` may have: its length times the Shannon entropy
 * of its bytes' frequencies (see {@link estimatedEntropyBits}). Not a proof of randomness (nothing
 * seen from inside is), but a floor under keys anyone can guess: 40 spaces, 32 zero bytes, `aaaa…`,
 * `passwordpassword…` estimate 0 to 22 bits (red-team 2026-12j E5). Random keys estimate ≈ 150
 * (32 random bytes), ≈ 250 (64 hex digits, `openssl rand -hex 32`) and 93 at the least of 20 000
 * keys of 32 hex digits (128 random bits), hence the margin.
 */
export const MIN_SECRET_ENTROPY_BITS = 80;

/**
 * {@link MIN_SECRET_ENTROPY_BITS}'s estimate of `bytes`. A key that repeats a shorter run of bytes
 * (`changemechangeme…`) is estimated on that run alone: the repetitions add nothing to guess.
 */
export function estimatedEntropyBits(bytes: Uint8Array): number {
  let period = bytes.byteLength;
  for (let candidate = 1; candidate <= bytes.byteLength / 2; candidate++) {
    if (bytes.every((byte, index) => byte === bytes[index % candidate])) {
      period = candidate;
      break;
    }
  }
  const unit = bytes.subarray(0, period);
  const counts = new Map<number, number>();
  for (const byte of unit) counts.set(byte, (counts.get(byte) ?? 0) + 1);
  let perByte = 0;
  for (const count of counts.values()) {
    const p = count / unit.byteLength;
    perByte -= p * Math.log2(p);
  }
  return perByte * unit.byteLength;
}

/**
 * The default of `PASSWORD_HASH_CONCURRENCY`: 2, or 1 when this process may run on one core only
 * (its CPU affinity, as `taskset` sets it; Node 20's `availableParallelism` does not read a
 * container's CPU quota). Two argon2id hashes on one core only take turns: none finishes sooner,
 * and each costs ≈ 25 % more CPU, as their 19 MiB working sets evict each other from the caches
 * (bench/README.md, "Issue 10, eighth round").
 */
export const DEFAULT_PASSWORD_HASH_CONCURRENCY = Math.min(2, availableParallelism());

const ORIGIN_EXAMPLE = 'like https://app.example.com (scheme://host[:port], no path)';

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

/** A list of exact http(s) origins, empty by default (`CORS_ORIGINS`, `CORS_CREDENTIALED_ORIGINS`). */
function originListSetting(env: string, description: string) {
  return setting(Type.Array(Type.Refine(Type.String(), isHttpOrigin)), {
    env,
    syntax: 'list',
    default: [],
    accepts: {
      env: `comma-separated origins ${ORIGIN_EXAMPLE}`,
      code: `an array of origins ${ORIGIN_EXAMPLE}`,
    },
    description,
  });
}

const DAY = 86400;

/**
 * Every Gatehouse setting, once: its `GatehouseConfig` property, environment variable, type,
 * bounds, default and description. `loadConfig` reads the environment through it,
 * `assertValidConfig` (called by `createGatehouse`) checks options passed in code against it, and
 * `npm run docs:settings` writes the README's settings table from it. A new setting is one entry
 * here; the order here is the table's order.
 */
export const gatehouseConfigSchema = Type.Object(
  {
    host: textSetting({ env: 'HOST', default: '127.0.0.1', description: 'interface to listen on' }),
    port: integerSetting({ env: 'PORT', minimum: 0, maximum: 65535, default: 8000, description: 'TCP port' }),
    publicUrl: setting(
      // RFC 8414 §2: the issuer has no query or fragment; an origin keeps every derived URL simple.
      Type.Refine(Type.String(), isHttpOrigin),
      {
        env: 'PUBLIC_URL',
        syntax: 'origin',
        default: 'http://localhost:8000',
        defaultText: '`http://localhost:<PORT>`',
        accepts: {
          env: 'the external origin, like https://auth.example.com (no path)',
          code: 'the external origin, like https://auth.example.com (no path, no trailing slash)',
        },
        description:
          "the server's external origin (`https://auth.example.com`, no path): default `JWT_ISSUER`, OpenAPI " +
          '`servers`, every absolute link in the OAuth metadata and mailed links, and the WebAuthn relying-party id ' +
          "(its host name: an IP address cannot be one, hence `localhost` by default); never taken from the request's " +
          '`Host` header. Set it in production',
      },
    ),
    dataDir: textSetting({
      env: 'DATA_DIR',
      default: './data',
      description: 'SQLite file, generated secret and signing keys',
    }),
    databaseUrl: textSetting({
      env: 'DATABASE_URL',
      pattern: '^(sqlite:|postgres(ql)?://)',
      accepts: 'sqlite:<path>, sqlite::memory: or postgres://user@host:port/db',
      defaultText: '`sqlite:<DATA_DIR>/gatehouse.db`',
      // A PostgreSQL URL may hold a password.
      sensitive: true,
      description: "where accounts, sessions and the apps' data are kept",
    }),
    secretKey: setting(
      Type.Refine(
        Type.Unsafe<Uint8Array>({}),
        (value) =>
          value instanceof Uint8Array &&
          value.byteLength >= MIN_SECRET_BYTES &&
          estimatedEntropyBits(value) >= MIN_SECRET_ENTROPY_BITS,
      ),
      {
        env: 'SECRET_KEY',
        syntax: 'bytes',
        sensitive: true,
        defaultText: 'generated into `DATA_DIR/secret.key`',
        accepts: {
          env: `at least ${MIN_SECRET_BYTES} random bytes (256 bits; one that repeats a few characters is refused)`,
          code: `a Uint8Array of at least ${MIN_SECRET_BYTES} random bytes (256 bits; one that repeats a few values is refused)`,
        },
        description:
          'HMAC secret for HS256 tokens and CSRF; start-up is refused when it is too short or plainly not random ' +
          `(under ${MIN_SECRET_ENTROPY_BITS} bits estimated from its bytes: one character or one short run repeated ` +
          'throughout). A phrase can pass and still be guessable: generate it (`openssl rand -base64 32`)',
      },
    ),
    // Key rotation (issue 11): the replaced secret, held to the same length rule as SECRET_KEY.
    secretKeyPrevious: setting(
      Type.Union([
        Type.Refine(
          Type.Unsafe<Uint8Array>({}),
          (value) => value instanceof Uint8Array && value.byteLength >= MIN_SECRET_BYTES,
        ),
        Type.Undefined(),
      ]),
      {
        env: 'SECRET_KEY_PREVIOUS',
        syntax: 'bytes',
        default: undefined,
        sensitive: true,
        accepts: {
          env: `at least ${MIN_SECRET_BYTES} bytes (256 bits)`,
          code: `a Uint8Array of at least ${MIN_SECRET_BYTES} bytes (256 bits), or undefined`,
        },
        description:
          'the secret `SECRET_KEY` replaced, while rotating it: what it signed or sealed (HS256 tokens, `mfa_token`s, passkey, form, CSRF and device tokens, refresh successors, app-sealed values) is still accepted; signing keys and authenticator (TOTP) secrets sealed under it are re-sealed under `SECRET_KEY` at start-up (see Keys and rotation)',
      },
    ),
    accessTokenTtl: secondsSetting({
      env: 'ACCESS_TOKEN_TTL',
      maximum: DAY,
      default: 900,
      description: 'access token lifetime',
    }),
    refreshIdleTtl: secondsSetting({
      env: 'REFRESH_TOKEN_IDLE_TTL',
      maximum: 366 * DAY,
      default: 7 * DAY,
      description: 'a refresh token (and a cookie session) dies after this long unused',
    }),
    sessionAbsoluteTtl: secondsSetting({
      env: 'SESSION_ABSOLUTE_TTL',
      maximum: 366 * DAY,
      default: 30 * DAY,
      description: 'every session ends this long after login',
    }),
    maxSessionsPerAccount: integerSetting({
      env: 'MAX_SESSIONS_PER_ACCOUNT',
      minimum: 1,
      maximum: 100_000,
      default: 100,
      description:
        "live sessions (cookie and bearer, apps' included) per account, and half of it per client (first-party or " +
        "app); a sign-in beyond its client's half ends that client's least recently used session, beyond the " +
        "account's the busiest client's (audited `session_displaced`), never the new one: an app minting sessions " +
        'pushes out only its own',
    }),
    tokenStrategy: choiceSetting({
      env: 'TOKEN_STRATEGY',
      values: ['jwt', 'database'],
      default: 'jwt',
      description: '`jwt` (self-contained) or `database` (opaque, looked up per request)',
    }),
    jwtAlgorithm: choiceSetting({
      env: 'JWT_ALG',
      // Only the configured algorithm is ever accepted. RS256 because RFC 9068 §4 requires it.
      values: ['HS256', 'EdDSA', 'ES256', 'RS256'],
      default: 'HS256',
      description:
        'JWT signing algorithm (RS256 keys are 2048-bit); asymmetric keys are generated into ' +
        '`DATA_DIR/signing-keys.json` and published at `/.well-known/jwks.json`',
    }),
    issuer: textSetting({
      env: 'JWT_ISSUER',
      default: 'http://localhost:8000',
      defaultText: '`PUBLIC_URL`',
      description:
        '`iss` of issued tokens and `issuer` of the OAuth metadata (keep it equal to `PUBLIC_URL` for RFC 8414 clients)',
    }),
    audience: textSetting({
      env: 'JWT_AUDIENCE',
      default: 'gatehouse-api',
      description: '`aud` of access tokens, checked on verify',
    }),
    corsOrigins: originListSetting(
      'CORS_ORIGINS',
      "exact origins allowed to read answers cross-origin without credentials (an OAuth app's SPA calling " +
        '`/token`, `/userinfo` or an API with its bearer token): no cookie session, no CSRF exemption',
    ),
    // Red-team 2026-12e J6: CORS_ORIGINS was credentialed and the CSRF guard's Origin allowlist, and
    // the README told operators to list an OAuth SPA there: a same-site SPA then read /auth/csrf and
    // acted as the web UI with the person's session, past consent and every first-party guard.
    // Acting as the web UI is now a setting of its own, named for what it grants.
    corsCredentialedOrigins: originListSetting(
      'CORS_CREDENTIALED_ORIGINS',
      "exact origins that act as the web UI with the person's cookie session: credentialed CORS and " +
        'accepted by the CSRF Origin check (first-party front ends only, never an OAuth app: they get the ' +
        "account's whole power, past consent and every first-party guard)",
    ),
    cookieSecure: flagSetting({
      env: 'COOKIE_SECURE',
      default: true,
      description:
        '`false` only for plain-HTTP setups other than localhost (logs a warning; drops the `__Host-` prefix)',
    }),
    // `true` (Fastify's "trust every hop") is refused: it takes the *leftmost* X-Forwarded-For
    // entry, which the client writes itself when the proxy appends (nginx, most load balancers),
    // so every per-address limit could be dodged by rotating the header or aimed at a victim's
    // address (red-team F7). A hop count or the proxies' addresses pick the rightmost untrusted
    // entry instead.
    trustProxy: setting(
      Type.Union([
        Type.Literal(false),
        Type.Integer({ minimum: 1, maximum: 999 }),
        Type.Array(Type.String({ pattern: '^[0-9a-fA-F.:/]+$' }), { minItems: 1 }),
      ]),
      {
        env: 'TRUST_PROXY',
        syntax: 'trust-proxy',
        default: false,
        accepts: {
          env: 'false, the number of proxies in front (e.g. 1), or their IPs/CIDRs (IPv4 /8, IPv6 /32 or narrower); not true',
          code: "false, a hop count from 1 to 999, or a list of proxy IPs/CIDRs (IPv4 /8, IPv6 /32 or narrower); not true or 0.0.0.0/0 (they trust the client's own X-Forwarded-For)",
        },
        description:
          'trust `X-Forwarded-For` from that many proxies (a hop count) or from those proxy IPs/CIDRs; `true` is refused because it lets a client pick its own address',
      },
    ),
    redisUrl: setting(Type.Union([Type.String({ pattern: REDIS_URL_PATTERN }), Type.Undefined()]), {
      env: 'REDIS_URL',
      syntax: 'text',
      default: undefined,
      // A Redis URL may hold a password.
      sensitive: true,
      accepts: {
        env: 'redis://host:port, rediss://host:port, unix:///path/redis.sock',
        code: 'a redis://, rediss://, unix:// or redis+unix:// URL, or undefined',
      },
      description:
        '`redis://host:6379`: share revocations, rate limits and app events across instances; a Unix socket: `unix:///run/redis.sock?db=0&password=…` (or `redis+unix://`)',
    }),
    redisCommandTimeoutMs: millisecondsSetting({
      env: 'REDIS_COMMAND_TIMEOUT',
      default: 2000,
      description:
        'before a Redis command counts as failed; the request then uses local state (see "When Redis is down")',
    }),
    redisConnectTimeoutMs: millisecondsSetting({
      env: 'REDIS_CONNECT_TIMEOUT',
      default: 3000,
      description:
        'before a Redis connection attempt is abandoned and retried; start-up waits at most this long for Redis',
    }),
    redisMaxReconnectDelayMs: millisecondsSetting({
      env: 'REDIS_MAX_RECONNECT_DELAY',
      default: 2000,
      description: 'Redis reconnects back off exponentially up to this, forever',
    }),
    rateLimitMaxKeys: integerSetting({
      env: 'RATE_LIMIT_MAX_KEYS',
      minimum: 1000,
      maximum: 10_000_000,
      default: 100_000,
      description:
        'keys each of the two in-memory counter stores holds at most (least recently used forgotten first): one ' +
        'for route limits and apps, one for the sign-in, second-factor and passkey lock-outs and the per-address ' +
        'mail caps, so no flood of route-limit keys evicts a lock-out; keys are SHA-256 hashes, 22 bytes',
    }),
    logLevel: choiceSetting({
      env: 'LOG_LEVEL',
      values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      description:
        'pino log level; `gatehouse serve` logs JSON lines to stdout, and a stdout that refuses writes (a full ' +
        'disk) never stalls it: up to 4 MiB of lines wait and are retried every second, later ones are dropped',
    }),
    bodyLimit: integerSetting({
      env: 'BODY_LIMIT',
      minimum: 1024,
      maximum: 10 * 1024 * 1024,
      default: 64 * 1024,
      description: 'largest request body in bytes',
    }),
    maxConnections: integerSetting({
      env: 'MAX_CONNECTIONS',
      minimum: 128,
      maximum: 1_000_000,
      // Measured on Node 20 (2026-12): an idle connection costs the server ≈ 7 KB of resident memory
      // and one descriptor; one whose headers are arriving up to Node's 16 KB header limit more, one
      // whose body is arriving up to BODY_LIMIT more (both only until the request timeout); an event
      // stream ≈ 45 KB. 8192 idle connections ≈ 60 MB; the stream and export caps must leave a tenth
      // of them for ordinary requests (checked by `gatehouse serve`).
      default: 8192,
      description:
        'connections `gatehouse serve` keeps open at once (Node `server.maxConnections`); a connection beyond it is closed as soon as it is accepted, without an answer. `MAX_STREAMS_TOTAL` plus `MAX_EXPORTS_TOTAL` must leave at least a tenth of it (and 64) to ordinary requests, so held-open streams and downloads cannot take every connection',
    }),
    maxConnectionsPerNetwork: integerSetting({
      env: 'MAX_CONNECTIONS_PER_NETWORK',
      minimum: 1,
      maximum: 1_000_000,
      // A browser opens at most 6 connections per origin, and one with our pages open keeps 2 or 3
      // (keep-alive for 72 s, an event stream): 512 leaves room for a NAT of ≈ 80 busy or ≈ 200
      // ordinary browsers, while 16 such networks are needed to fill MAX_CONNECTIONS instead of
      // one. Kept at 512 (2026-12): a bigger NAT first meets MAX_STREAMS_PER_IP (50) and
      // ROOM_READS_PER_MINUTE_PER_IP (600), and raising this alone would let 8 hosts, not 16,
      // hold every connection; a large shared-address audience is a deployment with a proxy.
      default: 512,
      description:
        'connections `gatehouse serve` keeps open at once from one client network (an IPv4 address, an IPv6 /48: all of one NAT); beyond it a new one is closed on accept, unanswered, and the log warns (`TOO_MANY_CONNECTIONS_FROM_NETWORK`, at most once a minute). Off when `TRUST_PROXY` is set (the proxy limits its clients). For a large NAT see "Faults and timeouts" on how to size it up',
    }),
    loginMaxFailuresPerAccount: integerSetting({
      env: 'LOGIN_MAX_FAILURES_PER_ACCOUNT',
      minimum: 1,
      maximum: 1000,
      default: 5,
      description: 'failed logins from untrusted clients per account per window before those clients get 429',
    }),
    loginMaxFailuresPerIp: integerSetting({
      env: 'LOGIN_MAX_FAILURES_PER_IP',
      minimum: 1,
      maximum: 100_000,
      default: 50,
      description: 'failed logins from untrusted clients per client IP per window before 429',
    }),
    loginFailureWindow: secondsSetting({
      env: 'LOGIN_FAILURE_WINDOW',
      maximum: DAY,
      default: 900,
      description: 'the window of the login limits; they lift on their own',
    }),
    passwordHashConcurrency: integerSetting({
      env: 'PASSWORD_HASH_CONCURRENCY',
      minimum: 1,
      maximum: 64,
      default: DEFAULT_PASSWORD_HASH_CONCURRENCY,
      defaultText: '`2`, or `1` on one core',
      description:
        'argon2id hashes computed at once (more wait); above the cores the process may use, hashes only take turns and each costs more CPU',
    }),
    databaseConnectTimeoutMs: millisecondsSetting({
      env: 'DATABASE_CONNECT_TIMEOUT',
      default: 5000,
      description:
        'wait this long for a database connection (new, or a free one in the pool), then answer 503 ' +
        '`DATABASE_UNAVAILABLE`',
    }),
    databaseStatementTimeoutMs: millisecondsSetting({
      env: 'DATABASE_STATEMENT_TIMEOUT',
      default: 5000,
      description:
        'longest SQL statement (PostgreSQL `statement_timeout`; the client gives up 1 s later if the server is ' +
        'silent; on SQLite, the longest wait for a write lock held by another process, without blocking the server); ' +
        'an idle transaction is ended after twice this',
    }),
    shutdownGracePeriodMs: millisecondsSetting({
      env: 'SHUTDOWN_GRACE_PERIOD',
      default: 5000,
      description:
        'after SIGTERM/SIGINT, in-flight requests get this long before their connections are closed; then queued ' +
        'mail gets up to this long (at most 3 s) to be sent',
    }),
    revocationReloadInterval: secondsSetting({
      env: 'REVOCATION_RELOAD_INTERVAL',
      maximum: 3600,
      default: 5,
      description:
        'how often each instance re-reads recent revocations from the database: the bound on a lost revocation ' +
        'broadcast',
    }),
    revocationReloadOverlap: secondsSetting({
      env: 'REVOCATION_RELOAD_OVERLAP',
      maximum: 3600,
      default: 60,
      description:
        'how far back each reload reaches before the previous one; at least twice `DATABASE_STATEMENT_TIMEOUT` ' +
        'plus 5 s of clock skew',
    }),
    refreshReuseInterval: secondsSetting({
      env: 'REFRESH_REUSE_INTERVAL',
      minimum: 0,
      maximum: 300,
      default: 10,
      description:
        'how long a just-spent refresh token may be retried for the same successor; `0` = strict rotation ' +
        '(see below)',
    }),
    registrationsPerHour: integerSetting({
      env: 'REGISTRATIONS_PER_HOUR',
      minimum: 1,
      maximum: 1_000_000,
      default: 20,
      description:
        'account sign-ups per client IP (IPv6: per /64, and 4× this per /48) per hour (429 `TOO_MANY_REQUESTS` with `Retry-After` beyond)',
    }),
    deviceTokenTtl: secondsSetting({
      env: 'DEVICE_TOKEN_TTL',
      maximum: 366 * DAY,
      default: 90 * DAY,
      description: 'lifetime of a device token (see [Brute-force protection](#brute-force-protection))',
    }),
    loginMaxFailuresPerDevice: integerSetting({
      env: 'LOGIN_MAX_FAILURES_PER_DEVICE',
      minimum: 1,
      maximum: 1000,
      default: 5,
      description: 'wrong passwords per trusted device per window; then that client counts as untrusted',
    }),
    loginMaxFailuresGlobal: integerSetting({
      env: 'LOGIN_MAX_FAILURES_GLOBAL',
      minimum: 1,
      maximum: 100_000_000,
      default: 10_000,
      description:
        'wrong passwords from untrusted clients, server-wide, per window; beyond it (the breaker is open) each client address gets 3 failures per window instead of LOGIN_MAX_FAILURES_PER_IP, and each IPv6 /48 30',
    }),
    loginMaxSuccessesPerAccount: integerSetting({
      env: 'LOGIN_MAX_SUCCESSES_PER_ACCOUNT',
      minimum: 1,
      maximum: 1_000_000,
      default: 60,
      description:
        'successful logins per account per window, from any client (only a right password counts, so it cannot ' +
        'be aimed at an account); beyond it 429 before any hash. On an account with an authenticator app, an ' +
        "untrusted client's right password (it stops at the second factor) counts against an allowance of the " +
        "same size that only untrusted clients wait on, so a thief of the password cannot keep the owner's " +
        'trusted devices out. The same number is also the authorization codes an account may exchange per app and ' +
        'window, after which `/authorize` answers `temporarily_unavailable` for that app: each exchange writes an audit ' +
        'row and hashes nothing',
    }),
    stepUpMaxAge: secondsSetting({
      env: 'STEP_UP_MAX_AGE',
      minimum: 10,
      maximum: DAY,
      default: 300,
      description:
        'a sensitive change (password, second factors) needs an authentication this recent, else 401 ' +
        '`insufficient_user_authentication` (RFC 9470): re-authenticate at `POST /auth/reauthenticate`',
    }),
    mfaTokenTtl: secondsSetting({
      env: 'MFA_TOKEN_TTL',
      minimum: 30,
      maximum: 3600,
      default: 300,
      description:
        'lifetime of the `mfa_token` a right password gets when the account has a second factor (see ' +
        '[Second factors](#second-factors-totp-and-recovery-codes))',
    }),
    mfaMaxFailuresPerToken: integerSetting({
      env: 'MFA_MAX_FAILURES_PER_TOKEN',
      minimum: 1,
      maximum: 100,
      default: 5,
      description:
        'wrong second-factor codes per `mfa_token`; then that token is dead and the password is asked again',
    }),
    mfaMaxFailuresPerAccount: integerSetting({
      env: 'MFA_MAX_FAILURES_PER_ACCOUNT',
      minimum: 1,
      maximum: 10_000,
      default: 10,
      description:
        'wrong second-factor codes per account per `LOGIN_FAILURE_WINDOW` from clients without a device token; ' +
        'trusted devices count on their own (`LOGIN_MAX_FAILURES_PER_DEVICE`)',
    }),
    // NIST SP 800-63B §5.2.2: "no more than 100" consecutive failed attempts per account, hence
    // the maximum.
    mfaMaxConsecutiveFailures: integerSetting({
      env: 'MFA_MAX_CONSECUTIVE_FAILURES',
      minimum: 1,
      maximum: 100,
      default: 100,
      description:
        'wrong second-factor codes in a row per account, from any client, kept in the database; then codes ' +
        'from clients without a device token and from signed-in sessions are refused unchecked ' +
        '(`SECOND_FACTOR_LOCKED`; recovery codes are still checked) until an accepted code from a trusted device, ' +
        'a recovery code, a passkey sign-in, a password ' +
        'change by a session that proved its second factor, or an admin MFA reset (a password reset by mail ' +
        'does not lift it), and the owner is mailed once',
    }),
    passwordHashReservedSlots: integerSetting({
      env: 'PASSWORD_HASH_RESERVED_SLOTS',
      minimum: 0,
      maximum: 64,
      default: 1,
      description: 'argon2id slots beyond `PASSWORD_HASH_CONCURRENCY` kept for trusted devices',
    }),
    auditRetention: secondsSetting({
      env: 'AUDIT_RETENTION',
      maximum: 10 * 366 * DAY,
      default: 90 * DAY,
      description: 'audit entries and failed-login tallies older than this are deleted hourly',
    }),
    passwordMinLength: integerSetting({
      env: 'PASSWORD_MIN_LENGTH',
      // NIST SP 800-63B-4 §3.1.1.2: never below 8; above 64 would refuse passwords every verifier must accept.
      minimum: 8,
      maximum: 64,
      default: 15,
      description:
        'shortest accepted password (characters after NFKC); 15 is NIST SP 800-63B-4 §3.1.1.2 for accounts whose ' +
        'password is their only factor',
    }),
    requireMfaForRoles: setting(Type.Array(Type.Enum([...ROLES])), {
      env: 'REQUIRE_MFA_FOR_ROLES',
      syntax: 'list',
      default: [],
      defaultText: '_(none)_',
      accepts: {
        env: 'comma-separated roles: user, admin, super_admin',
        code: "an array of roles ('user', 'admin', 'super_admin')",
      },
      description:
        "roles that need a second factor: an account with one of them gets only the `user` role's scopes from a " +
        'sign-in that did not prove two factors (a password alone), so it must set up TOTP (then sign in with it) ' +
        'or sign in with a passkey before it can use its role; e.g. `admin,super_admin`',
    }),
    passwordGrant: flagSetting({
      env: 'PASSWORD_GRANT',
      default: true,
      description:
        'the OAuth password grant at `/token`, for the first-party web UI, Swagger UI and scripts; `false` turns it ' +
        'off (`unsupported_grant_type`), as RFC 9700 §2.4 says it MUST NOT be used. Registered OAuth clients are ' +
        'refused it either way (`unauthorized_client`)',
    }),
    metricsPort: setting(Type.Union([Type.Integer({ minimum: 0, maximum: 65535 }), Type.Undefined()]), {
      env: 'METRICS_PORT',
      syntax: 'integer',
      default: undefined,
      defaultText: '_(none: off)_',
      accepts: { env: 'an integer from 0 to 65535', code: 'an integer from 0 to 65535, or undefined (off)' },
      description:
        'port of a separate Prometheus `GET /metrics` listener (never the public port); `0` picks a free port',
    }),
    metricsHost: textSetting({
      env: 'METRICS_HOST',
      default: '127.0.0.1',
      description: 'interface of the metrics listener; keep it private (it reveals traffic)',
    }),
    metricsAllowedHosts: setting(
      Type.Array(Type.String({ pattern: '^[a-z0-9_](?:[a-z0-9_.-]{0,251}[a-z0-9_])?\\.?$' })),
      {
        env: 'METRICS_ALLOWED_HOSTS',
        syntax: 'list',
        default: [],
        defaultText: '_(none)_',
        accepts: {
          env: 'comma-separated lower-case host names, e.g. gatehouse.monitoring.svc,gatehouse_app',
          code: 'an array of lower-case host names',
        },
        description:
          'host names a scraper may send in `Host` to the metrics listener, besides IP addresses, `localhost` and ' +
          '`METRICS_HOST` (always accepted; a trailing dot is ignored); any other name gets 421 (logged), so a web ' +
          'page cannot read the metrics by DNS rebinding',
      },
    ),
    smtpUrl: setting(Type.Union([Type.String({ pattern: '^smtps?://' }), Type.Undefined()]), {
      env: 'SMTP_URL',
      syntax: 'text',
      default: undefined,
      defaultText: '_(none: mail goes to `DATA_DIR/outbox/`)_',
      // An SMTP URL may hold a password.
      sensitive: true,
      accepts: {
        env: 'smtp://user:pass@host:587 or smtps://host:465',
        code: 'an smtp:// or smtps:// URL, or undefined (file outbox)',
      },
      description:
        'where mail is sent (nodemailer SMTP); without it every message is written to `DATA_DIR/outbox/` (mode ' +
        '0600) and start-up says so',
    }),
    mailFrom: textSetting({
      env: 'MAIL_FROM',
      default: 'Gatehouse <no-reply@localhost>',
      // One mailbox (RFC 5322 §3.4): an address, or a display name (plain or quoted) and an address
      // in angle brackets; no line break, list separator or second address. Unchecked, a value with
      // CR/LF or a comma made nodemailer send as another address than the operator meant
      // (red-team 2026-12j E6).
      pattern: String.raw`^(?:(?:"[^"\\\r\n]*" ?|[^"<>\r\n,;:@\\]*)<[^<>\s@",;]+@[^<>\s@",;]+>|[^<>\s@",;]+@[^<>\s@",;]+)$`,
      accepts:
        'one mailbox: address@example.com, Name <address@example.com> or "Name, Inc." <address@example.com>',
      description: '`From` of every message (`Name <address>`)',
    }),
    mailOutboxHttp: flagSetting({
      env: 'MAIL_OUTBOX_HTTP',
      default: false,
      description:
        'serve the file outbox at `GET /admin/outbox` to super_admins only (for demos and tests); mail is ' +
        'otherwise never readable over HTTP',
    }),
    mailTemplatesDir: setting(Type.Union([Type.String({ minLength: 1 }), Type.Undefined()]), {
      env: 'MAIL_TEMPLATES_DIR',
      syntax: 'text',
      default: undefined,
      accepts: { env: 'a directory', code: 'a directory path, or undefined (built-in templates)' },
      description:
        'a directory of templates that replace the built-in ones: `<kind>.subject.txt`, `<kind>.txt`, `<kind>.html` ' +
        '(see [Mail](#mail)); read once at start-up',
    }),
    mailSendTimeoutMs: millisecondsSetting({
      env: 'MAIL_SEND_TIMEOUT',
      default: 10_000,
      description: 'one SMTP delivery attempt (connect, greeting, sending) gives up after this long',
    }),
    mailQueueMax: integerSetting({
      env: 'MAIL_QUEUE_MAX',
      minimum: 1,
      maximum: 100_000,
      default: 1000,
      description:
        'messages waiting for delivery or a retry, per instance; beyond it new mail is dropped with a warning ' +
        '(the request that caused it still succeeds)',
    }),
    requireVerifiedEmail: flagSetting({
      env: 'REQUIRE_VERIFIED_EMAIL',
      default: false,
      description:
        '`/token` and cookie login refuse accounts whose email is not verified, with the answer a wrong password ' +
        'gets (so a stranger who signed up with an address cannot tell whether it had an account); ' +
        '`/auth/register` then answers 202 whether or not the address has an account',
    }),
    emailVerificationTtl: secondsSetting({
      env: 'EMAIL_VERIFICATION_TTL',
      minimum: 60,
      maximum: 7 * DAY,
      default: DAY,
      description: 'lifetime of an email verification or email change link',
    }),
    passwordResetTtl: secondsSetting({
      env: 'PASSWORD_RESET_TTL',
      minimum: 60,
      // OWASP Forgot Password Cheat Sheet: reset tokens expire after a short time.
      maximum: 1800,
      default: 1800,
      description: 'lifetime of a password reset link (at most 30 minutes)',
    }),
    accountMailsPerHour: integerSetting({
      env: 'ACCOUNT_MAILS_PER_HOUR',
      minimum: 1,
      maximum: 1000,
      default: 3,
      description:
        'reset, verification and "you already have an account" mails per address, hour and requesting client ' +
        '(IP, IPv6 /64); an address gets at most 10 times this from strangers together and as much from its owner ' +
        '(device token, live-session address, signed in) and admins; beyond it, silently dropped (a 429 would ' +
        'reveal accounts)',
    }),
    externalIssuers: setting(ExternalIssuersSchema, {
      env: 'EXTERNAL_ISSUERS',
      syntax: 'json',
      default: [],
      accepts: {
        env: 'a JSON array of issuers, like [{"issuer":"https://…","audience":"…"}]',
        code: 'an array of at most 20 distinct ExternalIssuer objects ({ issuer, audience, typ?, algorithms?, scopeClaim?, jwksUri?, … })',
      },
      description:
        "providers whose access tokens routes may accept beside Gatehouse's own (resource-server mode): only routes " +
        "that opt in (`app.auth.require({ allow: ['external'] })`) do, never the account, admin or audit routes",
    }),
    externalIssuerTimeoutMs: millisecondsSetting({
      env: 'EXTERNAL_ISSUER_TIMEOUT',
      default: 5000,
      description:
        "a fetch of an external issuer's discovery document or key set gives up after this long (the request waiting " +
        'for it then answers 503 `EXTERNAL_ISSUER_UNAVAILABLE`)',
    }),
    clientCredentialsPerMinute: integerSetting({
      env: 'CLIENT_CREDENTIALS_PER_MINUTE',
      minimum: 1,
      maximum: 100_000,
      default: 60,
      description:
        '`client_credentials` tokens one OAuth client may get per minute (counted after it authenticated, so ' +
        'nobody else can use up its allowance; 429 `temporarily_unavailable` beyond)',
    }),
    introspectionsPerMinute: integerSetting({
      env: 'INTROSPECTIONS_PER_MINUTE',
      minimum: 1,
      maximum: 1_000_000,
      default: 6000,
      description:
        '`/introspect` requests one OAuth client may make per minute (counted after it authenticated, so nobody ' +
        'else can use up its allowance; 429 `temporarily_unavailable` beyond): cache answers until `exp`',
    }),
    introspectionFailuresPerIp: integerSetting({
      env: 'INTROSPECTION_FAILURES_PER_IP',
      minimum: 1,
      maximum: 100_000,
      default: 30,
      description:
        'failed client authentications at `/introspect` per client IP (IPv6: per /64) per minute; beyond, every ' +
        '`/introspect` request from the address gets 429 `temporarily_unavailable` until the minute ends',
    }),
    revocationsPerMinute: integerSetting({
      env: 'REVOCATIONS_PER_MINUTE',
      minimum: 1,
      maximum: 1_000_000,
      default: 6000,
      description:
        '`/revoke` requests one confidential OAuth client may make per minute (counted after it authenticated, so ' +
        'nobody else can use up its allowance; 429 `temporarily_unavailable` beyond)',
    }),
    revocationFailuresPerIp: integerSetting({
      env: 'REVOCATION_FAILURES_PER_IP',
      minimum: 1,
      maximum: 100_000,
      default: 30,
      description:
        'failed client authentications at `/revoke` per client IP (IPv6: per /64) per minute; beyond, every ' +
        '`/revoke` request from the address gets 429 `temporarily_unavailable` until the minute ends',
    }),
    clientCredentialsPerMinutePerIp: integerSetting({
      env: 'CLIENT_CREDENTIALS_PER_MINUTE_PER_IP',
      minimum: 1,
      maximum: 100_000,
      default: 120,
      description:
        'failed client authentications at `/token` (every grant that names a client) per client IP (IPv6: per /64) ' +
        'per minute; ' +
        'beyond, the address gets 429 `temporarily_unavailable` until the minute ends (successes never count)',
    }),
    forgotPasswordPerIpPerHour: integerSetting({
      env: 'FORGOT_PASSWORD_PER_IP_PER_HOUR',
      minimum: 1,
      maximum: 1_000_000,
      default: 20,
      description:
        '`/auth/forgot-password` requests per client IP (IPv6: per /64, and 4× this per /48) per hour (429 `TOO_MANY_REQUESTS` beyond)',
    }),
  },
  { additionalProperties: false },
);
