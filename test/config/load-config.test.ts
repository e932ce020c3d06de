import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootstrapSecret } from '../../src/config/bootstrap-secret.js';
import { loadConfig, readEnvironment } from '../../src/config/load-config.js';
import { resolveConfig } from '../../src/config/resolve-config.js';
import { ConfigError } from '../../src/errors.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

/** `PASSWORD_HASH_CONCURRENCY`'s default in a fresh process limited to `cpus` by `taskset`. */
function defaultHashConcurrencyOn(cpus: string): number {
  const schema = join(import.meta.dirname, '..', '..', 'dist', 'src', 'config', 'config-schema.js');
  const script = `import(${JSON.stringify(schema)}).then((m) => console.log(m.DEFAULT_PASSWORD_HASH_CONCURRENCY))`;
  return Number(execFileSync('taskset', ['-c', cpus, process.execPath, '-e', script], { encoding: 'utf8' }));
}

describe('loadConfig', () => {
  // Red-team 2026-12k P4: an SMTP password holding an unencoded / passed the scheme check, and
  // nodemailer's URL parser then printed the whole URL, password included, to stderr.
  it('refuses an SMTP, PostgreSQL or Redis URL the URL parser refuses, without echoing it', () => {
    const cases = {
      SMTP_URL: 'smtp://user:ab/cdSmtpLeak8@127.0.0.1:18940',
      DATABASE_URL: 'postgres://app:pw@db.internal:99999/gatehouse',
      REDIS_URL: 'redis://:s3cret#x@cache.internal:6379',
    };
    for (const [name, value] of Object.entries(cases)) {
      const problems = problemsOf({ [name]: value });
      expect(problems, name).toEqual([expect.stringMatching(new RegExp(`^${name}: is not a valid URL`))]);
      expect(problems.join('\n')).not.toMatch(/SmtpLeak8|:pw@|s3cret/);
    }
    expect(problemsOf({ SMTP_URL: 'smtp://user:ab%2FcdSmtpLeak8@127.0.0.1:18940' })).toEqual([]);
    expect(problemsOf({ SMTP_URL: 'smtp://' })).toEqual([
      expect.stringMatching(/^SMTP_URL: is not a valid URL/),
    ]);
  });

  it('hashes one password at a time when the process may use one core only', () => {
    // Two hashes on one core only take turns, each dearer (issue 10, bench/README.md).
    expect(defaultHashConcurrencyOn('0')).toBe(1);
    expect(loadConfig({ PASSWORD_HASH_CONCURRENCY: '3' }).passwordHashConcurrency).toBe(3);
  });

  it.runIf(availableParallelism() >= 2)('hashes two passwords at a time given two cores or more', () => {
    expect(defaultHashConcurrencyOn('0,1')).toBe(2);
    expect(loadConfig({}).passwordHashConcurrency).toBe(2);
  });

  it('has production defaults with no environment at all', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8000,
      dataDir: './data',
      databaseUrl: 'sqlite:data/gatehouse.db',
      tokenStrategy: 'jwt',
      jwtAlgorithm: 'HS256',
      cookieSecure: true,
      trustProxy: false,
      corsOrigins: [],
      corsCredentialedOrigins: [],
      accessTokenTtl: 900,
      refreshIdleTtl: 7 * 86400,
      sessionAbsoluteTtl: 30 * 86400,
    });
    expect(config.secretKey).toBeUndefined();
  });

  it('reads durations with units and lists', () => {
    const config = loadConfig({
      ACCESS_TOKEN_TTL: '5m',
      REFRESH_TOKEN_IDLE_TTL: '2d',
      CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
      CORS_CREDENTIALED_ORIGINS: 'https://ui.example.com',
      TRUST_PROXY: '1',
      DATABASE_URL: 'postgres://u@h:5432/db',
    });
    expect(config.accessTokenTtl).toBe(300);
    expect(config.refreshIdleTtl).toBe(172800);
    expect(config.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:5173']);
    expect(config.corsCredentialedOrigins).toEqual(['https://ui.example.com']);
    expect(config.trustProxy).toBe(1);
  });

  it('takes proxy addresses and ranges: IPv4 down to /8, IPv6 down to /32 (unique-local /8), mapped IPv4', () => {
    const config = loadConfig({
      TRUST_PROXY: '10.0.0.0/8, 192.0.2.7, fd00::/8, 2001:db8::/32, ::ffff:10.0.0.0/104',
    });
    expect(config.trustProxy).toEqual([
      '10.0.0.0/8',
      '192.0.2.7',
      'fd00::/8',
      '2001:db8::/32',
      '::ffff:10.0.0.0/104',
    ]);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ TRUST_PROXY: 'true' }, 'TRUST_PROXY'],
    // A range that wide trusts every client's own X-Forwarded-For, as `true` would.
    [{ TRUST_PROXY: '0.0.0.0/0' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.1, ::/0' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '128.0.0.0/1' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: 'abc' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '10.0.0.0/33' }, 'TRUST_PROXY'],
    // IPv4-mapped: proxy-addr matches every IPv4 peer against ::ffff:0.0.0.0/96.
    [{ TRUST_PROXY: '::ffff:0.0.0.0/96' }, 'TRUST_PROXY'],
    [{ TRUST_PROXY: '::ffff:0:0/97' }, 'TRUST_PROXY'],
    // A public IPv6 /8 is a large part of the internet.
    [{ TRUST_PROXY: '2a00::/8' }, 'TRUST_PROXY'],
    [{ PORT: '70000' }, 'PORT'],
    [{ TOKEN_STRATEGY: 'magic' }, 'TOKEN_STRATEGY'],
    [{ JWT_ALG: 'none' }, 'JWT_ALG'],
    [{ JWT_ALG: 'RS512' }, 'JWT_ALG'],
    [{ COOKIE_SECURE: 'maybe' }, 'COOKIE_SECURE'],
    [{ ACCESS_TOKEN_TTL: '-5' }, 'ACCESS_TOKEN_TTL'],
    [{ CORS_ORIGINS: 'https://app.example.com/path' }, 'CORS_ORIGINS'],
    [{ CORS_ORIGINS: '*' }, 'CORS_ORIGINS'],
    [{ CORS_CREDENTIALED_ORIGINS: '*' }, 'CORS_CREDENTIALED_ORIGINS'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ SECRET_KEY: 'too-short' }, 'SECRET_KEY'],
    [{ PASSWORD_MIN_LENGTH: '7' }, 'PASSWORD_MIN_LENGTH'],
    [{ PASSWORD_MIN_LENGTH: '0' }, 'PASSWORD_MIN_LENGTH'],
    [{ PASSWORD_MIN_LENGTH: '65' }, 'PASSWORD_MIN_LENGTH'],
  ])('refuses %o naming the variable', (env, name) => {
    const problems = problemsOf(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(name);
  });

  it('reads the revocation reload and refresh reuse settings; a reuse interval of 0 means strict', () => {
    expect(loadConfig({})).toMatchObject({
      revocationReloadInterval: 5,
      revocationReloadOverlap: 60,
      refreshReuseInterval: 10,
    });
    expect(
      loadConfig({
        REVOCATION_RELOAD_INTERVAL: '2',
        REVOCATION_RELOAD_OVERLAP: '2m',
        REFRESH_REUSE_INTERVAL: '0',
      }),
    ).toMatchObject({ revocationReloadInterval: 2, revocationReloadOverlap: 120, refreshReuseInterval: 0 });
    expect(problemsOf({ REFRESH_REUSE_INTERVAL: '1h' })[0]).toContain('REFRESH_REUSE_INTERVAL');
    expect(problemsOf({ REVOCATION_RELOAD_INTERVAL: '0' })[0]).toContain('REVOCATION_RELOAD_INTERVAL');
  });

  it('asks 15-character passwords by default and takes PASSWORD_MIN_LENGTH from 8 up', () => {
    expect(loadConfig({}).passwordMinLength).toBe(15);
    expect(loadConfig({ PASSWORD_MIN_LENGTH: '8' }).passwordMinLength).toBe(8);
  });

  it('keeps metrics off unless METRICS_PORT is set, and never on the public port', () => {
    expect(loadConfig({}).metricsPort).toBeUndefined();
    expect(loadConfig({ METRICS_PORT: '9464' })).toMatchObject({
      metricsPort: 9464,
      metricsHost: '127.0.0.1',
    });
    expect(problemsOf({ PORT: '8000', METRICS_PORT: '8000' })).toEqual([
      expect.stringContaining('METRICS_PORT'),
    ]);
    expect(problemsOf({ METRICS_PORT: 'x' })).toEqual([expect.stringContaining('METRICS_PORT')]);
  });

  it('accepts a 32-byte SECRET_KEY', () => {
    // 32 hex digits (`openssl rand -hex 16`): 128 random bits, the least that looks random enough.
    expect(loadConfig({ SECRET_KEY: '9f86d081884c7d659a2feaa0c55ad015' }).secretKey?.byteLength).toBe(32);
    expect(loadConfig({ SECRET_KEY: randomBytes(32).toString('base64url') }).secretKey?.byteLength).toBe(43);
  });

  // Red-team 2026-12j E5: only the length was checked, so a key anyone can guess signed every token.
  it.each([
    ['40 spaces', ' '.repeat(40)],
    ['a repeated character', 'a'.repeat(42)],
    ['two characters alternating', 'ab'.repeat(20)],
    ['a word repeated', 'password'.repeat(4)],
    ['changeme repeated', 'changeme'.repeat(5)],
  ])('refuses a SECRET_KEY that is plainly not random: %s', (_what, key) => {
    expect(problemsOf({ SECRET_KEY: key })).toEqual([expect.stringContaining('SECRET_KEY')]);
  });

  it('reads .env under the real environment', () => {
    const dir = tempDir('gh-env-');
    writeFileSync(join(dir, '.env'), 'PORT=9001\nHOST=0.0.0.0\n');
    const env = readEnvironment({ HOST: '127.0.0.2' }, dir);
    expect(loadConfig(env)).toMatchObject({ port: 9001, host: '127.0.0.2' });
  });
});

describe('secret bootstrap', () => {
  it('generates 256 bits once, mode 0600, and reuses them', () => {
    const dir = join(tempDir('gh-secret-'), 'data');
    const first = bootstrapSecret(dir);
    expect(first.created).toBe(true);
    expect(first.key.byteLength).toBe(32);
    expect(statSync(first.path).mode & 0o777).toBe(0o600);
    const second = bootstrapSecret(dir);
    expect(second.created).toBe(false);
    expect(Buffer.from(second.key).equals(Buffer.from(first.key))).toBe(true);
  });

  // Newcomer review 2026-12-06: HOST=0.0.0.0 without PUBLIC_URL, opened from another machine over
  // plain http, answered every sign-in of the web UI with "The CSRF token is invalid": the
  // browser had dropped the Secure cookies, and nothing at start-up said so.
  it('warns when browsers elsewhere would drop the web UI cookies: HOST beyond this machine, or plain http', () => {
    const dir = join(tempDir('gh-secret-'), 'data');
    const warnings = (env: Record<string, string>) =>
      resolveConfig({ DATA_DIR: dir, ...env })
        .notices.filter((notice) => notice.level === 'warn')
        .map((notice) => notice.message);
    expect(warnings({ HOST: '0.0.0.0' })).toEqual([
      expect.stringMatching(/^HOST=0\.0\.0\.0 listens beyond this machine, but PUBLIC_URL is not set/),
    ]);
    expect(warnings({ PUBLIC_URL: 'http://192.0.2.2:8000' })).toEqual([
      expect.stringMatching(/^PUBLIC_URL=http:\/\/192\.0\.2\.2:8000 is plain http .*COOKIE_SECURE=false/),
    ]);
    expect(warnings({ HOST: '0.0.0.0', PUBLIC_URL: 'https://auth.example.com' })).toEqual([]);
    expect(warnings({ HOST: '127.0.0.1' })).toEqual([]);
    expect(warnings({ HOST: 'LOCALHOST' })).toEqual([]);
    expect(warnings({ HOST: '::ffff:127.0.0.1' })).toEqual([]);
    expect(warnings({ PUBLIC_URL: 'http://localhost:8000' })).toEqual([]);
    expect(warnings({ PUBLIC_URL: 'http://127.0.0.1:8000' })).toEqual([]);
    expect(warnings({ PUBLIC_URL: 'http://192.0.2.2:8000', COOKIE_SECURE: 'false' })).toEqual([
      expect.stringMatching(/^COOKIE_SECURE=false/),
    ]);
  });

  it('says what it did', () => {
    const dir = join(tempDir('gh-secret-'), 'data');
    const { config, notices } = resolveConfig({ DATA_DIR: dir, COOKIE_SECURE: 'false' });
    expect(config.secretKey.byteLength).toBe(32);
    expect(notices.map((n) => n.message).join('\n')).toMatch(/generated 256 random bits/);
    expect(notices.some((n) => n.level === 'warn' && n.message.includes('COOKIE_SECURE=false'))).toBe(true);
  });

  // Red-team 2026-12q Q2: instances sharing a PostgreSQL database each generated a secret of their
  // own in their own DATA_DIR, told at info level only; under HS256 every token one issued was
  // refused by the others (and CSRF, mfa and device tokens, TOTP secrets likewise), and nothing
  // said why. `SECRET_KEY=` set but empty (a template's `${SECRET_KEY}` left unexpanded) is that
  // mistake exactly, so it is refused there.
  it('refuses an empty SECRET_KEY with PostgreSQL, and warns when a secret is generated for one', () => {
    const dataDir = join(tempDir('gh-secret-'), 'data');
    const postgres = { DATA_DIR: dataDir, DATABASE_URL: 'postgres://app@db.internal:5432/gatehouse' };
    let problems: string[] = [];
    try {
      resolveConfig({ ...postgres, SECRET_KEY: '' });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems = error.problems;
    }
    expect(problems).toEqual([
      expect.stringMatching(
        /^SECRET_KEY is set but empty: with PostgreSQL every instance must share one secret/,
      ),
    ]);
    expect(existsSync(join(dataDir, 'secret.key'))).toBe(false);

    const { notices } = resolveConfig(postgres);
    expect(notices).toContainEqual({
      level: 'warn',
      message: expect.stringMatching(
        /^SECRET_KEY is not set: generated .* every other instance on this PostgreSQL database must use the same secret/,
      ),
    });
    // SQLite keeps the quick start: no secret to set, empty or not, and only an info line.
    const sqlite = resolveConfig({ DATA_DIR: join(tempDir('gh-secret-'), 'data'), SECRET_KEY: '' });
    expect(sqlite.notices.filter((n) => n.message.startsWith('SECRET_KEY'))).toEqual([
      { level: 'info', message: expect.stringMatching(/generated 256 random bits/) },
    ]);
  });
});

describe('fault settings', () => {
  it('defaults every timeout to a few seconds', () => {
    expect(loadConfig({})).toMatchObject({
      databaseConnectTimeoutMs: 5000,
      databaseStatementTimeoutMs: 5000,
      shutdownGracePeriodMs: 5000,
    });
  });

  it('reads timeouts in seconds or milliseconds', () => {
    expect(
      loadConfig({
        DATABASE_CONNECT_TIMEOUT: '2s',
        DATABASE_STATEMENT_TIMEOUT: '750ms',
        SHUTDOWN_GRACE_PERIOD: '3',
      }),
    ).toMatchObject({
      databaseConnectTimeoutMs: 2000,
      databaseStatementTimeoutMs: 750,
      shutdownGracePeriodMs: 3000,
    });
  });
});

describe('loadConfig: Redis timeouts and limiter bounds', () => {
  it('defaults to a few seconds and 100 000 keys', () => {
    expect(loadConfig({})).toMatchObject({
      redisCommandTimeoutMs: 2000,
      redisConnectTimeoutMs: 3000,
      redisMaxReconnectDelayMs: 2000,
      rateLimitMaxKeys: 100_000,
    });
  });

  it('reads them', () => {
    expect(
      loadConfig({
        REDIS_COMMAND_TIMEOUT: '500ms',
        REDIS_CONNECT_TIMEOUT: '1s',
        REDIS_MAX_RECONNECT_DELAY: '5',
        RATE_LIMIT_MAX_KEYS: '5000',
      }),
    ).toMatchObject({
      redisCommandTimeoutMs: 500,
      redisConnectTimeoutMs: 1000,
      redisMaxReconnectDelayMs: 5000,
      rateLimitMaxKeys: 5000,
    });
  });

  it.each([
    [{ DATABASE_CONNECT_TIMEOUT: '0' }, 'DATABASE_CONNECT_TIMEOUT'],
    [{ DATABASE_STATEMENT_TIMEOUT: '5 minutes' }, 'DATABASE_STATEMENT_TIMEOUT'],
    [{ DATABASE_STATEMENT_TIMEOUT: '50ms' }, 'DATABASE_STATEMENT_TIMEOUT'],
    [{ SHUTDOWN_GRACE_PERIOD: '11m' }, 'SHUTDOWN_GRACE_PERIOD'],
    [{ REDIS_COMMAND_TIMEOUT: '0' }, 'REDIS_COMMAND_TIMEOUT'],
    [{ REDIS_CONNECT_TIMEOUT: '2 seconds' }, 'REDIS_CONNECT_TIMEOUT'],
    [{ REDIS_MAX_RECONNECT_DELAY: '11m' }, 'REDIS_MAX_RECONNECT_DELAY'],
    [{ RATE_LIMIT_MAX_KEYS: '10' }, 'RATE_LIMIT_MAX_KEYS'],
  ])('refuses %o naming the variable', (env, name) => {
    const problems = problemsOf(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(name);
  });
});

describe('loadConfig: revocation reload overlap', () => {
  it('refuses an overlap shorter than a revoking transaction can stay open', () => {
    const problems = problemsOf({ DATABASE_STATEMENT_TIMEOUT: '30s', REVOCATION_RELOAD_OVERLAP: '60' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('REVOCATION_RELOAD_OVERLAP must be at least 65 s');
  });

  it('accepts the defaults', () => {
    expect(problemsOf({})).toEqual([]);
  });
});

describe('loadConfig: lockout and audit retention settings (issue 8)', () => {
  it('defaults to 90-day device tokens and retention, 5 device failures, 1 reserved hash slot', () => {
    expect(loadConfig({})).toMatchObject({
      deviceTokenTtl: 90 * 86400,
      loginMaxFailuresPerDevice: 5,
      loginMaxFailuresGlobal: 10_000,
      passwordHashReservedSlots: 1,
      auditRetention: 90 * 86400,
    });
  });

  it('reads them and names each bad one', () => {
    expect(
      loadConfig({
        DEVICE_TOKEN_TTL: '30d',
        LOGIN_MAX_FAILURES_PER_DEVICE: '3',
        LOGIN_MAX_FAILURES_GLOBAL: '500',
        PASSWORD_HASH_RESERVED_SLOTS: '0',
        AUDIT_RETENTION: '400d',
      }),
    ).toMatchObject({
      deviceTokenTtl: 30 * 86400,
      loginMaxFailuresPerDevice: 3,
      loginMaxFailuresGlobal: 500,
      passwordHashReservedSlots: 0,
      auditRetention: 400 * 86400,
    });
    const problems = problemsOf({
      DEVICE_TOKEN_TTL: 'forever',
      LOGIN_MAX_FAILURES_PER_DEVICE: '0',
      LOGIN_MAX_FAILURES_GLOBAL: '-1',
      PASSWORD_HASH_RESERVED_SLOTS: '65',
      AUDIT_RETENTION: '0',
    });
    for (const name of [
      'DEVICE_TOKEN_TTL',
      'LOGIN_MAX_FAILURES_PER_DEVICE',
      'LOGIN_MAX_FAILURES_GLOBAL',
      'PASSWORD_HASH_RESERVED_SLOTS',
      'AUDIT_RETENTION',
    ]) {
      expect(problems.some((problem) => problem.startsWith(name))).toBe(true);
    }
  });
});

describe('PUBLIC_URL and the issuer (issue 11)', () => {
  it('reads REQUIRE_MFA_FOR_ROLES as a list of roles and refuses an unknown one', () => {
    expect(loadConfig({ REQUIRE_MFA_FOR_ROLES: 'admin, super_admin' }).requireMfaForRoles).toEqual([
      'admin',
      'super_admin',
    ]);
    expect(loadConfig({}).requireMfaForRoles).toEqual([]);
    expect(problemsOf({ REQUIRE_MFA_FOR_ROLES: 'admin,root' }).join('\n')).toMatch(/REQUIRE_MFA_FOR_ROLES/);
  });

  it('defaults to http://localhost:<PORT> (an IP cannot be a WebAuthn rp id), and JWT_ISSUER to it', () => {
    expect(loadConfig({ PORT: '9001' })).toMatchObject({
      publicUrl: 'http://localhost:9001',
      issuer: 'http://localhost:9001',
    });
  });

  it('takes an origin (a trailing slash is dropped); JWT_ISSUER may still differ', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://auth.example.com/' })).toMatchObject({
      publicUrl: 'https://auth.example.com',
      issuer: 'https://auth.example.com',
    });
    expect(loadConfig({ PUBLIC_URL: 'https://auth.example.com', JWT_ISSUER: 'legacy' }).issuer).toBe(
      'legacy',
    );
  });

  it.each(['auth.example.com', 'https://auth.example.com/base', 'https://a.example?x=1', 'ftp://a.example'])(
    'refuses %s, naming the setting',
    (value) => {
      expect(problemsOf({ PUBLIC_URL: value }).join('\n')).toMatch(/^PUBLIC_URL=/m);
    },
  );

  it('accepts RS256 (RFC 9068 §4)', () => {
    expect(loadConfig({ JWT_ALG: 'RS256' }).jwtAlgorithm).toBe('RS256');
  });
});

describe('EXTERNAL_ISSUERS (resource-server mode)', () => {
  it('reads a JSON array of issuers, with none by default', () => {
    expect(loadConfig({}).externalIssuers).toEqual([]);
    const issuers = [
      {
        issuer: 'https://tenant.eu.auth0.com/',
        audience: 'https://api.example.com',
        typ: 'JWT',
        scopeClaim: 'permissions',
      },
      { issuer: 'http://127.0.0.1:8080/realms/demo', audience: ['account', 'api'], algorithms: ['RS256'] },
    ];
    const config = loadConfig({
      EXTERNAL_ISSUERS: JSON.stringify(issuers),
      EXTERNAL_ISSUER_TIMEOUT: '750ms',
    });
    expect(config.externalIssuers).toEqual(issuers);
    expect(config.externalIssuerTimeoutMs).toBe(750);
  });

  it('names what is wrong, with a JSON pointer per problem', () => {
    expect(problemsOf({ EXTERNAL_ISSUERS: '[{"issuer":' })).toEqual([
      expect.stringMatching(/^EXTERNAL_ISSUERS: expected a JSON array of issuers.*\(not valid JSON\)$/),
    ]);
    const [problem] = problemsOf({
      EXTERNAL_ISSUERS: JSON.stringify([
        { issuer: 'http://idp.example.com', audience: 'api', algorithms: ['HS256'], extra: true },
      ]),
    });
    expect(problem).toMatch(/^EXTERNAL_ISSUERS: /);
    expect(problem).toContain('at /0/issuer: must be an https URL');
    expect(problem).toMatch(/at \/0(\/algorithms\/0)?: /);
    // No HMAC, no none: only asymmetric algorithms can be configured (RFC 8725 §3.1).
    expect(
      problemsOf({
        EXTERNAL_ISSUERS: '[{"issuer":"https://a.example","audience":"x","algorithms":["none"]}]',
      }),
    ).toHaveLength(1);
    expect(
      problemsOf({
        EXTERNAL_ISSUERS:
          '[{"issuer":"https://a.example","audience":"x"},{"issuer":"https://a.example","audience":"y"}]',
      }),
    ).toEqual([expect.stringContaining('must name each issuer once')]);
  });

  it("refuses Gatehouse's own issuer as an external one", () => {
    expect(
      problemsOf({
        PUBLIC_URL: 'https://auth.example.com',
        EXTERNAL_ISSUERS: '[{"issuer":"https://auth.example.com","audience":"api"}]',
      }),
    ).toEqual([
      expect.stringContaining("EXTERNAL_ISSUERS: must not list JWT_ISSUER (Gatehouse's own tokens)"),
    ]);
  });
});

// Red-team 2026-12j E6: MAIL_FROM with CR/LF or a second address started the server, and
// nodemailer sent as an address the operator never meant.
describe('MAIL_FROM', () => {
  it.each([
    'no-reply@example.com',
    'Gatehouse <no-reply@example.com>',
    'Gatehouse Accounts <no-reply@auth.example.com>',
    '"Gatehouse, Inc." <no-reply@example.com>',
  ])('accepts one mailbox: %s', (value) => {
    expect(loadConfig({ MAIL_FROM: value }).mailFrom).toBe(value);
  });

  it.each([
    'Gatehouse <no-reply@x.test>\r\nBcc: attacker@evil.test',
    'Gatehouse <no-reply@x.test>\nBcc: attacker@evil.test',
    'a@x.test, b@evil.test',
    'Gatehouse <a@x.test>, <b@evil.test>',
    'Gatehouse, Inc. <a@x.test>',
    'not an address',
    '<>',
  ])('refuses %j', (value) => {
    expect(problemsOf({ MAIL_FROM: value })).toEqual([expect.stringContaining('MAIL_FROM')]);
  });
});

describe('SECRET_KEY_PREVIOUS', () => {
  // Accepted (a weak key must be rotatable away), but its tokens verify meanwhile: the operator is told.
  it('warns when it is plainly not random, and is quiet for a random one', () => {
    const dataDir = tempDir('gh-prev-');
    const key = randomBytes(32).toString('base64url');
    const warned = (previous: string) =>
      resolveConfig({ DATA_DIR: dataDir, SECRET_KEY: key, SECRET_KEY_PREVIOUS: previous }).notices.filter(
        (notice) => notice.message.startsWith('SECRET_KEY_PREVIOUS'),
      );
    expect(warned('a'.repeat(40))).toEqual([expect.objectContaining({ level: 'warn' })]);
    expect(warned(randomBytes(32).toString('base64url'))).toEqual([]);
  });
});

describe('SECRET_KEY refusal message', () => {
  it('says a long enough key is refused for not being random, not for its length', () => {
    expect(problemsOf({ SECRET_KEY: 'k'.repeat(64) })).toEqual([
      expect.stringMatching(
        /^SECRET_KEY is 64 bytes but plainly not random: it must be at least 32 random bytes/,
      ),
    ]);
  });
});
