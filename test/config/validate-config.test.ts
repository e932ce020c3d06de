import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultConfig, type GatehouseConfig, gatehouseConfigSchema } from '../../src/config/config.js';
import { loadConfig } from '../../src/config/load-config.js';
import { SETTING } from '../../src/config/setting.js';
import { assertValidConfig, findConfigProblems } from '../../src/config/validate-config.js';
import { ConfigError } from '../../src/errors.js';
import { createGatehouse } from '../../src/gatehouse.js';

const valid = (): GatehouseConfig => ({
  ...defaultConfig,
  databaseUrl: 'sqlite::memory:',
  secretKey: new Uint8Array(32).map((_, i) => (i * 7 + 1) % 256),
});

/** The settings as a caller outside TypeScript's reach might pass them. */
const withValues = (values: Record<string, unknown>): Record<string, unknown> => ({ ...valid(), ...values });

describe('assertValidConfig (settings passed in code)', () => {
  it('accepts the defaults with a secret and a database', () => {
    expect(findConfigProblems(valid())).toEqual([]);
    expect(() => assertValidConfig(valid())).not.toThrow();
  });

  it.each([
    [
      'secretKey',
      new Uint8Array(5),
      /^secretKey: got 5 bytes; expected a Uint8Array of at least 32 random bytes/,
    ],
    ['secretKey', 'x'.repeat(40), /^secretKey: got a string; expected a Uint8Array/],
    [
      'accessTokenTtl',
      -5,
      /^accessTokenTtl: got -5; expected a number of seconds from 1 to 86400 \(env ACCESS_TOKEN_TTL\)$/,
    ],
    ['accessTokenTtl', Number.NaN, /^accessTokenTtl: got NaN; expected a number of seconds/],
    ['accessTokenTtl', Number.POSITIVE_INFINITY, /^accessTokenTtl: got Infinity; expected/],
    ['accessTokenTtl', '900', /^accessTokenTtl: got "900"; expected a number of seconds/],
    [
      'jwtAlgorithm',
      'none',
      /^jwtAlgorithm: got "none"; expected one of HS256, EdDSA, ES256, RS256 \(env JWT_ALG\)$/,
    ],
    ['jwtAlgorithm', 'RS512', /^jwtAlgorithm: got "RS512"; expected one of HS256/],
    ['tokenStrategy', 'magic', /^tokenStrategy: got "magic"; expected one of jwt, database/],
    ['port', 70_000, /^port: got 70000; expected an integer from 0 to 65535/],
    ['port', 80.5, /^port: got 80.5; expected an integer/],
    ['passwordMinLength', 7, /^passwordMinLength: got 7; expected an integer from 8 to 64/],
    [
      'databaseStatementTimeoutMs',
      50,
      /^databaseStatementTimeoutMs: got 50; expected an integer number of milliseconds from 100/,
    ],
    ['corsOrigins', ['*'], /^corsOrigins: got \["\*"\]; expected an array of origins/],
    [
      'corsOrigins',
      'https://app.example.com',
      /^corsOrigins: got "https:\/\/app.example.com"; expected an array/,
    ],
    [
      'publicUrl',
      'https://auth.example.com/',
      /^publicUrl: got "https:\/\/auth.example.com\/"; expected the external origin/,
    ],
    ['trustProxy', 0, /^trustProxy: got 0; expected false, a hop count from 1 to 999/],
    // Red-team F7: `true` trusts the leftmost X-Forwarded-For entry, which the client writes.
    ['trustProxy', true, /^trustProxy: got true; expected false, a hop count .*not true/],
    ['cookieSecure', 'false', /^cookieSecure: got "false"; expected true or false/],
    ['logLevel', 'verbose', /^logLevel: got "verbose"; expected one of fatal/],
    ['host', '', /^host: got ""; expected a non-empty string/],
    ['metricsPort', -1, /^metricsPort: got -1; expected an integer from 0 to 65535, or undefined/],
    ['refreshReuseInterval', -1, /^refreshReuseInterval: got -1; expected a number of seconds from 0 to 300/],
  ])('refuses %s = %o, naming the option, the value and what it accepts', (property, value, message) => {
    const problems = findConfigProblems(withValues({ [property]: value }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it('reports every problem at once in one ConfigError', () => {
    const error = (() => {
      try {
        assertValidConfig(
          withValues({
            secretKey: new Uint8Array(5),
            accessTokenTtl: -5,
            jwtAlgorithm: 'none',
            port: Number.NaN,
          }),
        );
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    if (!(error instanceof ConfigError)) return;
    expect(error.problems.map((problem) => problem.split(':')[0])).toEqual([
      'port',
      'secretKey',
      'accessTokenTtl',
      'jwtAlgorithm',
    ]);
    expect(error.message).toContain('Invalid configuration');
  });

  it('refuses unknown options (a typo would silently keep the default) and missing ones', () => {
    const { audience: _audience, ...withoutAudience } = valid();
    expect(findConfigProblems({ ...withoutAudience, accessTokenTTL: 60 })).toEqual([
      'audience: got undefined; expected a non-empty string (env JWT_AUDIENCE)',
      'accessTokenTTL: not a Gatehouse setting',
    ]);
    expect(findConfigProblems(undefined)).toEqual(['expected an object of Gatehouse settings']);
    expect(findConfigProblems([])).toEqual(['expected an object of Gatehouse settings']);
  });

  it('never echoes a secret or a URL that may hold a password', () => {
    const problems = findConfigProblems(
      withValues({ databaseUrl: 'mysql://admin:hunter2@db', redisUrl: 'http://:hunter2@cache' }),
    );
    expect(problems).toEqual([
      'databaseUrl: got a string; expected sqlite:<path>, sqlite::memory: or postgres://user@host:port/db (env DATABASE_URL)',
      'redisUrl: got a string; expected a redis://, rediss://, unix:// or redis+unix:// URL, or undefined (env REDIS_URL)',
    ]);
  });

  it('applies the rules between settings, naming the options', () => {
    expect(findConfigProblems(withValues({ metricsPort: 8000, port: 8000 }))).toEqual([
      'metricsPort: must differ from port (metrics are never served on the public port)',
    ]);
    expect(findConfigProblems(withValues({ refreshIdleTtl: 7200, sessionAbsoluteTtl: 3600 }))).toEqual([
      'refreshIdleTtl must not exceed sessionAbsoluteTtl',
    ]);
    expect(
      findConfigProblems(withValues({ databaseStatementTimeoutMs: 30_000, revocationReloadOverlap: 60 })),
    ).toEqual([
      'revocationReloadOverlap must be at least 65 s (twice databaseStatementTimeoutMs plus 5 s of clock skew)',
    ]);
  });
});

describe('createGatehouse', () => {
  it('refuses invalid settings before it opens anything', async () => {
    const config = withValues({ secretKey: new Uint8Array(5), accessTokenTtl: -5 });
    // @ts-expect-error: a JavaScript caller, or one that built its settings from untyped input.
    const started = createGatehouse(config);
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toMatchObject({
      problems: [
        expect.stringMatching(/^secretKey: got 5 bytes/),
        expect.stringMatching(/^accessTokenTtl: got -5/),
      ],
    });
  });
});

describe('gatehouseConfigSchema', () => {
  const settings = Object.entries(gatehouseConfigSchema.properties).map(([property, schema]) => ({
    property,
    info: schema[SETTING],
  }));

  it('names each setting by a distinct UPPER_SNAKE variable and describes it', () => {
    const names = settings.map(({ info }) => info.env);
    expect(new Set(names).size).toBe(names.length);
    for (const { info } of settings) {
      expect(info.env).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(info.description.length).toBeGreaterThan(5);
    }
  });

  it('gives the environment the same defaults as code, except the ones derived from other settings', () => {
    const fromEnv = loadConfig({});
    for (const { property, info } of settings) {
      if (['publicUrl', 'issuer', 'databaseUrl', 'secretKey'].includes(property)) continue;
      expect({ property, value: Reflect.get(fromEnv, property) }).toEqual({
        property,
        value: info.default?.value,
      });
    }
    expect(Object.isFrozen(defaultConfig)).toBe(true);
  });

  it('accepts an integer in a variable exactly when it accepts it in code', () => {
    const integers = settings.filter(({ info }) => info.syntax === 'integer' || info.syntax === 'seconds');
    fc.assert(
      fc.property(fc.constantFrom(...integers), fc.integer({ min: -10, max: 200_000_000 }), (setting, n) => {
        const byCode = findConfigProblems(withValues({ [setting.property]: n })).some((problem) =>
          problem.startsWith(`${setting.property}:`),
        );
        let byEnv = false;
        try {
          loadConfig({ [setting.info.env]: String(n) });
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          byEnv = error.problems.some((problem) => problem.startsWith(`${setting.info.env}=`));
        }
        expect({ setting: setting.info.env, n, refused: byEnv }).toEqual({
          setting: setting.info.env,
          n,
          refused: byCode,
        });
      }),
      { numRuns: 500 },
    );
  });
});
