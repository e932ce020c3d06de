import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createPresence,
  MAX_PRESENCE_MESSAGE_LENGTH,
  type Presence,
} from '../../../../src/apps/dicery/core/presence.js';
import { createGatehouse, type Gatehouse } from '../../../../src/gatehouse.js';
import { createTestClock, testConfig } from '../../../../src/testing.js';

const { REDIS_URL } = process.env;
if (REDIS_URL === undefined && process.env.REQUIRE_SERVICES === '1') {
  throw new Error('REQUIRE_SERVICES=1: this test needs REDIS_URL');
}

/** Dicery's caps: players per room (default), live watch links per room, streams per link per instance. */
const PLAYERS = 100;
const LINKS = 20;
const STREAMS_PER_LINK = 50;
const HEARTBEAT_MS = 1000;

/**
 * Presence at the caps, across two instances over the shared Redis: rooms full of players and of
 * spectators (20 watch links × 50 streams), enough of them that one heartbeat's full state is larger
 * than one presence message may be, so it travels in parts. The other instance must count every
 * member, and drop a room the sender no longer has once a complete heartbeat says so.
 */
describe.runIf(REDIS_URL)('presence at the caps over Redis', { timeout: 60_000 }, () => {
  const cores: Gatehouse[] = [];
  const presences: Presence[] = [];
  const clockA = createTestClock();
  const clockB = createTestClock();
  let a: Presence;
  let b: Presence;
  /**
   * A's per-change messages stay off Redis while the test fills rooms (each connect sends its
   * room's whole member set: thousands of them would be quadratic traffic on the shared Redis);
   * only its heartbeats go out, so what B knows comes from them alone.
   */
  let heartbeatsOnly = false;
  const sizes: number[] = [];
  const warnings: string[] = [];

  beforeAll(async () => {
    const core = async () => {
      const gatehouse = await createGatehouse(testConfig({ redisUrl: REDIS_URL }), { onWarning: () => {} });
      cores.push(gatehouse);
      await vi.waitFor(() => expect(gatehouse.redisState()).toBe('up'), { timeout: 10_000 });
      return gatehouse;
    };
    const coreB = await core();
    b = await createPresence({
      openChannel: (options) => coreB.openChannel(options),
      scheduler: clockB,
      heartbeatMs: HEARTBEAT_MS,
      onWarning: (message) => warnings.push(message),
    });
    presences.push(b);
    const coreA = await core();
    a = await createPresence({
      openChannel: async (options) => {
        const channel = await coreA.openChannel(options);
        return {
          publish: async (message) => {
            if (heartbeatsOnly && !message.full && message.beat === undefined) return false;
            sizes.push(JSON.stringify(message).length);
            return channel.publish(message);
          },
          close: () => channel.close(),
        };
      },
      scheduler: clockA,
      heartbeatMs: HEARTBEAT_MS,
      onWarning: (message) => warnings.push(message),
    });
    presences.push(a);
  });
  afterAll(async () => {
    for (const presence of presences) presence.close();
    await Promise.all(cores.map((gatehouse) => gatehouse.close()));
  });

  it('counts every player and spectator of rooms at their caps from heartbeats in parts, and drops rooms a complete one omits', async () => {
    heartbeatsOnly = true;
    // Random codes: other suites share this Redis and its presence channel.
    const rooms = Array.from({ length: 28 }, () =>
      randomUUID().replaceAll('-', '').slice(0, 12).toUpperCase(),
    );
    const leave = new Map<string, (() => void)[]>();
    for (const room of rooms) {
      const stops = [a.connect(room, null)];
      for (let n = 0; n < PLAYERS; n++) stops.push(a.connect(room, randomUUID()));
      for (let n = 0; n < LINKS * STREAMS_PER_LINK; n++) stops.push(a.connectSpectator(room));
      leave.set(room, stops);
    }
    sizes.length = 0;
    clockA.advance(HEARTBEAT_MS);
    // More than one message may hold: the heartbeat went in parts, each under the limit.
    expect(sizes.length).toBeGreaterThan(1);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(MAX_PRESENCE_MESSAGE_LENGTH);
    const counted = (room: string) => {
      const online = b.online(room);
      expect(online.playerIds).toHaveLength(PLAYERS);
      expect(online.host).toBe(true);
      expect(online.spectators).toBe(LINKS * STREAMS_PER_LINK);
    };
    await vi.waitFor(() => rooms.forEach(counted), { timeout: 20_000 });

    // Two rooms empty on A without a word to B; the next heartbeat (still in parts) removes them.
    const [gone1, gone2, ...stay] = rooms;
    for (const room of [gone1, gone2]) for (const stop of leave.get(room ?? '') ?? []) stop();
    sizes.length = 0;
    clockA.advance(HEARTBEAT_MS);
    expect(sizes.length).toBeGreaterThan(1);
    await vi.waitFor(
      () => {
        for (const room of [gone1, gone2]) {
          expect(b.online(room ?? '')).toEqual({ playerIds: [], host: false, spectators: 0 });
        }
      },
      { timeout: 20_000 },
    );
    stay.forEach(counted);
    expect(warnings).toEqual([]);
  });
});
