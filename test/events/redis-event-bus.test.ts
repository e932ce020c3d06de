import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisEventBus } from '../../src/events/redis-event-bus.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login, postToken } from '../support/accounts.js';
import { createTestDatabaseUrl } from '../support/databases.js';
import { startFreezableProxy } from '../support/freezable-proxy.js';

const { REDIS_URL, DATABASE_URL } = process.env;

describe.runIf(REDIS_URL)('Redis event bus', () => {
  it('delivers to other instances and locally, without echoing to the publisher twice', async () => {
    const a = await createRedisEventBus(REDIS_URL ?? '');
    const b = await createRedisEventBus(REDIS_URL ?? '');
    const seenA: string[] = [];
    const received = new Promise<string>((resolve) =>
      b.subscribe((event) => event.type === 'user_changed' && resolve(event.userId)),
    );
    a.subscribe((event) => event.type === 'user_changed' && seenA.push(event.userId));
    await a.publish({ type: 'user_changed', userId: 'u-42' });
    expect(await received).toBe('u-42');
    expect(seenA).toEqual(['u-42']);
    await a.close();
    await b.close();
  });

  // Operator red-team 2026-12h F3: an instance whose own connection to Redis failed delivered its
  // events locally only; the others, whose subscriptions never dropped, were never told.
  it('an instance whose publish failed tells the others once Redis takes its publishes again', {
    timeout: 20_000,
  }, async () => {
    const redisUrl = new URL(REDIS_URL ?? '');
    const proxy = await startFreezableProxy(Number(redisUrl.port || 6379));
    let resyncs = 0;
    const types: string[] = [];
    const other = await createRedisEventBus(REDIS_URL ?? '', {
      onResubscribed: () => {
        resyncs += 1;
      },
    });
    other.subscribe((event) => void types.push(event.type));
    const throughProxy = new URL(redisUrl);
    throughProxy.hostname = '127.0.0.1';
    throughProxy.port = String(proxy.port);
    const cut = await createRedisEventBus(throughProxy.toString(), { warn: () => {} });
    try {
      proxy.freeze();
      // Delivered here only: the publish to Redis times out (2 s).
      await cut.publish({ type: 'user_changed', userId: 'u-lost' });
      proxy.thaw();
      const deadline = Date.now() + 15_000;
      while (resyncs === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(resyncs).toBe(1);
      // Never delivered to subscribers: the frame is the bus's own.
      expect(types).not.toContain('publishes_lost');
    } finally {
      proxy.thaw();
      await cut.close();
      await other.close();
      await proxy.close();
    }
  });
});

describe.runIf(REDIS_URL && DATABASE_URL)('two instances on PostgreSQL + Redis', () => {
  let drop: () => Promise<void>;
  let one: FastifyInstance;
  let two: FastifyInstance;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl('postgres');
    drop = database.drop;
    const shared = {
      databaseUrl: database.url,
      redisUrl: REDIS_URL,
      secretKey: new Uint8Array(randomBytes(32)),
      loginMaxFailuresPerAccount: 2,
    };
    one = await buildTestServer(shared);
    two = await buildTestServer(shared);
  });
  afterAll(async () => {
    await one.close();
    await two.close();
    await drop();
  });

  it('removing an OAuth client on one instance ends its client_credentials tokens on the other at once', async () => {
    const created = await gatehouseCore(one.gatehouse).oauthClients.create(
      { name: 'Sync', confidential: true, grantTypes: ['client_credentials'], scopes: ['me'] },
      { actorId: null },
    );
    const issued = await postToken(one, {
      grant_type: 'client_credentials',
      client_id: created.client.clientId,
      client_secret: String(created.clientSecret),
    });
    const token = issued.json().access_token;
    const onTwo = gatehouseCore(two.gatehouse).clientCredentials;
    // Verified and its client cached on the other instance, so only the bus can tell it.
    expect(await onTwo.verify(token)).toMatchObject({ ok: true });
    expect(onTwo.peek(token)).toMatchObject({ ok: true });
    await gatehouseCore(one.gatehouse).oauthClients.remove(created.client.clientId, { actorId: null });
    await expect
      .poll(async () => await onTwo.verify(token), { timeout: 2000, interval: 20 })
      .toEqual({ ok: false, reason: 'client_removed' });
  });

  it('a logout on one instance kills the token on the other at once', async () => {
    const user = await createUser(one);
    const tokens = await login(one, user.email);
    const me = (app: FastifyInstance) =>
      app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) });
    expect((await me(two)).statusCode).toBe(200);
    await one.inject({ method: 'POST', url: '/auth/logout', headers: bearer(tokens.access_token) });
    await expect.poll(async () => (await me(two)).statusCode, { timeout: 2000, interval: 20 }).toBe(401);
  });

  it('shares failed-login counters', async () => {
    const user = await createUser(one);
    await postToken(one, { grant_type: 'password', username: user.email, password: 'wrong password!' });
    await postToken(two, { grant_type: 'password', username: user.email, password: 'wrong password!' });
    const limited = await postToken(one, {
      grant_type: 'password',
      username: user.email,
      password: user.password,
    });
    expect(limited.statusCode).toBe(429);
  });
});
