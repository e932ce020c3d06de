import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createMemoryRoomBus,
  type LoggedRoomEvent,
  type RoomBus,
  type RoomEvent,
} from '../../../../src/apps/dicery/core/room-bus.js';
import { createSharedRoomBus } from '../../../../src/apps/dicery/core/shared-room-bus.js';
import { createGatehouse, type Gatehouse } from '../../../../src/gatehouse.js';
import { testConfig } from '../../../../src/testing.js';

function rollEvent(room: string, id: number): RoomEvent {
  return {
    id,
    room,
    type: 'roll',
    at: '2024-01-01T00:00:00.000Z',
    data: {
      player: { id: 'p1', name: 'Ann' },
      notation: '1d20',
      label: null,
      terms: [
        {
          kind: 'dice',
          sign: 1,
          count: 1,
          sides: 20,
          keep: null,
          dice: [{ value: 7, kept: true }],
          subtotal: 7,
        },
      ],
      modifier: 0,
      total: 7,
      rolled_at: '2024-01-01T00:00:00.000Z',
    },
  };
}

/** Resolves once `predicate` holds, polling on the event loop (no fixed sleeps). */
async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  await vi.waitFor(
    () => {
      if (!predicate()) throw new Error('not yet');
    },
    { timeout: timeoutMs, interval: 5 },
  );
}

describe('createMemoryRoomBus', () => {
  it('delivers a room’s events only to that room’s subscribers', async () => {
    const bus = createMemoryRoomBus();
    const a: LoggedRoomEvent[] = [];
    const b: LoggedRoomEvent[] = [];
    bus.subscribe('AAAA2222', (event) => a.push(event));
    bus.subscribe('BBBB2222', (event) => b.push(event));
    await bus.publish(rollEvent('AAAA2222', 1));
    expect(a.map((e) => e.id)).toEqual([1]);
    expect(b).toEqual([]);
  });

  it('delivers synchronously, inside publish', () => {
    const bus = createMemoryRoomBus();
    const seen: number[] = [];
    bus.subscribe('AAAA2222', (event) => seen.push(event.id));
    void bus.publish(rollEvent('AAAA2222', 1));
    expect(seen).toEqual([1]);
  });

  it('stops delivering after unsubscribe, and unsubscribe is idempotent', async () => {
    const bus = createMemoryRoomBus();
    const seen: number[] = [];
    const unsubscribe = bus.subscribe('AAAA2222', (event) => seen.push(event.id));
    await bus.publish(rollEvent('AAAA2222', 1));
    unsubscribe();
    unsubscribe();
    await bus.publish(rollEvent('AAAA2222', 2));
    expect(seen).toEqual([1]);
    expect(bus.subscriberCount('AAAA2222')).toBe(0);
  });

  it('fans every event out to all 5000 subscribers of one room', async () => {
    const bus = createMemoryRoomBus();
    const counters = Array.from({ length: 5000 }, () => ({ received: 0 }));
    for (const counter of counters) {
      bus.subscribe('AAAA2222', () => {
        counter.received++;
      });
    }
    expect(bus.subscriberCount('AAAA2222')).toBe(5000);
    for (let id = 1; id <= 100; id++) await bus.publish(rollEvent('AAAA2222', id));
    // Speed is measured by bench/sse-fanout.mjs, never asserted here (machines are noisy).
    expect(counters.every((counter) => counter.received === 100)).toBe(true);
  });

  it('lets a handler unsubscribe itself during delivery without disturbing the others', async () => {
    const bus = createMemoryRoomBus();
    const seen: string[] = [];
    const unsubscribeFirst = bus.subscribe('AAAA2222', () => {
      seen.push('first');
      unsubscribeFirst();
    });
    bus.subscribe('AAAA2222', () => seen.push('second'));
    await bus.publish(rollEvent('AAAA2222', 1));
    await bus.publish(rollEvent('AAAA2222', 2));
    expect(seen).toEqual(['first', 'second', 'second']);
  });

  it('keeps delivering when a handler throws, and reports the error', async () => {
    const errors: unknown[] = [];
    const bus = createMemoryRoomBus({ onHandlerError: (error) => errors.push(error) });
    const seen: number[] = [];
    bus.subscribe('AAAA2222', () => {
      throw new Error('broken stream');
    });
    bus.subscribe('AAAA2222', (event) => seen.push(event.id));
    await expect(bus.publish(rollEvent('AAAA2222', 1))).resolves.toBeUndefined();
    expect(seen).toEqual([1]);
    expect(errors).toEqual([new Error('broken stream')]);
  });

  it('drops every subscription on close', async () => {
    const bus = createMemoryRoomBus();
    const seen: number[] = [];
    bus.subscribe('AAAA2222', (event) => seen.push(event.id));
    await bus.close();
    await bus.publish(rollEvent('AAAA2222', 1));
    expect(seen).toEqual([]);
  });
});

describe.runIf(process.env.REDIS_URL)('createSharedRoomBus over Redis', () => {
  const url = process.env.REDIS_URL ?? '';
  const buses: RoomBus[] = [];
  const cores: Gatehouse[] = [];

  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
    await Promise.all(cores.splice(0).map((core) => core.close()));
  });

  /** One instance: its own core (as each server process has), with the shared Redis. */
  async function open(): Promise<RoomBus> {
    const core = await createGatehouse(testConfig({ redisUrl: url }), { onWarning: () => {} });
    cores.push(core);
    const bus = await createSharedRoomBus((options) => core.openChannel(options));
    buses.push(bus);
    return bus;
  }

  // A random room per test, so parallel runs sharing one Redis do not see each other.
  const room = () => randomUUID().slice(0, 8).toUpperCase();

  it('delivers locally at once and to other instances through Redis, without echo', async () => {
    const [one, two] = [await open(), await open()];
    const code = room();
    const onOne: number[] = [];
    const onTwo: number[] = [];
    one.subscribe(code, (event) => onOne.push(event.id));
    two.subscribe(code, (event) => onTwo.push(event.id));

    const publishing = one.publish(rollEvent(code, 1));
    expect(onOne).toEqual([1]); // local-first: before any Redis round trip
    await publishing;
    await until(() => onTwo.length === 1);
    expect(onTwo).toEqual([1]);

    // A marker published afterwards proves any echo of event 1 would have arrived by now.
    await two.publish(rollEvent(code, 2));
    await until(() => onOne.length === 2);
    expect(onOne).toEqual([1, 2]);
    expect(onTwo).toEqual([1, 2]);
  });

  it('keeps the event intact across instances', async () => {
    const [one, two] = [await open(), await open()];
    const code = room();
    const received: LoggedRoomEvent[] = [];
    two.subscribe(code, (event) => received.push(event));
    const event = rollEvent(code, 42);
    await one.publish(event);
    await until(() => received.length === 1);
    expect(received[0]).toEqual(event);
  });

  it('ignores other rooms and malformed messages on the channel; an unknown type keeps only its place', async () => {
    const one = await open();
    const code = room();
    const seen: string[] = [];
    one.subscribe(code, (event) => seen.push(`${event.type}#${event.id}`));
    const raw = new Redis(url);
    try {
      await raw.publish('gatehouse:rooms', 'not json');
      await raw.publish('gatehouse:rooms', JSON.stringify({ from: 'x', event: { id: 'nope', room: code } }));
      await raw.publish(
        'gatehouse:rooms',
        JSON.stringify({ from: 'x', event: { ...rollEvent(code, 9), type: 'evil' } }),
      );
      await raw.publish('gatehouse:rooms', JSON.stringify({ from: 'x', event: rollEvent(room(), 8) }));
      await raw.publish('gatehouse:rooms', JSON.stringify({ from: 'x', event: rollEvent(code, 7) }));
    } finally {
      raw.disconnect();
    }
    await until(() => seen.length > 1);
    // 'evil' may be a newer version's type: passed on as its sequence number, nothing to show.
    expect(seen).toEqual(['(unknown)#9', 'roll#7']);
  });
});
