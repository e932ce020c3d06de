import { Check } from 'typebox/schema';
import { describe, expect, it, vi } from 'vitest';
import {
  createPresence,
  heartbeatMessages,
  MAX_PRESENCE_MESSAGE_LENGTH,
  PRESENCE_COALESCE_MS,
  type PresenceMessage,
  presenceMessageSchema,
} from '../../../../src/apps/dicery/core/presence.js';
import { type LoggedRoomEvent, UNKNOWN_ROOM_EVENT } from '../../../../src/apps/dicery/core/room-bus.js';
import type { RoomEventFrame } from '../../../../src/apps/dicery/core/room-event-schema.js';
import { createSharedRoomBus } from '../../../../src/apps/dicery/core/shared-room-bus.js';
import { MAX_CHANNEL_MESSAGE_LENGTH } from '../../../../src/events/redis-channel.js';
import { createTestClock } from '../../../../src/testing.js';

/**
 * Rolling deploys (ARCHITECTURE.md, "Mixed versions on the bus"): each test feeds the current
 * parsers a message a *newer* instance could send (an extra field, a new event type, a new kind of
 * presence member) and checks that the known part is kept and the rest skipped, never the whole
 * message dropped.
 */

/** A channel opener that hands the test the channel's `deliver` and records what is published. */
function fakeChannel<T>() {
  const sent: T[] = [];
  let deliver: ((message: T) => void) | undefined;
  const open = async (options: { deliver(message: T): void }) => {
    deliver = options.deliver;
    return {
      publish: async (message: T) => {
        sent.push(message);
        return true;
      },
      close: () => {},
    };
  };
  return { open, sent, receive: (message: T) => deliver?.(message) };
}

const at = '2026-12-03T08:00:00.000Z';
const player = { id: 'p1', name: 'Ann' };
const roll = {
  player,
  notation: '1d6',
  label: null,
  terms: [{ kind: 'constant', sign: 1, value: 4 }],
  modifier: 4,
  total: 4,
  rolled_at: at,
};

describe('the room bus reading a newer instance’s events', () => {
  const open = async () => {
    const channel = fakeChannel<RoomEventFrame>();
    const warnings: string[] = [];
    const bus = await createSharedRoomBus((options) => channel.open(options), {
      onWarning: (message) => warnings.push(message),
    });
    const received: LoggedRoomEvent[] = [];
    bus.subscribe('ROOM23', (event) => received.push(event));
    return { bus, channel, warnings, received };
  };

  it('keeps a known event that carries fields it does not know', async () => {
    const { channel, received } = await open();
    channel.receive({
      id: 1,
      room: 'ROOM23',
      type: 'roll',
      at,
      data: { ...roll, crit: true },
      origin: 'v9',
    } as RoomEventFrame);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ id: 1, type: 'roll', data: { total: 4 } });
  });

  it('passes an unknown type on as its place in the sequence, counted and logged once per type', async () => {
    const { bus, channel, warnings, received } = await open();
    for (const id of [2, 3]) {
      channel.receive({ id, room: 'ROOM23', type: 'dice_pool_created', at, data: { pool: 'd6' } });
    }
    channel.receive({ id: 4, room: 'ROOM23', type: 'player_joined', at, data: { player } });
    expect(received).toEqual([
      { id: 2, room: 'ROOM23', type: UNKNOWN_ROOM_EVENT, data: { type: 'dice_pool_created' }, at },
      { id: 3, room: 'ROOM23', type: UNKNOWN_ROOM_EVENT, data: { type: 'dice_pool_created' }, at },
      { id: 4, room: 'ROOM23', type: 'player_joined', at, data: { player } },
    ]);
    expect(warnings.filter((line) => line.includes('dice_pool_created'))).toHaveLength(1);
    expect(bus.skipped()).toEqual({ unknown: 2, malformed: 0 });
  });

  it('drops a known type whose data fails the schema, and never sends an unknown event back out', async () => {
    const { bus, channel, received } = await open();
    channel.receive({ id: 5, room: 'ROOM23', type: 'roll', at, data: { player } });
    expect(received).toEqual([]);
    expect(bus.skipped()).toEqual({ unknown: 0, malformed: 1 });
    await bus.publish({ id: 6, room: 'ROOM23', type: UNKNOWN_ROOM_EVENT, data: { type: 'x' }, at });
    expect(channel.sent).toEqual([]);
  });

  it('logs at most 32 distinct types, however many are invented', async () => {
    const { channel, warnings } = await open();
    for (let n = 0; n < 100; n++) channel.receive({ id: n, room: 'ROOM23', type: `t${n}`, at, data: {} });
    expect(warnings).toHaveLength(32);
  });
});

describe('presence reading a newer instance’s messages', () => {
  const open = async () => {
    const channel = fakeChannel<PresenceMessage>();
    const clock = createTestClock();
    const onWarning = vi.fn<(message: string) => void>();
    const presence = await createPresence({
      openChannel: (options) => channel.open(options),
      scheduler: clock,
      heartbeatMs: 1000,
      onWarning,
    });
    return { presence, channel, clock, onWarning };
  };

  it('counts the members it knows and ignores a new kind, with extra fields anywhere', async () => {
    const { presence, channel, onWarning } = await open();
    const message = {
      instance: 'newer',
      full: true,
      version: 9,
      rooms: [
        {
          code: 'ROOM23',
          members: ['host', 'player:p1', 'spectator:1', 'spectator:2', 'bot:dealer', 'narrator'],
          topic: 'ignored',
        },
      ],
    };
    expect(Check(presenceMessageSchema, message)).toBe(true);
    channel.receive(message);
    expect(presence.online('ROOM23')).toEqual({ playerIds: ['p1'], host: true, spectators: 2 });
    expect(presence.ignoredMembers()).toBe(2);
    expect(onWarning).toHaveBeenCalledTimes(1);
    presence.close();
  });

  it('applies a heartbeat sent in parts as one full state once every part arrived', async () => {
    const { presence, channel } = await open();
    channel.receive({
      instance: 'other',
      full: false,
      rooms: [
        { code: 'GONE23', members: ['player:p9'] },
        { code: 'STAY23', members: ['player:p1'] },
      ],
    });
    const beat = { id: 'b1', parts: 2 };
    channel.receive({
      instance: 'other',
      full: false,
      rooms: [{ code: 'STAY23', members: ['player:p1', 'player:p2'] }],
      beat: { ...beat, part: 0 },
    });
    // One part: GONE23 may be in the next one.
    expect(presence.online('GONE23').playerIds).toEqual(['p9']);
    channel.receive({
      instance: 'other',
      full: false,
      rooms: [{ code: 'NEW234', members: ['host'] }],
      beat: { ...beat, part: 1 },
    });
    expect(presence.online('GONE23').playerIds).toEqual([]);
    expect(presence.online('STAY23').playerIds).toEqual(['p1', 'p2']);
    expect(presence.online('NEW234').host).toBe(true);
    presence.close();
  });
});

describe('spectators on several instances', () => {
  it('counts each instance’s spectators of one room apart (short keys never collide)', async () => {
    const peers: { receive(message: PresenceMessage): void }[] = [];
    const open = async () => {
      const clock = createTestClock();
      const self = { receive: (_message: PresenceMessage) => {} };
      const presence = await createPresence({
        openChannel: async (options) => {
          self.receive = options.deliver;
          return {
            publish: async (message: PresenceMessage) => {
              for (const peer of peers) if (peer !== self) peer.receive(message);
              return true;
            },
            close: () => {},
          };
        },
        scheduler: clock,
        heartbeatMs: 1000,
        onWarning: () => {},
      });
      peers.push(self);
      return { presence, clock };
    };
    const [{ presence: a }, { presence: b, clock: clockB }] = [await open(), await open()];
    a.connectSpectator('ROOM23');
    b.connectSpectator('ROOM23');
    b.connectSpectator('ROOM23');
    // B's second spectator travels with B's next coalesced message (see PRESENCE_COALESCE_MS).
    clockB.advance(PRESENCE_COALESCE_MS);
    expect(a.online('ROOM23').spectators).toBe(3);
    expect(b.online('ROOM23').spectators).toBe(3);
    a.close();
    b.close();
  });
});

describe('presence messages at the caps', () => {
  /** A room at every cap: 100 players (MAX_PLAYERS_PER_ROOM's top), the host, 20 links × 50 spectators. */
  const fullRoom = (code: string) => ({
    code,
    members: [
      'host',
      ...Array.from({ length: 100 }, () => `player:${crypto.randomUUID()}`),
      // As connectSpectator makes them: the instance's 12-character prefix and a counter.
      ...Array.from({ length: 20 * 50 }, (_, n) => `spectator:0123456789ab-${n.toString(36)}`),
    ],
  });

  it('fits one room at its caps in a small fraction of a message', () => {
    const size = JSON.stringify(fullRoom('ROOM23')).length;
    expect(size).toBeLessThan(MAX_PRESENCE_MESSAGE_LENGTH / 4);
  });

  it('sends a room at MAX_PLAYERS_PER_ROOM’s maximum (10 000) whole, under the channel’s cap', () => {
    const room = fullRoom('ROOM23');
    room.members.push(...Array.from({ length: 10_000 - 100 }, () => `player:${crypto.randomUUID()}`));
    const messages = heartbeatMessages([room, fullRoom('OTHER2')]);
    const largest = Math.max(
      ...messages.map(
        (message) =>
          JSON.stringify({
            from: crypto.randomUUID(),
            at: Date.now(),
            event: { instance: crypto.randomUUID(), ...message },
          }).length,
      ),
    );
    expect(largest).toBeLessThan(MAX_CHANNEL_MESSAGE_LENGTH);
    for (const message of messages)
      expect(Check(presenceMessageSchema, { instance: 'i', ...message })).toBe(true);
  });

  it('splits a heartbeat too large for one message into parts under the limit, each room whole', () => {
    const rooms = Array.from({ length: 40 }, (_, n) => fullRoom(`R${String(n).padStart(5, '0')}`));
    const messages = heartbeatMessages(rooms);
    expect(messages.length).toBeGreaterThan(1);
    for (const message of messages) {
      expect(message.full).toBe(false);
      expect(JSON.stringify({ instance: crypto.randomUUID(), ...message }).length).toBeLessThanOrEqual(
        MAX_PRESENCE_MESSAGE_LENGTH,
      );
      expect(Check(presenceMessageSchema, { instance: 'i', ...message })).toBe(true);
    }
    expect(messages.flatMap((message) => message.rooms)).toEqual(rooms);
    expect(new Set(messages.map((message) => message.beat?.id)).size).toBe(1);
    expect(messages.map((message) => message.beat?.part)).toEqual(messages.map((_, n) => n));
    expect(heartbeatMessages(rooms.slice(0, 2))).toEqual([{ full: true, rooms: rooms.slice(0, 2) }]);
  });
});
