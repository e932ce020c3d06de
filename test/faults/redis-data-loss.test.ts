import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login, postToken, signIn } from '../support/accounts.js';
import { createTestDatabaseUrl } from '../support/databases.js';
import { type PrivateRedis, runPrivateRedisTests, startPrivateRedis } from '../support/private-redis.js';
import { createRoom, joinAsBot } from '../support/rooms.js';
import { openSse, type SseStream } from '../support/sse-client.js';

/**
 * Fault review, second part: Redis loses its data while two instances use it (`FLUSHALL`, or a
 * failover to an empty replica, which the instances see as the same server with no keys). What
 * Redis holds is only the shared counters (and the probe key); revocations live in each instance's
 * memory, fed by the database, and room events and presence travel by pub/sub, which keeps its
 * subscriptions through a FLUSHALL. A restart without persistence (connections dropped too) is
 * covered by redis-outage.test.ts and dicery-presence-redis.test.ts.
 */
describe.runIf(runPrivateRedisTests && process.env.DATABASE_URL?.startsWith('postgres'))(
  'Redis loses its data (FLUSHALL), two instances on PostgreSQL',
  () => {
    const FAILURES_ALLOWED = 5;
    let redis: PrivateRedis;
    let inspect: Redis;
    let drop: () => Promise<void> = async () => {};
    let one: FastifyInstance;
    let two: FastifyInstance;
    let twoUrl: string;
    const streams: SseStream[] = [];

    beforeAll(async () => {
      redis = await startPrivateRedis();
      inspect = new Redis({ ...redis.clientOptions, maxRetriesPerRequest: 1 });
      const database = await createTestDatabaseUrl('postgres');
      drop = database.drop;
      const shared = {
        databaseUrl: database.url,
        redisUrl: redis.url,
        // Generous: this file is about lost data, not a slow Redis, and a command timing out on a
        // loaded machine would move the counters to local ones mid-test.
        redisCommandTimeoutMs: 5000,
        redisConnectTimeoutMs: 5000,
        redisMaxReconnectDelayMs: 200,
        loginMaxFailuresPerAccount: FAILURES_ALLOWED,
        loginFailureWindow: 600,
        roomJoinsPerMinute: 10_000,
      };
      one = await buildTestServer(shared);
      two = await buildTestServer({ ...shared, secretKey: gatehouseCore(one.gatehouse).config.secretKey });
      await two.listen({ port: 0, host: '127.0.0.1' });
      const address = two.server.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP address');
      twoUrl = `http://127.0.0.1:${address.port}`;
    });
    afterAll(async () => {
      for (const stream of streams) stream.close();
      inspect?.disconnect();
      await one?.close();
      await two?.close();
      await redis?.stop();
      await drop();
    });

    const me = (app: FastifyInstance, token: string) =>
      app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
    const wrongPassword = (email: string) =>
      postToken(one, { grant_type: 'password', username: email, password: 'not the password at all' });

    it('keeps revocations and live room streams; the counters start again from zero (by design)', async () => {
      // Before the loss: a revoked session, a room stream on instance two, and a count of failures.
      const revokedUser = await createUser(one);
      const revoked = await login(one, revokedUser.email);
      expect((await me(two, revoked.access_token)).statusCode).toBe(200);
      expect(
        (await one.inject({ method: 'POST', url: '/auth/logout', headers: bearer(revoked.access_token) }))
          .statusCode,
      ).toBe(204);
      await expect.poll(async () => (await me(two, revoked.access_token)).statusCode).toBe(401);

      const room = await createRoom(one, await signIn(one));
      const player = await joinAsBot(one, room.code, 'Pat');
      const stream = await openSse(`${twoUrl}/rooms/${room.code}/events`, player.headers);
      expect(stream.status).toBe(200);
      streams.push(stream);

      const victim = await createUser(one);
      for (let i = 0; i < FAILURES_ALLOWED - 1; i += 1)
        expect((await wrongPassword(victim.email)).statusCode).toBe(400);
      expect(await inspect.dbsize()).toBeGreaterThan(0);

      await inspect.flushall();
      expect(await inspect.dbsize()).toBe(0);

      // Revocations were never in Redis: still refused on both instances.
      expect((await me(one, revoked.access_token)).statusCode).toBe(401);
      expect((await me(two, revoked.access_token)).statusCode).toBe(401);
      // Pub/sub keeps its subscriptions: a roll on instance one reaches the stream on instance two,
      // and a logout on one reaches two at once.
      const rolled = await one.inject({
        method: 'POST',
        url: `/rooms/${room.code}/rolls`,
        headers: player.headers,
        payload: { notation: '1d20' },
      });
      expect(rolled.statusCode).toBe(201);
      const rollId = String(rolled.json<{ id: number }>().id);
      await stream.next((message) => message.event === 'roll' && message.id === rollId, 10_000);
      const later = await login(one, revokedUser.email);
      expect((await me(two, later.access_token)).statusCode).toBe(200);
      await one.inject({ method: 'POST', url: '/auth/logout', headers: bearer(later.access_token) });
      await expect.poll(async () => (await me(two, later.access_token)).statusCode).toBe(401);
      await expect.poll(() => one.gatehouse.redisState()).toBe('up');
      await expect.poll(() => two.gatehouse.redisState()).toBe('up');

      // The counters are gone with the data: the victim's four failures are forgotten, so the
      // account allows a full window of tries again. By design (docs/operations/fault-review):
      // limits are bounded per window, and only an operator can empty Redis.
      for (let i = 0; i < FAILURES_ALLOWED; i += 1)
        expect((await wrongPassword(victim.email)).statusCode).toBe(400);
      const limited = await wrongPassword(victim.email);
      expect(limited.statusCode).toBe(429);
      expect(limited.json()).toMatchObject({ code: 'TOO_MANY_LOGIN_ATTEMPTS' });
      // The new window lives in Redis with its expiry: shared again, and never locked for ever.
      const keys = await inspect.keys('gatehouse:count:*');
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) expect(await inspect.pttl(key)).toBeGreaterThan(0);
    });
  },
);
