import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RoomEvent } from '../../src/apps/dicery/core/room-bus.js';
import type { GatehouseEvent } from '../../src/events/event-bus.js';
import { MAX_CHANNEL_MESSAGE_LENGTH, openRedisChannel } from '../../src/events/redis-channel.js';
import {
  type CoreWarn,
  createRedisConnections,
  defaultRedisTimings,
  type RedisConnections,
} from '../../src/events/redis-connections.js';
import { createRedisEventBus, gatehouseEventSchema } from '../../src/events/redis-event-bus.js';

const url = process.env.REDIS_URL ?? '';

const joined = (room: string, id: number): RoomEvent => ({
  id,
  room,
  type: 'player_joined',
  at: '2024-01-01T00:00:00.000Z',
  data: { player: { id: 'p1', name: 'Ann' } },
});

/** Every kind of junk the channel must survive, as raw strings. */
function junk(room: string): string[] {
  const envelope = (event: unknown) => JSON.stringify({ from: 'other-instance', event });
  return [
    'not json',
    'null',
    '[]',
    '42',
    '"a string"',
    JSON.stringify({ from: 'x', event: null }),
    JSON.stringify({ from: 7, event: { type: 'user_changed', userId: 'u' } }),
    JSON.stringify({ event: { type: 'user_changed', userId: 'u' } }),
    envelope({ type: 'sessions_revoked' }),
    envelope({ type: 'sessions_revoked', sessions: [{ id: 5, expiresAt: 1 }] }),
    envelope({ type: 'sessions_revoked', sessions: 'all' }),
    envelope({ type: 'user_changed' }),
    envelope({ type: 'user_changed', userId: 'x'.repeat(100_000) }),
    envelope({ type: 'nope', userId: 'u' }),
    envelope({ ...joined(room, 1), type: 'evil' }),
    envelope({ ...joined(room, 1), id: 'one' }),
    envelope({ ...joined(room, 1), data: { player: null } }),
    envelope({ ...joined(room, 1), type: 'roll' }),
    envelope({
      ...joined(room, 1),
      type: 'player_left',
      data: { player: { id: 'p', name: 'A' }, reason: 'x' },
    }),
    `{"from":"x","event":"${'y'.repeat(MAX_CHANNEL_MESSAGE_LENGTH)}"}`,
    '{"from":"x","event":{"__proto__":{"type":"user_changed"}}}',
  ];
}

async function publishRaw(channel: string, messages: readonly string[]): Promise<void> {
  const raw = new Redis(url);
  try {
    for (const message of messages) await raw.publish(channel, message);
  } finally {
    raw.disconnect();
  }
}

describe.runIf(url)('openRedisChannel', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function connections(warn: CoreWarn): RedisConnections {
    const opened = createRedisConnections({ url, ...defaultRedisTimings }, warn);
    cleanups.push(() => opened.close());
    return opened;
  }

  it('drops every malformed message with one rate-limited warning, and valid ones still flow', async () => {
    const warn = vi.fn<CoreWarn>();
    const name = `gatehouse:test:${randomUUID()}`;
    const received: GatehouseEvent[] = [];
    const channel = openRedisChannel({
      connections: connections(warn),
      name,
      schema: gatehouseEventSchema,
      deliver: (event) => received.push(event),
      warn,
    });
    cleanups.push(() => channel.close());
    await channel.subscribed;
    const valid = { type: 'user_changed', userId: 'u-1' } as const;
    await publishRaw(name, [...junk('ROOM'), JSON.stringify({ from: 'other', event: valid })]);
    await vi.waitFor(() => expect(received).toHaveLength(1));
    expect(received).toEqual([valid]);
    const drops = warn.mock.calls.filter(([message]) => message.startsWith('Dropped malformed'));
    expect(drops).toHaveLength(1);
  });

  it('skips its own echo and delivers to another instance', async () => {
    const warn = vi.fn<CoreWarn>();
    const name = `gatehouse:test:${randomUUID()}`;
    const one: GatehouseEvent[] = [];
    const two: GatehouseEvent[] = [];
    const connectionsOfA = connections(warn);
    const a = openRedisChannel({
      connections: connectionsOfA,
      name,
      schema: gatehouseEventSchema,
      deliver: (e) => one.push(e),
      warn,
    });
    const connectionsOfB = connections(warn);
    const b = openRedisChannel({
      connections: connectionsOfB,
      name,
      schema: gatehouseEventSchema,
      deliver: (e) => two.push(e),
      warn,
    });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    await Promise.all([a.subscribed, b.subscribed]);
    // Subscribed says the subscriber connection is ready; a publish goes out on the command
    // connection, which on a busy machine may still be connecting (publish then answers false and
    // delivers locally, as it should: CI once caught that moment).
    await vi.waitFor(() => expect(connectionsOfA.usable() && connectionsOfB.usable()).toBe(true));
    expect(await a.publish({ type: 'user_changed', userId: 'from-a' })).toBe(true);
    expect(await b.publish({ type: 'user_changed', userId: 'from-b' })).toBe(true);
    await vi.waitFor(() => expect(one).toHaveLength(1));
    await vi.waitFor(() => expect(two).toHaveLength(1));
    expect(one).toEqual([{ type: 'user_changed', userId: 'from-b' }]);
    expect(two).toEqual([{ type: 'user_changed', userId: 'from-a' }]);
    // Metrics: each side received one message from the other (its own echo is not counted), with
    // the lag measured from the publish time the envelope carries.
    for (const side of [connectionsOfA, connectionsOfB]) {
      const stats = side.stats();
      expect(stats.messages).toBe(1);
      expect(stats.lagSecondsTotal).toBeGreaterThanOrEqual(0);
      expect(stats.reconnects).toBe(0);
    }
  });

  it('keeps the client alive when deliver throws', async () => {
    const warn = vi.fn<CoreWarn>();
    const name = `gatehouse:test:${randomUUID()}`;
    let calls = 0;
    const channel = openRedisChannel({
      connections: connections(warn),
      name,
      schema: gatehouseEventSchema,
      deliver: () => {
        calls += 1;
        throw new Error('broken consumer');
      },
      warn,
    });
    cleanups.push(() => channel.close());
    await channel.subscribed;
    const message = JSON.stringify({ from: 'other', event: { type: 'user_changed', userId: 'u' } });
    await publishRaw(name, [message, message]);
    await vi.waitFor(() => expect(calls).toBe(2));
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('failed'), { error: 'broken consumer' });
  });
});

describe.runIf(url)('the buses on their real channels', () => {
  it('the event bus survives junk on gatehouse:events, isolates handlers, and still delivers', async () => {
    const warn = vi.fn<CoreWarn>();
    const bus = await createRedisEventBus(url, { warn });
    try {
      const seen: string[] = [];
      bus.subscribe(() => {
        throw new Error('one broken handler');
      });
      bus.subscribe((event) => {
        if (event.type === 'user_changed') seen.push(event.userId);
      });
      const marker = `u-${randomUUID()}`;
      await publishRaw('gatehouse:events', [
        ...junk('ROOM'),
        JSON.stringify({ from: 'other', event: { type: 'user_changed', userId: marker } }),
      ]);
      await vi.waitFor(() => expect(seen).toContain(marker));
      expect(warn).toHaveBeenCalledWith('Event handler threw on user_changed', {
        error: 'one broken handler',
      });
    } finally {
      await bus.close();
    }
  });
});
