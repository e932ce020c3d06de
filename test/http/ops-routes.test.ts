import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { REDACTED_LOG_PATHS } from '../../src/server.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD, postToken } from '../support/accounts.js';

describe('ops routes', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer();
  });
  afterAll(async () => app.close());

  it('answers /healthz and /readyz', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({
      status: 'ready',
      database: 'up',
      redis: 'disabled',
    });
  });

  // Operator red-team 2026-12-04: a flood of the unauthenticated probe ran one database query (and
  // one Redis PING) per request, taking pool connections from sign-ins.
  it('runs one dependency check for probes that arrive together, and a fresh one for the next', async () => {
    const queries: string[] = [];
    const probed = await buildTestServer({}, { onQuery: (sql) => void queries.push(sql) });
    try {
      const pings = () => queries.filter((sql) => sql === 'select 1').length;
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => probed.inject({ method: 'GET', url: '/readyz' })),
      );
      expect(answers.map((answer) => answer.statusCode)).toEqual(Array(50).fill(200));
      expect(pings()).toBeLessThanOrEqual(2);
      const before = pings();
      expect((await probed.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      expect(pings()).toBe(before + 1);
    } finally {
      await probed.close();
    }
  });

  it('reports not ready when the database is gone', async () => {
    const broken = await buildTestServer();
    await gatehouseCore(broken.gatehouse).database.close();
    const response = await broken.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ status: 'not ready', database: 'down', redis: 'disabled' });
    await broken.close().catch(() => {});
  });
});

describe('logs', () => {
  it('never contain Authorization, Cookie, Set-Cookie or passwords', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    const app = await buildTestServer(
      {},
      {
        logger: {
          level: 'trace',
          stream,
          redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
          serializers: {
            req: (req: { headers: Record<string, unknown>; method: string; url: string }) => ({
              method: req.method,
              url: req.url,
              headers: req.headers,
            }),
          },
        },
      },
    );
    const user = await createUser(app);
    const tokens = await login(app, user.email);
    await app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { ...bearer(tokens.access_token), cookie: 'a=secret-cookie' },
    });
    await postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD });
    const all = lines.join('\n');
    expect(all).toContain('[redacted]');
    expect(all).not.toContain(tokens.access_token);
    expect(all).not.toContain('secret-cookie');
    expect(all).not.toContain(PASSWORD);
    await app.close();
  });
});
