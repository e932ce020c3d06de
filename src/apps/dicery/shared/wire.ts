/**
 * Dicery's wire format: the rooms, players, rolls and room events as they travel between the
 * server and its clients. One definition, used three ways: the TypeBox schemas are the routes'
 * response schemas (and so the OpenAPI document), their `Static` types are what the server's views
 * and room bus build, and the web UI imports the same types (types only, so no TypeBox code lands
 * in its bundle).
 *
 * Browser-safe: imports nothing but TypeBox, and nothing from `node:`.
 *
 * @module
 */
import { type Static, Type } from 'typebox';

const Sign = Type.Union([Type.Literal(1), Type.Literal(-1)], {
  description: '1 to add the term, -1 to subtract it',
});

/** A player as events and rolls show them: the id plus the validated, normalized display name. */
export const PlayerRefSchema = Type.Object({ id: Type.String(), name: Type.String() });
/** {@inheritDoc PlayerRefSchema} */
export type PlayerRef = Static<typeof PlayerRefSchema>;

/** A keep/drop rule of a dice term: keep highest/lowest `n`, or drop highest/lowest `n`. */
export const KeepRuleSchema = Type.Object({
  mode: Type.Union([Type.Literal('kh'), Type.Literal('kl'), Type.Literal('dh'), Type.Literal('dl')]),
  n: Type.Integer(),
});
/** {@inheritDoc KeepRuleSchema} */
export type KeepRuleData = Static<typeof KeepRuleSchema>;

/**
 * One die of a rolled dice term; `kept: false` means a keep/drop rule discarded it, or that it was
 * rerolled away. The flags appear only when true.
 */
export const RolledDieSchema = Type.Object({
  value: Type.Integer(),
  kept: Type.Boolean(),
  exploded: Type.Optional(
    Type.Literal(true, { description: 'Showed its maximum and added the next die (`!`)' }),
  ),
  rerolled: Type.Optional(
    Type.Literal(true, { description: 'Rerolled away (`r`, `ro`); the next die replaces it' }),
  ),
  success: Type.Optional(Type.Literal(true, { description: "Meets the term's success rule" })),
});
/** {@inheritDoc RolledDieSchema} */
export type RolledDie = Static<typeof RolledDieSchema>;

/** A comparison with a die's value, for rerolls and success counting. */
export const ComparisonSchema = Type.Object({
  op: Type.Union([
    Type.Literal('<'),
    Type.Literal('<='),
    Type.Literal('='),
    Type.Literal('>='),
    Type.Literal('>'),
  ]),
  value: Type.Integer(),
});
/** {@inheritDoc ComparisonSchema} */
export type ComparisonData = Static<typeof ComparisonSchema>;

/** Term labels (`1d6 [fire]`), at most 24 characters. */
const TermLabel = Type.Optional(Type.String({ description: "The term's `[label]` in the notation" }));

/** A dice term such as `4d6kh3` with the dice the server rolled. */
export const DiceTermSchema = Type.Object({
  kind: Type.Literal('dice'),
  sign: Sign,
  count: Type.Integer(),
  sides: Type.Integer({ description: 'Faces per die; 3 for Fate dice (`fate: true`: −1, 0, +1)' }),
  fate: Type.Optional(Type.Literal(true)),
  explode: Type.Optional(Type.Literal(true, { description: '`!`: a die showing its maximum adds a die' })),
  reroll: Type.Optional(
    Type.Object(
      { once: Type.Boolean(), when: ComparisonSchema },
      { description: '`r` (while it matches, capped) or `ro` (once)' },
    ),
  ),
  keep: Type.Union([KeepRuleSchema, Type.Null()], { description: 'Keep/drop rule, or null for none' }),
  success: Type.Optional(ComparisonSchema),
  label: TermLabel,
  dice: Type.Array(RolledDieSchema, {
    description: 'Every die in roll order; `kept: false` was discarded by a keep/drop rule or rerolled',
  }),
  subtotal: Type.Integer({
    description: 'Sum of the kept dice (with `success`: how many kept dice succeed), before `sign`',
  }),
});
/** {@inheritDoc DiceTermSchema} */
export type DiceTermData = Static<typeof DiceTermSchema>;

/** A constant term such as `+5`. */
export const ConstantTermSchema = Type.Object({
  kind: Type.Literal('constant'),
  sign: Sign,
  value: Type.Integer(),
  label: TermLabel,
});
/** {@inheritDoc ConstantTermSchema} */
export type ConstantTermData = Static<typeof ConstantTermSchema>;

/** A term of a roll as sent to clients. */
export const RollTermSchema = Type.Union([DiceTermSchema, ConstantTermSchema]);
/** {@inheritDoc RollTermSchema} */
export type RollTermData = Static<typeof RollTermSchema>;

/** Who may see a roll: the whole room, or (a secret roll) only the host and the roller. */
export const RollVisibilitySchema = Type.Union([Type.Literal('room'), Type.Literal('host')], {
  description: '`room` (everyone) or `host` (secret: the host and the roller only)',
});
/** {@inheritDoc RollVisibilitySchema} */
export type RollVisibility = Static<typeof RollVisibilitySchema>;

const ChainHash = Type.Union([Type.String(), Type.Null()], {
  description:
    "SHA-256 (hex) of the roll's entry in the room's signed log (`GET /rooms/{code}/log`); null for rolls older than the log",
});

const rollProperties = {
  player: PlayerRefSchema,
  notation: Type.String({ description: 'The notation as the player sent it (trimmed)' }),
  label: Type.Union([Type.String(), Type.Null()], { description: 'Optional label such as "Stealth check"' }),
  terms: Type.Array(RollTermSchema),
  modifier: Type.Integer({ description: 'Signed sum of the constant terms' }),
  total: Type.Integer(),
  rolled_at: Type.String({ format: 'date-time' }),
  // Optional in the schema only so that clients written before secret rolls and the signed log
  // keep compiling; the server always sends all three.
  visibility: Type.Optional(RollVisibilitySchema),
  hidden: Type.Optional(Type.Literal(false)),
  hash: Type.Optional(ChainHash),
};

/** Payload of a `roll` event: everything needed to show how the server-side total came about. */
export const RollEventDataSchema = Type.Object(rollProperties);
/** {@inheritDoc RollEventDataSchema} */
export type RollEventData = Static<typeof RollEventDataSchema>;

const hiddenRollProperties = {
  player: PlayerRefSchema,
  visibility: Type.Literal('host'),
  hidden: Type.Literal(true, {
    description:
      'A secret roll you may not see: who rolled and when, never the notation, label, dice or total',
  }),
  rolled_at: Type.String({ format: 'date-time' }),
  hash: ChainHash,
};

/** What players other than the roller see of a secret roll: "Pat rolled in secret". */
export const HiddenRollEventDataSchema = Type.Object(hiddenRollProperties);
/** {@inheritDoc HiddenRollEventDataSchema} */
export type HiddenRollEventData = Static<typeof HiddenRollEventDataSchema>;

const RollId = Type.Integer({
  description: 'Sequence number of the event within this room (the SSE `id:` of its `roll` event)',
});

/** A roll in full as `POST /rooms/{code}/rolls`, `GET /rooms/{code}` and the `roll` event show it. */
export const RollSchema = Type.Object(
  { id: RollId, ...rollProperties },
  { description: 'Rolled on the server with a CSPRNG' },
);
/** {@inheritDoc RollSchema} */
export type Roll = Static<typeof RollSchema>;

/** The placeholder of a secret roll the caller may not see. */
export const HiddenRollSchema = Type.Object({ id: RollId, ...hiddenRollProperties });
/** {@inheritDoc HiddenRollSchema} */
export type HiddenRoll = Static<typeof HiddenRollSchema>;

/**
 * A roll as the snapshot, the history and the stream show it to one caller: in full, or
 * (`hidden: true`) as the placeholder of a secret roll they may not see.
 */
export const RollViewSchema = Type.Union([RollSchema, HiddenRollSchema], {
  description: 'A roll, or the placeholder of a secret roll (`hidden: true`)',
});
/** {@inheritDoc RollViewSchema} */
export type RollView = Static<typeof RollViewSchema>;

/** `roll_revealed`: the host revealed a secret roll; its salt lets anyone check the log's commitment. */
export const RollRevealedDataSchema = Type.Object({
  roll_id: RollId,
  roll: RollEventDataSchema,
  salt: Type.String({ description: "The roll's 128-bit salt, hex" }),
  content: Type.String({
    description: "The committed text: SHA-256(salt bytes ‖ UTF-8 of this) is the log entry's `commitment`",
  }),
});
/** {@inheritDoc RollRevealedDataSchema} */
export type RollRevealedData = Static<typeof RollRevealedDataSchema>;

/** A room as the API shows it. */
export const RoomSchema = Type.Object({
  code: Type.String({ description: '8 characters from 23456789ABCDEFGHJKMNPQRSTUVWXYZ' }),
  name: Type.String(),
  state: Type.Union([Type.Literal('open'), Type.Literal('closed')]),
  created_at: Type.String({ format: 'date-time' }),
  locked: Type.Boolean({ description: 'True while the host refuses new players (`ROOM_LOCKED`)' }),
});
/** {@inheritDoc RoomSchema} */
export type Room = Static<typeof RoomSchema>;

/** A room in its host's list (`GET /rooms`). */
export const HostedRoomSchema = Type.Object({
  code: Type.String(),
  name: Type.String(),
  state: Type.Union([Type.Literal('open'), Type.Literal('closed')]),
  locked: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
  closed_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  last_activity_at: Type.String({
    format: 'date-time',
    description: 'Time of the newest event; the room closes `ROOM_IDLE_TTL` after it',
  }),
});
/** {@inheritDoc HostedRoomSchema} */
export type HostedRoom = Static<typeof HostedRoomSchema>;

/** A present player as `GET /rooms/{code}` lists them. */
export const PlayerSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  joined_at: Type.String({ format: 'date-time' }),
});
/** {@inheritDoc PlayerSchema} */
export type Player = Static<typeof PlayerSchema>;

/** `GET /rooms/{code}`: the room, its present players and recent rolls (oldest first). */
export const RoomSnapshotSchema = Type.Object({
  room: RoomSchema,
  players: Type.Array(PlayerSchema),
  rolls: Type.Array(RollViewSchema),
  you: Type.Object({
    player_id: Type.Union([Type.String(), Type.Null()], { description: 'Your player id, if you joined' }),
    host: Type.Boolean({ description: 'True when you are signed in as the host' }),
    // Optional in the schema only so that clients written before watch links keep compiling; the
    // server always sends it (and `online.spectators`).
    spectator: Type.Optional(
      Type.Boolean({
        description: 'True when you watch through a watch link (read-only: no player, cannot roll)',
      }),
    ),
  }),
  last_event_id: Type.Integer({
    description:
      "Sequence number, within this room, of the room's newest event when the snapshot was taken (0 before the first)",
  }),
  online: Type.Object(
    {
      player_ids: Type.Array(Type.String(), { description: 'Players with an event stream open now' }),
      host: Type.Boolean({ description: 'True while the host has an event stream open' }),
      spectators: Type.Optional(
        Type.Integer({
          minimum: 0,
          description: 'Event streams open now through watch links (spectators are never players)',
        }),
      ),
    },
    { description: 'Who is connected now, across instances; `presence` events on the stream update it' },
  ),
});
/** {@inheritDoc RoomSnapshotSchema} */
export type RoomSnapshot = Static<typeof RoomSnapshotSchema>;

/**
 * `POST /rooms/{code}/join`, `/seat` and `/claim`: who joined where, and until when the room token
 * lasts.
 */
export const JoinResultSchema = Type.Object({
  room: Type.Object({ code: Type.String(), name: Type.String() }),
  player: PlayerRefSchema,
  expires_at: Type.String({ format: 'date-time', description: 'When the room token expires' }),
  resumed: Type.Boolean({
    description: "True when an existing player was resumed (from this browser's seat, or a claim code)",
  }),
  seat_expires_at: Type.Optional(
    Type.String({
      format: 'date-time',
      description: 'When the seat (HttpOnly cookie) expires unless used again; cookie transport only',
    }),
  ),
  access_token: Type.Optional(Type.String({ description: 'Only with `transport: bearer`' })),
  token_type: Type.Optional(Type.Literal('bearer')),
});
/** {@inheritDoc JoinResultSchema} */
export type JoinResult = Static<typeof JoinResultSchema>;

/**
 * Why a player is no longer in a room: `left`, `kicked` (by the host), or `expired` (their seat
 * went unused for `ROOM_SEAT_TTL`). Expiry is never a kick, and clients must say so.
 */
export type PlayerLeftReason = 'left' | 'kicked' | 'expired';

/** Kinds of room event, in the room's event log, on the bus and on the event stream alike. */
export type RoomEventType =
  | 'player_joined'
  | 'player_left'
  | 'roll'
  | 'roll_revealed'
  | 'room_closed'
  | 'room_updated'
  | 'host_changed'
  | 'spectator_link_created'
  | 'spectator_link_revoked';

/** The `data` of each room event type. */
export interface RoomEventDataMap {
  /** Someone joined; show them in the lobby. */
  player_joined: { player: PlayerRef };
  /**
   * Someone left or was kicked. Streams opened by `player.id` must end on this event: it is the
   * signal that a removed player stops receiving the room's events at once, on every instance.
   */
  player_left: { player: PlayerRef; reason: PlayerLeftReason };
  /**
   * Someone rolled (always on the server, with a CSPRNG). Viewers who may not see a secret roll
   * receive {@link HiddenRollEventData} in its place (see {@link RoomEventViewDataMap}).
   */
  roll: RollEventData;
  /** The host revealed a secret roll to the room. */
  roll_revealed: RollRevealedData;
  /** The host closed the room; every stream of the room must end. */
  room_closed: Record<string, never>;
  /** The host renamed the room or (un)locked it; the data is the room's new state. */
  room_updated: { name: string; locked: boolean };
  /**
   * Another account took over as host (a hand-over code): the old host's streams end, and clients
   * re-read the room to learn whether they are host now.
   */
  host_changed: Record<string, never>;
  /**
   * The host created a read-only watch link (issue 14, item 8): players learn that someone may be
   * watching. Only the link's id, never its secret.
   */
  spectator_link_created: { link_id: string };
  /** The host revoked a watch link: the spectator streams opened with it end after this event. */
  spectator_link_revoked: { link_id: string };
}

/** The `data` of each room event type as a client receives it: a secret roll may be a placeholder. */
export type RoomEventViewDataMap = Omit<RoomEventDataMap, 'roll'> & {
  roll: RollEventData | HiddenRollEventData;
};

/**
 * The `data:` of an SSE message of type `K`: the event's data plus its sequence number `id` and
 * its storage time `at`, so a client that keeps events (rolls) can de-duplicate them by id.
 */
export type RoomEventPayload<K extends Exclude<RoomEventType, 'room_closed' | 'host_changed'>> =
  RoomEventViewDataMap[K] & {
    id: number;
    at: string;
  };

/**
 * `data:` of an SSE `presence` message: a member opened their first or closed their last event
 * stream on any instance. `player_id` null is the host. Not in the event log, and sent without an
 * `id:`.
 */
export interface PresenceEventData {
  player_id: string | null;
  online: boolean;
}

/**
 * `data:` of an SSE `spectators` message (with `?presence=true`): how many streams watch the room
 * through watch links now, across instances. Not in the event log, and sent without an `id:`.
 */
export interface SpectatorsEventData {
  count: number;
}

/**
 * `data:` of an SSE `resync` message, the first after a resume (`Last-Event-ID`) from more than
 * `ROOM_MAX_REPLAY_EVENTS` events (or `ROOM_MAX_REPLAY_BYTES` of them) behind: the stream does not replay them, so the client's view
 * is stale and it must re-read the room (`GET /rooms/{code}`). Sent with `id:` `last_event_id`,
 * the room's newest event when the stream opened, so the next reconnect resumes from there; the
 * events after it follow live, in order, as on a fresh connect. Not in the event log.
 */
export interface ResyncEventData {
  last_event_id: number;
}

/** The `reason` of the final `stream_end` event of a stream that ends with its credential. */
export type StreamEndReason =
  | 'token_expired'
  | 'token_revoked'
  | 'session_ended'
  | 'session_revoked'
  | 'seat_replaced'
  | 'link_revoked'
  | 'watch_ended';

/** `POST /rooms/{code}/players/me/claim-code` and the host's hand-over: a single-use claim code. */
export const ClaimCodeSchema = Type.Object({
  claim_code: Type.String({
    description: 'Type it on the other device (`POST /rooms/{code}/claim`); shown once, single-use',
    examples: ['ABCD-EFGH-JKMN'],
  }),
  expires_at: Type.String({ format: 'date-time' }),
});
/** {@inheritDoc ClaimCodeSchema} */
export type ClaimCode = Static<typeof ClaimCodeSchema>;

/** `POST /rooms/{code}/spectator-links`: a new watch link, its secret shown once. */
export const SpectatorLinkCreatedSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  token: Type.String({
    description:
      'The capability (256 random bits, base64url), shown once: share it as `/#/watch/{code}?token=…`, in the URL ' +
      'fragment, so it is never sent in a Referer or written to a server log',
  }),
  created_at: Type.String({ format: 'date-time' }),
});
/** {@inheritDoc SpectatorLinkCreatedSchema} */
export type SpectatorLinkCreated = Static<typeof SpectatorLinkCreatedSchema>;

/** A live watch link in the host's list (no secret: the server keeps only its hash). */
export const SpectatorLinkSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  created_at: Type.String({ format: 'date-time' }),
});
/** {@inheritDoc SpectatorLinkSchema} */
export type SpectatorLink = Static<typeof SpectatorLinkSchema>;
