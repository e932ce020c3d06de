import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  createRedisConnections,
  defaultRedisTimings,
  PROBE_INTERVAL_MS,
} from '../../src/events/redis-connections.js';
import { createTestClock } from '../../src/testing.js';

const url = process.env.REDIS_URL;

describe.runIf(url !== undefined)('Redis connections', () => {
  it('warns once at connect when Redis has no maxmemory to cap the counters, and not when it has', async () => {
    // Read-only: the shared Redis's setting is only looked at, never changed.
    const admin = new Redis(url ?? '');
    const [, maxmemory] = (await admin.config('GET', 'maxmemory')) as string[];
    admin.disconnect();
    const warnings: string[] = [];
    const connections = createRedisConnections({ url: url ?? '', ...defaultRedisTimings }, (message) => {
      warnings.push(message);
    });
    try {
      // The check is one CONFIG GET after the first `ready`; a PING after it has its answer.
      await new Promise<void>((resolve) => connections.command.once('ready', () => resolve()));
      await connections.command.ping();
      await connections.command.ping();
      const noted = warnings.filter((message) => message.includes('no maxmemory'));
      expect(noted).toHaveLength(maxmemory === '0' ? 1 : 0);
    } finally {
      await connections.close();
    }
  });

  it('probes a Redis marked down on the injected scheduler, and finds it back up', async () => {
    const clock = createTestClock();
    const warnings: string[] = [];
    const connections = createRedisConnections(
      { url: url ?? '', ...defaultRedisTimings, scheduler: clock },
      (message) => warnings.push(message),
    );
    try {
      await new Promise<void>((resolve) => connections.command.once('ready', () => resolve()));
      connections.markFailed(new Error('a command timed out'));
      expect(connections.usable()).toBe(false);
      // No probe until the test clock says a second has passed (the timer is not a real one).
      await connections.command.ping();
      expect(connections.usable()).toBe(false);
      clock.advance(PROBE_INTERVAL_MS);
      // The probe's PING went out first on the same connection, so it has its answer once ours does.
      await connections.command.ping();
      expect(connections.usable()).toBe(true);
      expect(warnings).toContain('Redis answers again');
    } finally {
      await connections.close();
    }
  });
});
