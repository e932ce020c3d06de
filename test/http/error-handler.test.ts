import { once } from 'node:events';
import { type AddressInfo, connect } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GatehouseError } from '../../src/errors.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { UNAVAILABLE_LOG_EVERY_MS } from '../../src/http/error-handler.js';
import { gatehousePlugin } from '../../src/http/index.js';
import { createGatehouse, type Gatehouse } from '../../src/index.js';
import { buildServer } from '../../src/server.js';
import { isDatabaseUnavailable, isTransactionConflict } from '../../src/storage/open-database.js';
import { buildTestServer, createTestClock, testConfig } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD, postToken } from '../support/accounts.js';

describe('a database outage', () => {
  let app: FastifyInstance;
  let email: string;
  let accessToken: string;
  beforeAll(async () => {
    app = await buildTestServer();
    const user = await createUser(app);
    email = user.email;
    accessToken = (await login(app, email)).access_token;
    // The first authenticated request caches the user, as in production.
    expect(
      (await app.inject({ method: 'GET', url: '/users/me', headers: bearer(accessToken) })).statusCode,
    ).toBe(200);
    // The database goes away under the running server.
    await gatehouseCore(app.gatehouse).database.close();
  });
  afterAll(async () => app.close().catch(() => {}));

  it('answers 503 problem+json DATABASE_UNAVAILABLE with Retry-After, never a 500', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'new@example.com', password: PASSWORD },
    });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
    expect(response.json()).toMatchObject({ status: 503, code: 'DATABASE_UNAVAILABLE' });
    expect(response.body).not.toMatch(/\bat .+\.(ts|js):\d+/);
  });

  it('answers /token in the RFC 6749 shape: temporarily_unavailable, our code, no-store', async () => {
    const response = await postToken(app, { grant_type: 'password', username: email, password: PASSWORD });
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
    expect(response.json()).toEqual({
      error: 'temporarily_unavailable',
      error_description: expect.any(String),
      code: 'DATABASE_UNAVAILABLE',
    });
  });

  it('keeps serving JWT-authenticated reads from memory', async () => {
    const response = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(accessToken) });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ email });
  });
});

describe('the log line of a database outage', () => {
  it('names the reason (not pino\'s "[not an Error]")', async () => {
    const lines: string[] = [];
    const app = await buildServer(testConfig({ logLevel: 'warn' }), {
      logStream: { write: (line) => void lines.push(line) },
      webUi: false,
    });
    try {
      await gatehouseCore(app.gatehouse).database.close();
      const response = await app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email: 'outage@example.com', password: PASSWORD },
      });
      expect(response.statusCode).toBe(503);
    } finally {
      await app.close().catch(() => {});
    }
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const warning = entries.find((entry) => entry.msg === 'database unavailable');
    expect(warning).toBeDefined();
    expect(typeof warning?.error).toBe('string');
    expect(String(warning?.error)).not.toBe('');
    expect(JSON.stringify(warning)).not.toContain('[not an Error]');
  });

  it('is one line per interval, however many requests the outage refuses, saying how many it stands for', async () => {
    const lines: string[] = [];
    const clock = createTestClock();
    const app = await buildServer(testConfig({ logLevel: 'warn' }), {
      logStream: { write: (line) => void lines.push(line) },
      webUi: false,
      clock,
      scheduler: clock,
    });
    const register = () =>
      app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email: 'outage@example.com', password: PASSWORD },
      });
    const warnings = () =>
      lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((entry) => entry.msg === 'database unavailable');
    try {
      await gatehouseCore(app.gatehouse).database.close();
      for (let i = 0; i < 5; i++) expect((await register()).statusCode).toBe(503);
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).not.toHaveProperty('alsoRefusedSinceLastLine');
      clock.advance(UNAVAILABLE_LOG_EVERY_MS - 1);
      expect((await register()).statusCode).toBe(503);
      expect(warnings()).toHaveLength(1);
      clock.advance(1);
      expect((await register()).statusCode).toBe(503);
      expect(warnings()).toHaveLength(2);
      expect(warnings()[1]).toMatchObject({ error: expect.any(String), alsoRefusedSinceLastLine: 5 });
    } finally {
      await app.close().catch(() => {});
    }
  });
});

describe('the log line of a deliberate 503 (load shed)', () => {
  it('is a warning without a stack; one caused by a fault keeps the error and its stack', async () => {
    const lines: string[] = [];
    const app = await buildServer(testConfig({ logLevel: 'warn' }), {
      logStream: { write: (line) => void lines.push(line) },
      webUi: false,
    });
    app.get('/test/busy', () => {
      throw new GatehouseError('SERVICE_UNAVAILABLE', 'The server is busy; try again shortly.', {
        retryAfterSeconds: 1,
      });
    });
    app.get('/test/broken', () => {
      throw new GatehouseError('SERVICE_UNAVAILABLE', 'The server could not load a module it needs.', {
        cause: new Error('Cannot find module'),
      });
    });
    try {
      const busy = await app.inject({ method: 'GET', url: '/test/busy' });
      expect(busy.statusCode).toBe(503);
      expect(busy.headers['retry-after']).toBe('1');
      expect(busy.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      expect((await app.inject({ method: 'GET', url: '/test/broken' })).statusCode).toBe(503);
    } finally {
      await app.close().catch(() => {});
    }
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const refused = entries.filter((entry) => entry.msg === 'refused: unavailable');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 40, code: 'SERVICE_UNAVAILABLE' });
    expect(JSON.stringify(refused[0])).not.toContain('stack');
    const errors = entries.filter((entry) => Number(entry.level) >= 50);
    expect(errors).toHaveLength(1);
    expect(JSON.stringify(errors[0])).toContain('could not load a module');
    expect(JSON.stringify(errors[0])).toContain('stack');
  });
});

/**
 * A transaction PostgreSQL ended because it conflicted with another (40P01 deadlock_detected,
 * 40001 serialization_failure): rolled back whole, so the same request may be sent again. The
 * lock order keeps Gatehouse's own transactions from deadlocking each other
 * (test/http/lock-order.test.ts); what remains (an app's transaction, an operator's session) must
 * not be a 500 with a stack. Routes that throw what node-postgres rejects with, wrapped the way
 * Kysely and a service may wrap it.
 */
describe('a transaction ended by a conflict', () => {
  const pgError = (code: string, message: string) =>
    Object.assign(new Error(message), { code, severity: 'ERROR', detail: 'Process 1 waits for ShareLock' });
  let app: FastifyInstance;
  let gatehouse: Gatehouse;
  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig());
    app = Fastify();
    await app.register(gatehousePlugin, { gatehouse, routes: false });
    app.post('/deadlock', async () => {
      throw pgError('40P01', 'deadlock detected');
    });
    app.post('/serialization', async () => {
      throw new Error('the change failed', { cause: pgError('40001', 'could not serialize access') });
    });
    // The token endpoint's error shape (RFC 6749 §5.2) is chosen by the route's path.
    app.post('/token', async () => {
      throw pgError('40P01', 'deadlock detected');
    });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await gatehouse.close();
  });

  it.each(['/deadlock', '/serialization'])(
    '%s: 503 problem+json TRANSACTION_CONFLICT with Retry-After, no stack',
    async (url) => {
      const response = await app.inject({ method: 'POST', url });
      expect(response.statusCode).toBe(503);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.json()).toMatchObject({ status: 503, code: 'TRANSACTION_CONFLICT' });
      expect(response.body).not.toMatch(/\bat .+\.(ts|js):\d+|deadlock|serialize|ShareLock/);
    },
  );

  it('on /token: temporarily_unavailable with our code, no-store', async () => {
    const response = await app.inject({ method: 'POST', url: '/token' });
    expect(response.statusCode).toBe(503);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['retry-after']).toBe('1');
    expect(response.json()).toEqual({
      error: 'temporarily_unavailable',
      error_description: expect.any(String),
      code: 'TRANSACTION_CONFLICT',
    });
  });

  it('is not an outage: isDatabaseUnavailable stays false, so cached reads are not served stale for it', () => {
    expect(isTransactionConflict(pgError('40P01', 'deadlock detected'))).toBe(true);
    expect(isDatabaseUnavailable(pgError('40P01', 'deadlock detected'))).toBe(false);
    expect(isTransactionConflict(pgError('23505', 'duplicate key'))).toBe(false);
  });
});

/**
 * A row deleted by a concurrent request between a read and the write naming it (an account, a
 * room, an app): PostgreSQL answers 23503, SQLite SQLITE_CONSTRAINT_FOREIGNKEY. The sites that can
 * meet it check for it themselves; this is the net under the ones that cannot know.
 */
describe('a write whose parent row was deleted meanwhile', () => {
  const fkError = (code: string) =>
    Object.assign(new Error('insert or update on table "passkeys" violates foreign key constraint'), {
      code,
      detail: 'Key (user_id)=(abc) is not present in table "users".',
    });
  let app: FastifyInstance;
  let gatehouse: Gatehouse;
  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig());
    app = Fastify();
    await app.register(gatehousePlugin, { gatehouse, routes: false });
    app.post('/postgres', async () => {
      throw fkError('23503');
    });
    app.post('/sqlite', async () => {
      throw new Error('the change failed', { cause: fkError('SQLITE_CONSTRAINT_FOREIGNKEY') });
    });
    app.post('/token', async () => {
      throw fkError('23503');
    });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await gatehouse.close();
  });

  it.each(['/postgres', '/sqlite'])(
    '%s: 409 problem+json CONCURRENT_DELETION, no SQL, no stack',
    async (url) => {
      const response = await app.inject({ method: 'POST', url });
      expect(response.statusCode).toBe(409);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ status: 409, code: 'CONCURRENT_DELETION' });
      expect(response.body).not.toMatch(/\bat .+\.(ts|js):\d+|foreign key|passkeys|user_id/);
    },
  );

  it('on /token: invalid_grant (the grant names something gone), with our code', async () => {
    const response = await app.inject({ method: 'POST', url: '/token' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: 'invalid_grant',
      error_description: expect.any(String),
      code: 'CONCURRENT_DELETION',
    });
  });
});

// Red-team 2026-12j E4: an embedding app's own refusals kept only 404; a 403 or a 409 it threw
// (or @fastify/sensible's helpers) answered 400 BAD_REQUEST.
describe("an embedding app's own 4xx errors", () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer();
    app.get('/host-error/:status', async (request) => {
      const status = Number((request.params as { status: string }).status);
      throw Object.assign(new Error(`internal detail for ${status}: order 1234 of user x`), {
        statusCode: status,
      });
    });
  });
  afterAll(async () => app.close());

  it.each([
    [401, 'UNAUTHENTICATED'],
    [403, 'FORBIDDEN'],
    [404, 'NOT_FOUND'],
    [409, 'CONFLICT'],
    [410, 'GONE'],
    [422, 'UNPROCESSABLE_CONTENT'],
    [429, 'TOO_MANY_REQUESTS'],
    [418, 'BAD_REQUEST'],
  ])('keeps status %i as problem+json %s, with a generic detail', async (status, code) => {
    const response = await app.inject({ method: 'GET', url: `/host-error/${status}` });
    const expected = code === 'BAD_REQUEST' ? 400 : status;
    expect(response.statusCode).toBe(expected);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({
      status: expected,
      code,
      detail: 'The request could not be processed.',
    });
    expect(response.body).not.toContain('internal detail');
    if (status === 401) expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="gatehouse"/);
  });
});

// Red-team 2026-12j E3: with `errorHandler: false`, or a host's own error handler, every
// Gatehouse refusal answered 500 (GatehouseError carried no status) and was logged as a server error.
describe("Gatehouse's refusals under another error handler", () => {
  let gatehouse: Gatehouse;
  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig());
  });
  afterAll(async () => gatehouse.close());

  const hostApp = async (handler: 'fastify' | 'host') => {
    const app = Fastify();
    await app.register(gatehousePlugin, { gatehouse, routes: false, errorHandler: false });
    if (handler === 'host') {
      app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) =>
        reply.code(error.statusCode ?? 500).send({ host: true, message: error.message }),
      );
    }
    app.get('/reports', { preHandler: app.auth.require({ role: 'admin' }) }, async () => ({ ok: true }));
    app.get('/throttled', async () => {
      throw new GatehouseError('TOO_MANY_REQUESTS', 'Slow down.', { retryAfterSeconds: 7 });
    });
    await app.ready();
    return app;
  };

  it.each(['fastify', 'host'] as const)(
    'answers with the code’s status and headers (%s handler)',
    async (handler) => {
      const app = await hostApp(handler);
      try {
        const anonymous = await app.inject({ method: 'GET', url: '/reports' });
        expect(anonymous.statusCode).toBe(401);
        if (handler === 'fastify')
          expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer realm="gatehouse"/);
        const forged = await app.inject({ method: 'GET', url: '/reports', headers: bearer('not.a.token') });
        expect(forged.statusCode).toBe(401);
        const throttled = await app.inject({ method: 'GET', url: '/throttled' });
        expect(throttled.statusCode).toBe(429);
        if (handler === 'fastify') expect(throttled.headers['retry-after']).toBe('7');
      } finally {
        await app.close();
      }
    },
  );

  it('keeps an unknown code at 500', () => {
    expect(new GatehouseError<string>('NOBODY_REGISTERED_THIS', 'x').statusCode).toBe(500);
    expect(new GatehouseError('FORBIDDEN', 'x').statusCode).toBe(403);
    expect(new GatehouseError('FORBIDDEN', 'x').headers).toBeUndefined();
  });
});

describe("an embedding app's own 401 challenge", () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer();
    app.get('/metrics-page', async (_request, reply) => {
      reply.header('www-authenticate', 'Basic realm="metrics"');
      throw Object.assign(new Error('no credentials'), { statusCode: 401 });
    });
  });
  afterAll(async () => app.close());

  it('is kept (the Bearer one is added only when the app set none)', async () => {
    const response = await app.inject({ method: 'GET', url: '/metrics-page' });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Basic realm="metrics"');
  });
});

describe('a client that leaves in the middle of its body', () => {
  it('is not logged as a database outage (red-team 2026-12m M1)', async () => {
    const lines: string[] = [];
    const app = await buildServer(testConfig({ logLevel: 'warn' }), {
      logStream: { write: (line) => void lines.push(line) },
      webUi: false,
    });
    // Node's request stream fails with `aborted` / ECONNRESET; the error handler runs right after.
    const aborts: Error[] = [];
    let reading = 0;
    app.addHook('preParsing', (_request, _reply, payload, done) => {
      reading += 1;
      done(null, payload);
    });
    app.addHook('onError', (_request, _reply, error, done) => {
      aborts.push(error);
      done();
    });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      for (let i = 0; i < 3; i += 1) {
        // Content-Length promises 100 bytes; 7 come, and once the server is reading the body the
        // client goes away.
        const socket = connect(port, '127.0.0.1');
        await once(socket, 'connect');
        socket.write(
          'POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
            'Content-Length: 100\r\n\r\n{"a":1,',
        );
        await vi.waitFor(() => expect(reading).toBe(i + 1), { timeout: 5000 });
        socket.destroy();
        await vi.waitFor(() => expect(aborts).toHaveLength(i + 1), { timeout: 5000 });
      }
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      await app.close().catch(() => {});
    }
    expect(aborts.map((error) => error.message)).toEqual(['aborted', 'aborted', 'aborted']);
    const warnings = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(warnings.filter((entry) => entry.msg === 'database unavailable')).toEqual([]);
  });
});
