import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { freePort } from '../support/private-postgres.js';

const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
const runRedisFaultTests = existsSync(REDIS_SERVER) || process.env.REQUIRE_SERVICES === '1';

/**
 * `/readyz` reports Redis but never fails on it (issue 9: a Redis outage must not make a load
 * balancer drop every instance at once), and answers within a second even when Redis is frozen.
 * Redis here is a private server this test starts, freezes and kills; never the shared one.
 */
describe.skipIf(!runRedisFaultTests)('/readyz with Redis faults (private redis-server)', () => {
  let redis: ChildProcess;
  let app: FastifyInstance;

  beforeAll(async () => {
    const port = await freePort();
    redis = spawn(
      REDIS_SERVER,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      let output = '';
      redis.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (output.includes('Ready to accept connections')) resolve();
      });
      redis.once('exit', () => reject(new Error(`redis-server exited:\n${output}`)));
    });
    app = await buildTestServer({ redisUrl: `redis://127.0.0.1:${port}` });
  });

  afterAll(async () => {
    if (redis.exitCode === null) {
      redis.kill('SIGCONT');
      redis.kill('SIGKILL');
    }
    await app?.close().catch(() => {});
  });

  const readyz = async () => {
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    return { status: response.statusCode, body: response.json() as Record<string, unknown> };
  };

  it('says redis up while it answers', async () => {
    expect(await readyz()).toEqual({ status: 200, body: { status: 'ready', database: 'up', redis: 'up' } });
  });

  // The per-test timeout is the hang detector (generous for two busy cores): an unbounded PING to a
  // frozen Redis would never return; the probe's own bound is READINESS_CHECK_TIMEOUT_MS.
  it('stays ready and says redis down, within a second, while Redis is frozen', {
    timeout: 1500,
  }, async () => {
    redis.kill('SIGSTOP');
    try {
      expect(await readyz()).toEqual({
        status: 200,
        body: { status: 'ready', database: 'up', redis: 'down' },
      });
    } finally {
      redis.kill('SIGCONT');
    }
  });

  it('stays ready and says redis down once Redis is gone', async () => {
    const exited = new Promise((resolve) => redis.once('exit', resolve));
    redis.kill('SIGKILL');
    await exited;
    expect(await readyz()).toEqual({ status: 200, body: { status: 'ready', database: 'up', redis: 'down' } });
  });
});
