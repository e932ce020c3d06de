import { connect, createServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { Type } from 'typebox';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openRedisChannel } from '../../src/events/redis-channel.js';
import { createRedisConnections, SUBSCRIBER_PING_INTERVAL_MS } from '../../src/events/redis-connections.js';
import { createTestClock } from '../../src/testing.js';
import { type PrivateRedis, runPrivateRedisTests, startPrivateRedis } from '../support/private-redis.js';

/**
 * A TCP proxy to the private Redis's socket that can silently drop the connection that sent
 * SUBSCRIBE: bytes stop both ways and nothing is reset, as when a NAT or load balancer forgets an
 * idle flow.
 */
function startSubscriberDroppingProxy(socketPath: string) {
  const pairs: { client: Socket; upstream: Socket; subscriber: boolean; dead: boolean }[] = [];
  const server = createServer((client) => {
    const upstream = connect({ path: socketPath });
    const pair = { client, upstream, subscriber: false, dead: false };
    pairs.push(pair);
    client.on('data', (chunk: Buffer) => {
      if (/subscribe/i.test(chunk.toString('latin1'))) pair.subscriber = true;
      if (!pair.dead) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.dead) client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  return new Promise<{ port: number; dropSubscriber(): number; close(): void }>((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address !== null ? address.port : 0,
        dropSubscriber() {
          const live = pairs.filter((pair) => pair.subscriber && !pair.dead);
          for (const pair of live) pair.dead = true;
          return live.length;
        },
        close() {
          for (const pair of pairs) {
            pair.client.destroy();
            pair.upstream.destroy();
          }
          server.close();
        },
      });
    }),
  );
}

describe.runIf(runPrivateRedisTests)(
  'a subscriber connection dropped without a reset (red-team 2026-12l S2)',
  () => {
    let redis: PrivateRedis;
    beforeAll(async () => {
      redis = await startPrivateRedis();
    });
    afterAll(async () => redis?.stop());

    it('is not reconnected for one PING this process was too busy to read the answer of', async () => {
      // Review of S2: the event loop stalled past the command timeout right after a PING, the
      // timeout fired before the waiting PONG was read, and a healthy subscriber was reconnected
      // (its messages meanwhile lost until the resync).
      const clock = createTestClock();
      const warnings: string[] = [];
      const connections = createRedisConnections(
        {
          url: redis.url,
          commandTimeoutMs: 300,
          connectTimeoutMs: 1000,
          maxReconnectDelayMs: 200,
          scheduler: clock,
        },
        (message) => warnings.push(message),
      );
      const channel = openRedisChannel({
        connections,
        name: 'gatehouse:test-stall',
        schema: Type.Object({ n: Type.Integer() }),
        deliver: () => {},
        warn: (message) => warnings.push(message),
      });
      try {
        await channel.subscribed;
        const before = connections.stats().reconnects;
        // The PING goes out, then the loop is busy for twice the timeout before it reads anything.
        clock.advance(SUBSCRIBER_PING_INTERVAL_MS);
        const until = Date.now() + 600;
        while (Date.now() < until) {
          // busy
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
        // The next PING is answered: the miss is forgiven.
        clock.advance(SUBSCRIBER_PING_INTERVAL_MS);
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(warnings.filter((message) => message.includes('did not answer PING'))).toEqual([]);
        expect(connections.stats().reconnects).toBe(before);
        expect(connections.state()).toBe('up');
      } finally {
        channel.close();
        await connections.close();
      }
    });

    it('is found by its PING within seconds, reconnected, and messages flow again', async () => {
      const proxy = await startSubscriberDroppingProxy(redis.socketPath);
      const warnings: string[] = [];
      const connections = createRedisConnections(
        {
          url: `redis://127.0.0.1:${proxy.port}`,
          commandTimeoutMs: 500,
          connectTimeoutMs: 1000,
          maxReconnectDelayMs: 200,
        },
        (message) => warnings.push(message),
      );
      const received: number[] = [];
      const channel = openRedisChannel({
        connections,
        name: 'gatehouse:test-events',
        schema: Type.Object({ n: Type.Integer() }),
        deliver: (message) => received.push(message.n),
        warn: (message) => warnings.push(message),
      });
      const other = new Redis(redis.clientOptions);
      try {
        await channel.subscribed;
        // Another instance publishing, straight to Redis.
        const send = (n: number) =>
          other.publish(
            'gatehouse:test-events',
            JSON.stringify({ from: 'other', at: Date.now(), event: { n } }),
          );
        await send(1);
        await vi.waitFor(() => expect(received).toEqual([1]));

        expect(proxy.dropSubscriber()).toBe(1);
        await send(2);
        // Before: nothing noticed it for the ≈ 2 h of TCP keepalive; received stayed [1] and the
        // state read "up". Now two PING intervals, the command timeout, and the reconnect.
        let n = 3;
        await vi.waitFor(
          async () => {
            await send(n++);
            expect(received.length).toBeGreaterThan(1);
          },
          { timeout: 2 * SUBSCRIBER_PING_INTERVAL_MS + 5_000, interval: 250 },
        );
        expect(warnings).toContain('Redis subscriber connection did not answer PING twice; reconnecting it');
        expect(connections.state()).toBe('up');
      } finally {
        other.disconnect();
        channel.close();
        await connections.close();
        proxy.close();
      }
    }, 30_000);
  },
);
