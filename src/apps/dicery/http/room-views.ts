import { Type } from 'typebox';
import type { RoomEvent } from '../core/room-bus.js';
import type { PlayerRecord, RoomRecord } from '../storage/room-store.js';

const iso = (ms: number) => new Date(ms).toISOString();

const PlayerRefSchema = Type.Object({ id: Type.String(), name: Type.String() });

const RollTermSchema = Type.Union([
  Type.Object({
    kind: Type.Literal('dice'),
    sign: Type.Union([Type.Literal(1), Type.Literal(-1)]),
    count: Type.Integer(),
    sides: Type.Integer(),
    keep: Type.Union([
      Type.Object({
        mode: Type.Union([Type.Literal('kh'), Type.Literal('kl'), Type.Literal('dh'), Type.Literal('dl')]),
        n: Type.Integer(),
      }),
      Type.Null(),
    ]),
    dice: Type.Array(Type.Object({ value: Type.Integer(), kept: Type.Boolean() }), {
      description: 'Every die in roll order; `kept: false` was discarded by a keep/drop rule',
    }),
    subtotal: Type.Integer({ description: 'Sum of the kept dice, before `sign`' }),
  }),
  Type.Object({
    kind: Type.Literal('constant'),
    sign: Type.Union([Type.Literal(1), Type.Literal(-1)]),
    value: Type.Integer(),
  }),
]);

/** A roll as `POST /rooms/{code}/rolls`, `GET /rooms/{code}` and the `roll` event show it. */
export const RollSchema = Type.Object(
  {
    id: Type.Integer({
      description: 'Sequence number of the event within this room (the SSE `id:` of its `roll` event)',
    }),
    player: PlayerRefSchema,
    notation: Type.String(),
    label: Type.Union([Type.String(), Type.Null()]),
    terms: Type.Array(RollTermSchema),
    modifier: Type.Integer({ description: 'Signed sum of the constant terms' }),
    total: Type.Integer(),
    rolled_at: Type.String({ format: 'date-time' }),
  },
  { description: 'Rolled on the server with a CSPRNG' },
);

/** A room as the API shows it. */
export const RoomSchema = Type.Object({
  code: Type.String({ description: '8 characters from 23456789ABCDEFGHJKMNPQRSTUVWXYZ' }),
  name: Type.String(),
  state: Type.Union([Type.Literal('open'), Type.Literal('closed')]),
  created_at: Type.String({ format: 'date-time' }),
});

/** A present player as `GET /rooms/{code}` lists them. */
export const PlayerSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  joined_at: Type.String({ format: 'date-time' }),
});

/** The API view of a room. */
export function toRoomView(room: RoomRecord) {
  return { code: room.code, name: room.name, state: room.state, created_at: iso(room.createdAt) };
}

/** The API view of a present player. */
export function toPlayerView(player: PlayerRecord) {
  return { id: player.id, name: player.name, joined_at: iso(player.joinedAt) };
}

/** The API view of a roll: the event's data plus its id. */
export function toRollView(event: RoomEvent<'roll'>) {
  return { id: event.id, ...event.data };
}

/**
 * The `data:` of an SSE message: the event's data plus its `id` and storage time `at`, so a
 * client that keeps events (e.g. rolls) can de-duplicate them by id.
 */
export function toEventPayload(event: RoomEvent): Record<string, unknown> {
  return { id: event.id, ...event.data, at: event.at };
}
