import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GatehouseConfig } from '../../src/config/config.js';
import type { GatehouseEvent } from '../../src/events/event-bus.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD, postToken, uniqueEmail } from '../support/accounts.js';
import { createTestDatabaseUrl } from '../support/databases.js';
import { type PrivateRedis, runPrivateRedisTests, startPrivateRedis } from '../support/private-redis.js';

/**
 * Redis is an accelerator (issue 9, item 3): with it killed or frozen every instance keeps serving
 * sign-up, login, join, roll and logout, and when it comes back the fleet uses it again on its own.
 * These tests own a private redis-server; the machine's shared one is never touched.
 */

// Short timeouts so a frozen Redis costs a fraction of the test timeout; production defaults are seconds.
const redisTimings: Partial<GatehouseConfig> = {
  redisCommandTimeoutMs: 300,
  redisConnectTimeoutMs: 500,
  redisMaxReconnectDelayMs: 200,
};

/** Every flow the issue names, each expected to answer 2xx; returns the statuses by step. */
async function exerciseFlows(app: FastifyInstance): Promise<Record<string, number>> {
  const statuses: Record<string, number> = {};
  const email = uniqueEmail('outage');
  statuses.signUp = (
    await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  ).statusCode;
  const tokenResponse = await postToken(app, { grant_type: 'password', username: email, password: PASSWORD });
  statuses.login = tokenResponse.statusCode;
  const { access_token: token } = tokenResponse.json() as { access_token: string };
  const room = await app.inject({
    method: 'POST',
    url: '/rooms',
    headers: bearer(token),
    payload: { name: 'Outage night' },
  });
  statuses.createRoom = room.statusCode;
  const { code } = room.json() as { code: string };
  const join = await app.inject({
    method: 'POST',
    url: `/rooms/${code}/join`,
    payload: { player: 'Ann', transport: 'bearer' },
  });
  statuses.join = join.statusCode;
  const { access_token: playerToken } = join.json() as { access_token: string };
  statuses.roll = (
    await app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls`,
      headers: bearer(playerToken),
      payload: { notation: '2d6+1' },
    })
  ).statusCode;
  statuses.logout = (
    await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(token) })
  ).statusCode;
  // The logout took effect on this instance although the broadcast could not leave it.
  statuses.afterLogout = (
    await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })
  ).statusCode;
  return statuses;
}

const allWorked = {
  signUp: 201,
  login: 200,
  createRoom: 201,
  join: 201,
  roll: 201,
  logout: 204,
  afterLogout: 401,
};

// The steps of one outage scenario (up, frozen or down, back), in order: `shuffle: false` keeps
// them so when the run shuffles; the file itself runs in any order.
describe.runIf(runPrivateRedisTests)('Redis outage, one instance (SQLite)', { shuffle: false }, () => {
  let redis: PrivateRedis;
  let app: FastifyInstance;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    app = await buildTestServer({ redisUrl: redis.url, ...redisTimings });
  });
  afterAll(async () => {
    await app?.close();
    await redis?.stop();
  });

  it('reports Redis up while it answers', async () => {
    await vi.waitFor(() => expect(app.gatehouse.redisState()).toBe('up'));
    expect(await exerciseFlows(app)).toEqual(allWorked);
  });

  it('keeps every flow working with Redis killed', async () => {
    await redis.kill();
    await vi.waitFor(() => expect(app.gatehouse.redisState()).toBe('down'));
    expect(await exerciseFlows(app)).toEqual(allWorked);
  });

  it('uses Redis again on its own once it is back', async () => {
    await redis.restart();
    await vi.waitFor(() => expect(app.gatehouse.redisState()).toBe('up'), { timeout: 5000 });
    expect(await exerciseFlows(app)).toEqual(allWorked);
  });

  it('keeps every flow working with Redis frozen, then recovers when it thaws', async () => {
    redis.freeze();
    try {
      expect(await exerciseFlows(app)).toEqual(allWorked);
      expect(app.gatehouse.redisState()).toBe('down');
    } finally {
      redis.thaw();
    }
    await vi.waitFor(() => expect(app.gatehouse.redisState()).toBe('up'), { timeout: 5000 });
  });

  it('still limits failed logins while Redis is down, with local counters', async () => {
    await redis.kill();
    await vi.waitFor(() => expect(app.gatehouse.redisState()).toBe('down'));
    const user = await createUser(app);
    const statuses: number[] = [];
    for (let i = 0; i < 7; i += 1) {
      statuses.push(
        (await postToken(app, { grant_type: 'password', username: user.email, password: 'wrong password!' }))
          .statusCode,
      );
    }
    expect(statuses.slice(-1)).toEqual([429]);
    await redis.restart();
  });
});

describe.runIf(runPrivateRedisTests)('start-up with Redis down', () => {
  it('starts, serves, and picks Redis up when it appears', async () => {
    const redis = await startPrivateRedis();
    await redis.kill();
    const app = await buildTestServer({ redisUrl: redis.url, ...redisTimings });
    try {
      expect(app.gatehouse.redisState()).toBe('down');
      expect(await exerciseFlows(app)).toEqual(allWorked);
      await redis.restart();
      await vi.waitFor(() => expect(app.gatehouse.redisState()).toBe('up'), { timeout: 5000 });
    } finally {
      await app.close();
      await redis.stop();
    }
  });
});

describe.runIf(runPrivateRedisTests && process.env.DATABASE_URL?.startsWith('postgres'))(
  'Redis outage, two instances (PostgreSQL)',
  () => {
    let redis: PrivateRedis;
    let drop: () => Promise<void>;
    let one: FastifyInstance;
    let two: FastifyInstance;

    beforeAll(async () => {
      redis = await startPrivateRedis();
      const database = await createTestDatabaseUrl('postgres');
      drop = database.drop;
      const shared = { databaseUrl: database.url, redisUrl: redis.url, ...redisTimings };
      one = await buildTestServer(shared);
      // The same secret, so either instance verifies the other's tokens.
      two = await buildTestServer({ ...shared, secretKey: gatehouseCore(one.gatehouse).config.secretKey });
    });
    afterAll(async () => {
      await one?.close();
      await two?.close();
      await redis?.stop();
      await drop?.();
    });

    it('both keep working while Redis is down, and revocations cross over Redis again after it restarts', async () => {
      await redis.kill();
      await vi.waitFor(() => expect(one.gatehouse.redisState()).toBe('down'));
      expect(await exerciseFlows(one)).toEqual(allWorked);
      expect(await exerciseFlows(two)).toEqual(allWorked);

      await redis.restart();
      await vi.waitFor(
        () => {
          expect(one.gatehouse.redisState()).toBe('up');
          expect(two.gatehouse.redisState()).toBe('up');
        },
        { timeout: 5000 },
      );

      const user = await createUser(one);
      const tokens = await login(one, user.email);
      const me = (app: FastifyInstance) =>
        app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) });
      expect((await me(two)).statusCode).toBe(200);
      // Seen on instance two's bus, which only Redis feeds (the database reload does not publish).
      const heard = new Promise<GatehouseEvent>((resolve) => {
        const off = gatehouseCore(two.gatehouse).bus.subscribe((event) => {
          if (event.type === 'sessions_revoked') {
            off();
            resolve(event);
          }
        });
      });
      const logout = await one.inject({
        method: 'POST',
        url: '/auth/logout',
        headers: bearer(tokens.access_token),
      });
      expect(logout.statusCode).toBe(204);
      expect(await heard).toMatchObject({ type: 'sessions_revoked' });
      expect((await me(two)).statusCode).toBe(401);
    });

    it('re-reads cached users on the other instance once the bus is back: changes sent while Redis was away are lost', async () => {
      // Operator red-team 2026-12h F3: nothing cleared the caches after a re-subscribe, so a
      // `user_changed` published during the outage left instance two serving the old account for
      // up to the cache's 30 s (the hook the user cache documents was never called).
      const user = await createUser(one);
      const tokens = await login(one, user.email);
      const me = (app: FastifyInstance) =>
        app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) });
      const nameOn = async (app: FastifyInstance) =>
        (await me(app)).json<{ full_name: string | null }>().full_name;
      const before = await nameOn(two);
      await redis.kill();
      await vi.waitFor(() => expect(one.gatehouse.redisState()).toBe('down'));
      const renamed = await one.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: bearer(tokens.access_token),
        payload: { full_name: 'Renamed While Redis Was Down' },
      });
      expect(renamed.statusCode).toBe(200);
      // Instance two never heard of it: its cached entry is still fresh.
      expect(await nameOn(two)).toBe(before);
      await redis.restart();
      // Well inside the cache's 30 s: the re-subscribe cleared it.
      await vi.waitFor(async () => expect(await nameOn(two)).toBe('Renamed While Redis Was Down'), {
        timeout: 8000,
        interval: 100,
      });
    });
  },
);
