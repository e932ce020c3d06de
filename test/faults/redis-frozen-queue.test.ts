import { Type } from 'typebox';
import { describe, expect, it } from 'vitest';
import { openRedisChannel } from '../../src/events/redis-channel.js';
import {
  createRedisConnections,
  MAX_PENDING_COMMANDS,
  PROBE_INTERVAL_MS,
} from '../../src/events/redis-connections.js';
import { createTestClock } from '../../src/testing.js';
import { runPrivateRedisTests, startPrivateRedis } from '../support/private-redis.js';

/**
 * A frozen Redis (SIGSTOP: the socket stays open, nothing answers) against one instance's
 * connections. Commands ioredis wrote to such a socket stay in its command queue after they time
 * out, waiting for answers that never come; what goes into that queue must stop growing however
 * long the freeze lasts. Uses a private redis-server; the shared one is never frozen.
 */
describe.runIf(runPrivateRedisTests)('a frozen Redis: the outgoing command queue stays bounded', () => {
  it('publishes stop at the first timeout, probes do not pile up, and it recovers after the thaw', async () => {
    const redis = await startPrivateRedis();
    const clock = createTestClock();
    const warnings: string[] = [];
    const connections = createRedisConnections(
      {
        url: redis.url,
        commandTimeoutMs: 200,
        connectTimeoutMs: 300,
        maxReconnectDelayMs: 200,
        scheduler: clock,
      },
      (message) => warnings.push(message),
    );
    const channel = openRedisChannel({
      connections,
      name: 'gatehouse:frozen-test',
      schema: Type.Object({ n: Type.Integer() }),
      deliver: () => {},
      warn: (message) => warnings.push(message),
    });
    const queued = () => connections.command.commandQueue.length;
    const realDelay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      await channel.subscribed;
      // Healthy first. On a loaded machine (CI, shuffled and parallel) a first command can outlast
      // the 200 ms timeout, which marks Redis down until a probe answers: retry the way the thaw
      // below waits (the probes run on the test clock).
      let healthy = await channel.publish({ n: 0 });
      for (let i = 0; i < 50 && !healthy; i++) {
        clock.advance(PROBE_INTERVAL_MS);
        await realDelay(100);
        healthy = connections.usable() && (await channel.publish({ n: 0 }));
      }
      expect(healthy).toBe(true);
      redis.freeze();
      // A burst while frozen: the first publishes go out and time out; once one has, Redis is
      // marked down and the rest return false without touching the socket.
      const pending = Promise.all(
        Array.from({ length: 2 * MAX_PENDING_COMMANDS }, (_, n) => channel.publish({ n })),
      );
      // Before any has timed out, the number written to the silent socket is capped.
      expect(queued()).toBe(MAX_PENDING_COMMANDS);
      expect((await pending).every((sent) => !sent)).toBe(true);
      expect(connections.usable()).toBe(false);
      const burst = await Promise.all(Array.from({ length: 200 }, (_, n) => channel.publish({ n })));
      expect(burst.every((sent) => !sent)).toBe(true);
      // A long freeze: one probe a second (driven here by the test clock, each given the real time
      // its PING needs to time out).
      const samples: number[] = [];
      for (let i = 0; i < 8; i++) {
        clock.advance(PROBE_INTERVAL_MS);
        await realDelay(300);
        samples.push(queued());
      }
      expect(Math.max(...samples.slice(2))).toBeLessThanOrEqual(Math.max(1, samples[1] ?? 0));
      expect(Math.max(...samples)).toBeLessThanOrEqual(MAX_PENDING_COMMANDS + 1);
      redis.thaw();
      for (let i = 0; i < 50 && !connections.usable(); i++) {
        clock.advance(PROBE_INTERVAL_MS);
        await realDelay(100);
      }
      expect(connections.usable()).toBe(true);
      expect(await channel.publish({ n: 1 })).toBe(true);
    } finally {
      redis.thaw();
      channel.close();
      await connections.close();
      await redis.stop();
    }
  });
});
