import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootstrapSecret } from '../../src/config/bootstrap-secret.js';
import { loadConfig, readEnvironment } from '../../src/config/load-config.js';
import { resolveConfig } from '../../src/config/resolve-config.js';
import { ConfigError } from '../../src/errors.js';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('loadConfig', () => {
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
      TRUST_PROXY: '1',
      DATABASE_URL: 'postgres://u@h:5432/db',
    });
    expect(config.accessTokenTtl).toBe(300);
    expect(config.refreshIdleTtl).toBe(172800);
    expect(config.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:5173']);
    expect(config.trustProxy).toBe(1);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ TOKEN_STRATEGY: 'magic' }, 'TOKEN_STRATEGY'],
    [{ JWT_ALG: 'none' }, 'JWT_ALG'],
    [{ JWT_ALG: 'RS256' }, 'JWT_ALG'],
    [{ COOKIE_SECURE: 'maybe' }, 'COOKIE_SECURE'],
    [{ ACCESS_TOKEN_TTL: '-5' }, 'ACCESS_TOKEN_TTL'],
    [{ CORS_ORIGINS: 'https://app.example.com/path' }, 'CORS_ORIGINS'],
    [{ CORS_ORIGINS: '*' }, 'CORS_ORIGINS'],
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

  it('asks 15-character passwords by default and takes PASSWORD_MIN_LENGTH from 8 up', () => {
    expect(loadConfig({}).passwordMinLength).toBe(15);
    expect(loadConfig({ PASSWORD_MIN_LENGTH: '8' }).passwordMinLength).toBe(8);
  });

  it('accepts a 32-byte SECRET_KEY', () => {
    expect(loadConfig({ SECRET_KEY: 'x'.repeat(32) }).secretKey?.byteLength).toBe(32);
  });

  it('reads .env under the real environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-env-'));
    writeFileSync(join(dir, '.env'), 'PORT=9001\nHOST=0.0.0.0\n');
    const env = readEnvironment({ HOST: '127.0.0.2' }, dir);
    expect(loadConfig(env)).toMatchObject({ port: 9001, host: '127.0.0.2' });
  });
});

describe('secret bootstrap', () => {
  it('generates 256 bits once, mode 0600, and reuses them', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'gh-secret-')), 'data');
    const first = bootstrapSecret(dir);
    expect(first.created).toBe(true);
    expect(first.key.byteLength).toBe(32);
    expect(statSync(first.path).mode & 0o777).toBe(0o600);
    const second = bootstrapSecret(dir);
    expect(second.created).toBe(false);
    expect(Buffer.from(second.key).equals(Buffer.from(first.key))).toBe(true);
  });

  it('says what it did', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'gh-secret-')), 'data');
    const { config, notices } = resolveConfig({ DATA_DIR: dir, COOKIE_SECURE: 'false' });
    expect(config.secretKey.byteLength).toBe(32);
    expect(notices.map((n) => n.message).join('\n')).toMatch(/generated 256 random bits/);
    expect(notices.some((n) => n.level === 'warn' && n.message.includes('COOKIE_SECURE=false'))).toBe(true);
  });
});
