import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createMemoryCounterStore, createResilientCounterStore } from '../../src/accounts/counter-store.js';
import { loadConfig } from '../../src/config/load-config.js';
import { type CoreWarn, createRedisConnections } from '../../src/events/redis-connections.js';
import { parseRedisUrl } from '../../src/events/redis-url.js';
import { buildTestServer } from '../../src/testing.js';
import { PASSWORD, postToken, uniqueEmail } from '../support/accounts.js';

describe('parseRedisUrl', () => {
  it('hands redis:// and rediss:// URLs to ioredis as they are', () => {
    for (const url of ['redis://127.0.0.1:6379', 'rediss://:secret@cache.example:6380/2']) {
      expect(parseRedisUrl(url)).toEqual({ ok: true, target: { kind: 'tcp', url } });
    }
  });

  it.each([
    ['unix:///run/redis/redis.sock', { kind: 'unix', path: '/run/redis/redis.sock' }],
    ['redis+unix:///run/redis/redis.sock', { kind: 'unix', path: '/run/redis/redis.sock' }],
    [
      'unix:///tmp/a%20b/redis.sock?db=3&username=gh&password=p%40ss%26word',
      { kind: 'unix', path: '/tmp/a b/redis.sock', db: 3, username: 'gh', password: 'p@ss&word' },
    ],
  ])('reads the socket path, database and credentials of %s', (url, target) => {
    expect(parseRedisUrl(url)).toEqual({ ok: true, target });
  });

  it.each([
    ['http://127.0.0.1:6379', 'must start with'],
    ['unix://localhost/run/redis.sock', 'names no host'],
    ['unix://', 'absolute path'],
    ['unix:///run/redis.sock?db=two', 'db must be'],
    ['unix:///run/redis.sock?db=-1', 'db must be'],
    ['unix:///run/redis.sock?timeout=5', 'unknown parameter "timeout"'],
  ])('refuses %s, saying why', (url, problem) => {
    const result = parseRedisUrl(url);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem).toContain(problem);
  });

  it('is what REDIS_URL is checked with at start-up, and the message never echoes the URL', () => {
    expect(loadConfig({ REDIS_URL: 'unix:///run/redis/redis.sock?db=1' }).redisUrl).toBe(
      'unix:///run/redis/redis.sock?db=1',
    );
    expect(() => loadConfig({ REDIS_URL: 'unix:///run/redis.sock?db=x&password=hunter2' })).toThrow(
      /REDIS_URL: db must be/,
    );
    try {
      loadConfig({ REDIS_URL: 'unix:///run/redis.sock?db=x&password=hunter2' });
    } catch (error) {
      expect(String(error)).not.toContain('hunter2');
    }
  });
});

/**
 * A Redis behind a Unix socket that is gone (stopped, or not started yet): connect() fails with
 * ENOENT, and with ECONNREFUSED while a dead server's socket file is left behind. Neither is a
 * request's problem: Redis is an accelerator, so counters fall back to local memory, publishes stay
 * local, readiness says `down`, and nothing answers 500.
 */
describe('a Redis Unix socket that is gone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-redis-gone-'));
  const url = `unix://${join(dir, 'redis.sock')}`;
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('counts locally and reports down; the connection error (ENOENT) is a warning, not a throw', async () => {
    const warn = vi.fn<CoreWarn>();
    const connections = createRedisConnections(
      { url, commandTimeoutMs: 200, connectTimeoutMs: 200, maxReconnectDelayMs: 100 },
      warn,
    );
    try {
      await connections.firstAttemptFailed();
      const counters = createResilientCounterStore({
        connections,
        fallback: createMemoryCounterStore(Date.now),
      });
      expect((await counters.increment('k', 60_000)).count).toBe(1);
      expect((await counters.increment('k', 60_000)).count).toBe(2);
      expect(connections.state()).toBe('down');
      expect(await connections.check(200)).toBe('down');
      await vi.waitFor(() =>
        expect(warn).toHaveBeenCalledWith(
          expect.stringContaining('connection error'),
          expect.objectContaining({ error: expect.stringContaining('ENOENT') }),
        ),
      );
    } finally {
      await connections.close();
    }
  });

  it('serves sign-up, login and /readyz (redis: down), never a 500', async () => {
    const app = await buildTestServer({
      redisUrl: url,
      redisCommandTimeoutMs: 200,
      redisConnectTimeoutMs: 200,
      redisMaxReconnectDelayMs: 100,
    });
    try {
      const email = uniqueEmail('redis-gone');
      const register = await app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email, password: PASSWORD },
      });
      expect(register.statusCode).toBe(201);
      const token = await postToken(app, { grant_type: 'password', username: email, password: PASSWORD });
      expect(token.statusCode).toBe(200);
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toMatchObject({ status: 'ready', redis: 'down' });
    } finally {
      await app.close();
    }
  });
});
