import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GatehouseConfig } from '../../src/config/config.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { type PrivateRedis, runPrivateRedisTests, startPrivateRedis } from '../support/private-redis.js';

/**
 * The Redis calls added with OAuth service clients: the `client_credentials` limits (counter
 * store), the `oauth_client_removed` broadcast that evicts the live-client cache, and the
 * forgot-password budgets, against a private Redis that is frozen (SIGSTOP) and then killed. Redis
 * is an accelerator: every request still answers (limits counted locally, the removal applied on
 * this instance at once), and nothing waits longer than one command timeout.
 */
const redisTimings: Partial<GatehouseConfig> = {
  redisCommandTimeoutMs: 300,
  redisConnectTimeoutMs: 500,
  redisMaxReconnectDelayMs: 200,
};
const PER_CLIENT = 3;

function basic(id: string, secret: string): { authorization: string } {
  return {
    authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
  };
}

// The steps of one outage scenario (up, frozen, killed, back), in order.
describe.runIf(runPrivateRedisTests)(
  'OAuth service clients with Redis frozen or killed (private redis-server)',
  { shuffle: false, timeout: 30_000 },
  () => {
    let redis: PrivateRedis;
    let app: FastifyInstance;
    let address = 0;

    beforeAll(async () => {
      redis = await startPrivateRedis();
      app = await buildTestServer({
        redisUrl: redis.url,
        ...redisTimings,
        clientCredentialsPerMinute: PER_CLIENT,
        clientCredentialsPerMinutePerIp: 1000,
      });
      app.get(
        '/catalogue-feed',
        { preHandler: app.auth.require({ allow: ['client'], scopes: ['clothes:read'] }) },
        async () => ({ ok: true }),
      );
      await app.ready();
      await vi.waitFor(() => expect(app.gatehouse.redisState()).toBe('up'), { timeout: 5000 });
    });
    afterAll(async () => {
      await app?.close();
      await redis?.stop();
    });

    const newClient = async () => {
      const created = await gatehouseCore(app.gatehouse).oauthClients.create(
        {
          name: 'Stock sync',
          confidential: true,
          grantTypes: ['client_credentials'],
          scopes: ['clothes:read'],
        },
        { actorId: null },
      );
      return {
        id: created.client.clientId,
        auth: basic(created.client.clientId, String(created.clientSecret)),
      };
    };
    const grant = (auth: { authorization: string }): Promise<LightMyRequestResponse> =>
      app.inject({
        method: 'POST',
        url: '/token',
        remoteAddress: `198.51.100.${(address++ % 200) + 1}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth },
        payload: 'grant_type=client_credentials',
      });
    const feed = (token: string) =>
      app.inject({ method: 'GET', url: '/catalogue-feed', headers: { authorization: `Bearer ${token}` } });

    /** What must hold whatever Redis does: tokens, limits, removal and recovery mail requests. */
    const flows = async () => {
      const client = await newClient();
      const issued = [];
      for (let n = 0; n < PER_CLIENT; n++) issued.push(await grant(client.auth));
      expect(issued.map((response) => response.statusCode)).toEqual(Array(PER_CLIENT).fill(200));
      // The per-client limit holds (counted in Redis, or locally while it is away).
      const refused = await grant(client.auth);
      expect(refused.statusCode).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      const token = String(issued[0]?.json().access_token);
      expect((await feed(token)).statusCode).toBe(200);
      // Removal: the broadcast may not leave this instance, but its own cache is evicted at once.
      await gatehouseCore(app.gatehouse).oauthClients.remove(client.id, { actorId: null });
      expect((await feed(token)).statusCode).toBe(401);
      const forgot = await app.inject({
        method: 'POST',
        url: '/auth/forgot-password',
        payload: { email: `nobody.${address}@example.com` },
      });
      expect(forgot.statusCode).toBe(202);
    };

    it('works with Redis up', async () => {
      await flows();
    });

    it('works with Redis frozen, without hanging, and uses Redis again after the thaw', async () => {
      redis.freeze();
      try {
        await flows();
        expect(app.gatehouse.redisState()).toBe('down');
      } finally {
        redis.thaw();
      }
      await vi.waitFor(() => expect(app.gatehouse.redisState()).toBe('up'), { timeout: 5000 });
    });

    it('works with Redis killed, and after it restarts', async () => {
      await redis.kill();
      await vi.waitFor(() => expect(app.gatehouse.redisState()).toBe('down'));
      await flows();
      await redis.restart();
      await vi.waitFor(() => expect(app.gatehouse.redisState()).toBe('up'), { timeout: 5000 });
      await flows();
    });
  },
);
