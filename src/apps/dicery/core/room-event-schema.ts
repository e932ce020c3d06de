import { type Static, Type } from 'typebox';
import { Check } from 'typebox/schema';
import {
  type LoggedRoomEvent,
  ROOM_EVENT_TYPES,
  type RoomEvent,
  type RoomEventType,
  UNKNOWN_ROOM_EVENT,
} from './room-bus.js';

/*
 * The schema of a {@link RoomEvent}, for events that arrive from outside the process (Redis).
 * It mirrors the TypeScript type field by field; `parseRoomEvent`'s return type makes the compiler
 * check that whatever passes the schema is a RoomEvent, so the two cannot drift apart silently.
 * Unknown extra fields are allowed (TypeBox's default) so a newer instance in a rolling deploy can
 * add one without older instances dropping its events.
 */

const Text = Type.String({ maxLength: 10_000 });
const Sign = Type.Union([Type.Literal(1), Type.Literal(-1)]);
const Player = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }), name: Text });

const RollTerm = Type.Union([
  Type.Object({
    kind: Type.Literal('dice'),
    sign: Sign,
    count: Type.Integer({ minimum: 0 }),
    sides: Type.Integer({ minimum: 0 }),
    keep: Type.Union([
      Type.Object({
        mode: Type.Union([Type.Literal('kh'), Type.Literal('kl'), Type.Literal('dh'), Type.Literal('dl')]),
        n: Type.Integer({ minimum: 0 }),
      }),
      Type.Null(),
    ]),
    dice: Type.Array(Type.Object({ value: Type.Number(), kept: Type.Boolean() })),
    subtotal: Type.Number(),
  }),
  Type.Object({ kind: Type.Literal('constant'), sign: Sign, value: Type.Number() }),
]);

/** A roll in full, as the bus carries it (secret rolls are redacted only when delivered). */
const RollData = Type.Object({
  player: Player,
  notation: Text,
  label: Type.Union([Text, Type.Null()]),
  terms: Type.Array(RollTerm),
  modifier: Type.Number(),
  total: Type.Number(),
  rolled_at: Text,
  visibility: Type.Optional(Type.Union([Type.Literal('room'), Type.Literal('host')])),
  hidden: Type.Optional(Type.Literal(false)),
  hash: Type.Optional(Type.Union([Text, Type.Null()])),
});

/** Fields every room event has besides `type` and `data`. */
const common = {
  id: Type.Integer({ minimum: 0 }),
  room: Type.String({ minLength: 1, maxLength: 64 }),
  at: Text,
};

/** Every {@link RoomEvent} passes this schema, and whatever passes it is a RoomEvent. */
export const roomEventSchema = Type.Union([
  Type.Object({ ...common, type: Type.Literal('player_joined'), data: Type.Object({ player: Player }) }),
  Type.Object({
    ...common,
    type: Type.Literal('player_left'),
    data: Type.Object({
      player: Player,
      reason: Type.Union([Type.Literal('left'), Type.Literal('kicked'), Type.Literal('expired')]),
    }),
  }),
  Type.Object({ ...common, type: Type.Literal('roll'), data: RollData }),
  Type.Object({
    ...common,
    type: Type.Literal('roll_revealed'),
    data: Type.Object({
      roll_id: Type.Integer({ minimum: 0 }),
      roll: RollData,
      salt: Text,
      content: Text,
    }),
  }),
  Type.Object({
    ...common,
    type: Type.Literal('room_closed'),
    data: Type.Record(Type.String(), Type.Never()),
  }),
  Type.Object({
    ...common,
    type: Type.Literal('room_updated'),
    data: Type.Object({ name: Text, locked: Type.Boolean() }),
  }),
  Type.Object({
    ...common,
    type: Type.Literal('host_changed'),
    data: Type.Record(Type.String(), Type.Never()),
  }),
  Type.Object({
    ...common,
    type: Type.Literal('spectator_link_created'),
    data: Type.Object({ link_id: Type.String({ minLength: 1, maxLength: 64 }) }),
  }),
  Type.Object({
    ...common,
    type: Type.Literal('spectator_link_revoked'),
    data: Type.Object({ link_id: Type.String({ minLength: 1, maxLength: 64 }) }),
  }),
]);

/** Narrows a schema-checked value to {@link RoomEvent}; compiling it is the proof they agree. */
export function asRoomEvent(event: Static<typeof roomEventSchema>): RoomEvent {
  return event;
}

/** A room event as it travels on the app channel (the schema's static type). */
export type RoomEventMessage = Static<typeof roomEventSchema>;

/**
 * What the room channel accepts from another instance: any room event's frame (its sequence number,
 * room and type name), whatever the type. An instance must not drop the event of a type it does not
 * know (a newer instance's, during a rolling deploy): that number would look like a gap to every
 * stream, and the known part (its place in the sequence) is still good. {@link readRoomEventMessage}
 * then checks a known type's event in full.
 */
export const roomEventFrameSchema = Type.Object({
  ...common,
  type: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9_]*$' }),
  data: Type.Unknown(),
});

/** A room channel message as the frame schema lets it through. */
export type RoomEventFrame = Static<typeof roomEventFrameSchema>;

/**
 * Reads a frame from the room channel: a known type's event checked against {@link roomEventSchema}
 * (`malformed` when it fails: dropped), or an unknown type's frame as an `UnknownRoomEvent`, which
 * streams count and skip. Extra fields are ignored either way.
 */
export function readRoomEventMessage(
  frame: RoomEventFrame,
): { ok: true; event: LoggedRoomEvent } | { ok: false; type: string } {
  if (ROOM_EVENT_TYPES.has(frame.type as RoomEventType)) {
    return Check(roomEventSchema, frame)
      ? { ok: true, event: asRoomEvent(frame) }
      : { ok: false, type: frame.type };
  }
  return {
    ok: true,
    event: {
      id: frame.id,
      room: frame.room,
      type: UNKNOWN_ROOM_EVENT,
      data: { type: frame.type },
      at: frame.at,
    },
  };
}
