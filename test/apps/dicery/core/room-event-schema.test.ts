import { Value } from 'typebox/value';
import { describe, expect, it } from 'vitest';
import type { RoomEvent } from '../../../../src/apps/dicery/core/room-bus.js';
import { roomEventSchema } from '../../../../src/apps/dicery/core/room-event-schema.js';

const base = { id: 3, room: 'ABCD23', at: '2024-01-01T00:00:00.000Z' };
const player = { id: 'p1', name: 'Ann' };

const valid: RoomEvent[] = [
  { ...base, type: 'player_joined', data: { player } },
  { ...base, type: 'player_left', data: { player, reason: 'kicked' } },
  { ...base, type: 'room_closed', data: {} },
  {
    ...base,
    type: 'roll',
    data: {
      player,
      notation: '2d20kh1+5',
      label: null,
      terms: [
        {
          kind: 'dice',
          sign: 1,
          count: 2,
          sides: 20,
          keep: { mode: 'kh', n: 1 },
          dice: [
            { value: 3, kept: false },
            { value: 17, kept: true },
          ],
          subtotal: 17,
        },
        { kind: 'constant', sign: -1, value: 5 },
      ],
      modifier: -5,
      total: 12,
      rolled_at: '2024-01-01T00:00:00.000Z',
    },
  },
];

describe('roomEventSchema', () => {
  it.each(valid.map((event) => [event.type, event] as const))('accepts a %s event', (_type, event) => {
    expect(Value.Check(roomEventSchema, event)).toBe(true);
  });

  it.each([
    ['a wrong type', { ...base, type: 'evil', data: { player } }],
    ['a type with the data of another', { ...base, type: 'roll', data: { player } }],
    ['a string id', { ...base, id: '3', type: 'player_joined', data: { player } }],
    ['a player without a name', { ...base, type: 'player_joined', data: { player: { id: 'p1' } } }],
    ['an unknown leave reason', { ...base, type: 'player_left', data: { player, reason: 'banned' } }],
    ['a room_closed with data', { ...base, type: 'room_closed', data: { x: 1 } }],
    ['null', null],
  ])('rejects %s', (_name, value) => {
    expect(Value.Check(roomEventSchema, value)).toBe(false);
  });
});
