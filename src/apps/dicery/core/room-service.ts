import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../../../index.js';
import { normalizeClaimCode } from '../shared/claim-code.js';
import { ROLL_LABEL_MAX_LENGTH, ROOM_NAME_MAX_LENGTH } from '../shared/limits.js';
import { generateRoomCode, normalizeRoomCode } from '../shared/room-code.js';
import type { RollVisibility } from '../shared/wire.js';
import type { PlayerRecord, RoomRecord, RoomStore, StoredRoomEvent } from '../storage/room-store.js';
import { parseNotation, type RandomInt, type RollOutcome, rollDice } from './dice.js';
import {
  claimCodeInvalid,
  type DiceryError,
  type DiceryErrorCode,
  playerBanned,
  playerRemoved,
  roomLocked,
  roomNotFound,
  seatExpired,
  seatInvalid,
} from './errors.js';
import {
  type DisplayTextRejection,
  normalizeDisplayText,
  normalizePlayerName,
  PLAYER_NAME_MAX_LENGTH,
  type PlayerNameRejection,
} from './player-name.js';
import { banPlayer } from './room-bans.js';
import {
  isKnownRoomEvent,
  type LoggedRoomEvent,
  ROOM_EVENT_TYPES,
  type RollTermData,
  type RoomBus,
  type RoomEvent,
  type RoomEventType,
  UNKNOWN_ROOM_EVENT,
} from './room-bus.js';
import {
  assertOpenRoomAllowed,
  createRoomChange,
  type Emit,
  findOpenRoom,
  lockOpenRoom,
  type RoomTransaction,
} from './room-change.js';
import { type RoomLog, rollContent } from './room-log.js';
import { ROOM_TOKEN_MAX_TTL } from './room-token.js';
import { generateClaimCode, generateSeatSecret, hashSecret, SEAT_SECRET_MAX_LENGTH } from './seat-secrets.js';

export { ROLL_LABEL_MAX_LENGTH, ROOM_NAME_MAX_LENGTH } from '../shared/limits.js';

/**
 * Most events {@link RoomService.eventsAfter} returns per call: one read of the stream replay and of
 * the export. A roll records at most `DICE_LIMITS.maxDrawsPerRoll` dice (≈ 12 KB of JSON), so a page
 * stays within a few MB to read and serialise (red-team F1: 1 000 per page was ≈ 12 MB at once).
 */
export const ROOM_EVENTS_MAX_PAGE = 200;

export type { RoomTransaction } from './room-change.js';

/** Options of {@link createRoomService}. */
export interface RoomServiceOptions {
  /** Where rooms, players and the event log live (reads outside any transaction). */
  rooms: RoomStore;
  /**
   * Opens the unit of work each change (join, leave, kick, close, roll, create) runs in, so the
   * change and its event commit together or not at all. Events are published only after it
   * resolves, i.e. after commit.
   */
  transaction: RoomTransaction;
  /** Where state changes are announced to open streams. */
  bus: RoomBus;
  /** Current time in epoch milliseconds; injected so tests control it. */
  clock: () => number;
  /**
   * Draws room codes; injected so tests can force collisions.
   * @default generateRoomCode
   */
  generateCode?: () => string;
  /**
   * Random source for dice; injected so tests get known rolls.
   * @default crypto.randomInt
   */
  randomInt?: RandomInt;
  /**
   * Called when an event was stored but publishing it failed (e.g. Redis is down). The state
   * change has happened and the operation still succeeds: failing it would invite the client to
   * retry and roll twice. Subscribers catch up from the event log when they reconnect.
   * @default emits a process warning
   */
  onPublishError?: (error: unknown, event: RoomEvent) => void;
  /**
   * Rolls included in {@link RoomService.snapshot}.
   * @default 20
   */
  recentRollLimit?: number;
  /**
   * Players present in a room at once (MAX_PLAYERS_PER_ROOM); a join beyond it throws `ROOM_FULL`.
   * Joining needs no account and a player stays until they leave, so without it the players of
   * one room (and what every snapshot, broadcast and stream re-check of it carries) grow without bound.
   * @default 100
   */
  maxPlayers?: number;
  /**
   * Players of one client network (IPv4 address or IPv6 /48) present in a room at once
   * (`MAX_PLAYERS_PER_ROOM_PER_NETWORK`); a join from it beyond throws `TOO_MANY_PLAYERS_FROM_NETWORK`.
   * Joining needs only the code, and a player who came back once stays present for their seat's
   * 30 days: without it, one address kept a room full (red-team 2026-12g D4).
   * @default no limit
   */
  maxPlayersPerNetwork?: number;
  /**
   * Rooms one host may have open at once (`MAX_OPEN_ROOMS_PER_HOST`); {@link RoomService.createRoom}
   * beyond it throws `TOO_MANY_OPEN_ROOMS`. Rooms stay open until closed, so the hourly creation
   * limits alone would let an account pile them up over many windows.
   * @default 20
   */
  maxOpenRoomsPerHost?: number;
  /**
   * Seconds a seat lasts unused (`ROOM_SEAT_TTL`); every resume slides it forward.
   * @default 2592000 (30 days)
   */
  seatTtlSeconds?: number;
  /**
   * Events one room holds at most (`ROOM_MAX_EVENTS`); past it rolls and joins throw
   * `ROOM_EVENT_LIMIT` (see `createRoomChange`). @default no limit
   */
  maxEventsPerRoom?: number;
  /**
   * Seconds a claim code lasts.
   * @default 600
   */
  claimCodeTtlSeconds?: number;
  /**
   * The signed roll log (issue 14, item 7): every roll is chained and signed in its own
   * transaction. Without it rolls carry `hash: null` (tests of other rules).
   */
  log?: RoomLog;
}

/**
 * A player with their seat: the seat secret goes into the player's HttpOnly cookie and nowhere
 * else (the database keeps its hash).
 */
export interface SeatedPlayer {
  player: PlayerRecord;
  seat: { secret: string; expiresAt: number };
  /** True when an existing seat was resumed rather than a new player made. */
  resumed: boolean;
}

/** A claim code just issued: shown once, to the player (or to the host, to hand over). */
export interface IssuedClaimCode {
  code: string;
  /** Epoch ms. */
  expiresAt: number;
}

/**
 * Whether a player id (with the seat generation of its room token) may act in a room:
 * `present`, or why not. `replaced`: the seat moved to another device since the token was minted.
 */
export type PlayerStanding = 'present' | 'absent' | 'left' | 'kicked' | 'expired' | 'replaced';

/** What a client needs to render a room before following its event stream. */
export interface RoomSnapshot {
  room: RoomRecord;
  /** Present players in join order. */
  players: PlayerRecord[];
  /** The latest rolls, oldest first. */
  recentRolls: RoomEvent<'roll'>[];
  /**
   * Id of the newest event when the snapshot was taken (read first, so nothing falls in a gap).
   * Follow the stream from here; events just after it may already show in `players`, so apply
   * them idempotently (by player id).
   */
  lastEventId: number;
}

/**
 * Dicery rooms: account-less players join an open room by code and name, roll dice on the server
 * and follow each other's rolls live. Every state change and its event (with the room's next
 * sequence number) commit in one transaction; the event is published on the bus only after the
 * commit, so live delivery and `Last-Event-ID` resumption agree on ids, and no subscriber ever
 * sees an event that was rolled back.
 *
 * Unknown and closed rooms are reported identically (`ROOM_NOT_FOUND`), so a closed room's code
 * reveals nothing and streams of a closed room cannot be reopened.
 */
export interface RoomService {
  /**
   * Closes every open room of `hostUserId` inside an enclosing unit of work (the core's account
   * deletion, `gatehouse.onAccountDeleting`): each gets its `room_closed` event in `store`'s
   * transaction, published through `afterCommit`, so open streams end.
   */
  closeHostedRooms(
    hostUserId: string,
    unit: { store: RoomStore; afterCommit(callback: () => Promise<void>): void },
  ): Promise<number>;
  /**
   * Creates an open room hosted by a signed-in user. Throws `VALIDATION_FAILED` (field `name`),
   * `TOO_MANY_OPEN_ROOMS` (exact under concurrency: counted under the host's account lock).
   */
  createRoom(hostUserId: string, name: string): Promise<RoomRecord>;
  /** The open room with this code (any case, surrounding spaces allowed). Throws `ROOM_NOT_FOUND`. */
  getRoom(code: string): Promise<RoomRecord>;
  /**
   * Adds a player to an open room, joining from client `network` (an IPv4 address or IPv6 /48;
   * counted for `maxPlayersPerNetwork` when given). Throws `ROOM_NOT_FOUND`, `VALIDATION_FAILED`
   * (field `player`), `PLAYER_NAME_TAKEN` when a present player has the same name ignoring case,
   * `ROOM_FULL`, `TOO_MANY_PLAYERS_FROM_NETWORK`.
   */
  join(code: string, rawName: string, network?: string): Promise<PlayerRecord>;
  /**
   * Joins with a seat (the browser flow). When `presentedSeat` is this room's seat of a present
   * player, that player is resumed whatever name was typed (the same browser never makes a
   * second player); a kicked player's seat throws `PLAYER_REMOVED`. Otherwise a new player with a
   * new seat. A present player holding the name whose seat has expired is removed first (reason
   * `expired`), so an abandoned seat does not keep its name forever. Throws like {@link join}.
   *
   * Both joins, into a full room, first remove (reason `expired`) every present player no
   * credential can act for any more: a seat past its expiry, a seatless (bearer) player who
   * joined more than `ROOM_TOKEN_MAX_TTL` ago (nothing renews its token), and a seated player who
   * joined that long ago and never came back (no seat resume or claim, no roll: `firstActiveAt`
   * null). A player who ever came back stays until their seat expires.
   */
  joinSeated(code: string, rawName: string, presentedSeat?: string, network?: string): Promise<SeatedPlayer>;
  /**
   * Resumes a seat: the present player it belongs to, with its expiry slid forward. Throws
   * `SEAT_INVALID` (unknown here, or given up by leaving), `PLAYER_REMOVED` (kicked),
   * `SEAT_EXPIRED` (unused for `ROOM_SEAT_TTL`: the player is removed with reason `expired`, in
   * its own committed change, before the error), `ROOM_NOT_FOUND`.
   */
  resumeSeat(code: string, seatSecret: string): Promise<SeatedPlayer>;
  /**
   * A single-use claim code for a present player's seat, valid `claimCodeTtlSeconds`; it replaces
   * any earlier code of that player. With `hostUserId`, the host hands the name over (throws
   * `ROOM_NOT_FOUND` to non-hosts); without, the player asks for their own. Throws
   * `PLAYER_NOT_FOUND`.
   */
  issueClaimCode(code: string, playerId: string, hostUserId?: string): Promise<IssuedClaimCode>;
  /**
   * Spends a claim code: its player gets a new seat (generation + 1, so every room token of the
   * old seat stops working) and the code is cleared. Throws `CLAIM_CODE_INVALID` (unknown, spent,
   * expired or malformed: one answer for all), `ROOM_NOT_FOUND`.
   */
  claimSeat(code: string, claimCode: string): Promise<SeatedPlayer>;
  /** Where a player (as named by a room token of seat generation `generation`) stands in a room. */
  standing(code: string, playerId: string, generation: number): Promise<PlayerStanding>;
  /** A present player leaves; their name is free again. Throws `ROOM_NOT_FOUND`, `PLAYER_NOT_FOUND`. */
  leave(code: string, playerId: string): Promise<void>;
  /** The host removes a present player. Throws `ROOM_NOT_FOUND` (also to non-hosts) or `PLAYER_NOT_FOUND`. */
  kick(code: string, hostUserId: string, playerId: string): Promise<void>;
  /** The host closes the room for good. Throws `ROOM_NOT_FOUND` (also to non-hosts). */
  close(code: string, hostUserId: string): Promise<void>;
  /**
   * Rolls `notation` for a present player with the server's CSPRNG, stores and publishes the
   * result. Throws `ROOM_NOT_FOUND`, `PLAYER_REMOVED` (kicked from this room), `FORBIDDEN` (not
   * a present player of this room otherwise),
   * `INVALID_DICE_NOTATION` (with `extra.position`, 0-based in `notation`) or
   * `VALIDATION_FAILED` (field `label`). A blank label counts as none.
   */
  roll(
    code: string,
    playerId: string,
    notation: string,
    label?: string | null,
    visibility?: RollVisibility,
  ): Promise<RoomEvent<'roll'>>;
  /**
   * The host reveals a secret roll to the room: a `roll_revealed` event carrying the roll, its
   * salt and committed content (so anyone can check the log's commitment). Throws
   * `ROOM_NOT_FOUND` (also to non-hosts), `ROLL_NOT_FOUND` (no secret roll with this id),
   * `ROLL_ALREADY_REVEALED`.
   */
  reveal(code: string, hostUserId: string, rollId: number): Promise<RoomEvent<'roll_revealed'>>;
  /** True when the player exists, belongs to this room, has not left and the room is open. */
  isPresent(code: string, playerId: string): Promise<boolean>;
  /** Room, present players and recent rolls. Throws `ROOM_NOT_FOUND`. */
  snapshot(code: string): Promise<RoomSnapshot>;
  /**
   * Events with an id greater than `lastEventId`, oldest first, at most `limit` (capped at
   * {@link ROOM_EVENTS_MAX_PAGE}). Throws `ROOM_NOT_FOUND`, `VALIDATION_FAILED` (bad id).
   */
  eventsAfter(code: string, lastEventId: number, limit?: number): Promise<RoomEvent[]>;
  /**
   * Like {@link RoomService.eventsAfter} but also for a room closed since: for streams that already
   * follow the room and must still receive the `room_closed` that ends them (or refetch a range
   * they missed). Throws `ROOM_NOT_FOUND` only for unknown rooms; callers check access first.
   */
  catchUp(code: string, lastEventId: number, limit?: number): Promise<LoggedRoomEvent[]>;
}

/** How many fresh codes {@link RoomService.createRoom} draws before giving up. */
const CODE_ATTEMPTS = 5;

function warnPublishError(error: unknown, event: RoomEvent): void {
  process.emitWarning(`Room event ${event.type} #${event.id} was stored but not published`, {
    code: 'GATEHOUSE_ROOM_PUBLISH_FAILED',
    detail: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
}

/** `VALIDATION_FAILED` for a display text (`field`) refused by `normalizeDisplayText`. */
export function textError(
  field: string,
  label: string,
  reason: DisplayTextRejection,
  max: number,
): DiceryError {
  const message =
    reason === 'empty'
      ? `${label} must not be empty`
      : reason === 'too_long'
        ? `${label} must be at most ${max} characters`
        : `${label} contains characters that are not allowed (control, format or unassigned characters)`;
  return new GatehouseError('VALIDATION_FAILED', message, { errors: [{ field, message }] });
}

/** The `VALIDATION_FAILED` error for a refused player name (field `player`). */
function playerNameError(reason: PlayerNameRejection): DiceryError {
  if (reason !== 'reserved') return textError('player', 'Player name', reason, PLAYER_NAME_MAX_LENGTH);
  const message = 'This name is reserved (it, or a look-alike, could pass for the host or the server)';
  return new GatehouseError('VALIDATION_FAILED', message, { errors: [{ field: 'player', message }] });
}

/** Maps the dice module's outcome to the wire shape, so internal changes there never leak out. */
function toTermData(outcome: RollOutcome): RollTermData[] {
  return outcome.terms.map((term): RollTermData => {
    const label = term.label === undefined ? {} : { label: term.label };
    if (term.kind === 'constant') return { kind: 'constant', sign: term.sign, value: term.value, ...label };
    return {
      kind: 'dice',
      sign: term.sign,
      count: term.count,
      sides: term.sides,
      ...(term.fate ? { fate: true as const } : {}),
      ...(term.explode ? { explode: true as const } : {}),
      ...(term.reroll === undefined
        ? {}
        : {
            reroll: {
              once: term.reroll.once,
              when: { op: term.reroll.when.op, value: term.reroll.when.value },
            },
          }),
      keep: term.keep === undefined ? null : { mode: term.keep.mode, n: term.keep.n },
      ...(term.success === undefined ? {} : { success: { op: term.success.op, value: term.success.value } }),
      ...label,
      dice: term.dice.map((die) => ({
        value: die.value,
        kept: die.kept,
        ...(die.exploded ? { exploded: true as const } : {}),
        ...(die.rerolled ? { rerolled: true as const } : {}),
        ...(die.success ? { success: true as const } : {}),
      })),
      subtotal: term.subtotal,
    };
  });
}

/**
 * Rebuilds an event from the log. The log is only written by this module, so it is trusted; but in
 * a rolling deploy a newer instance may already have written a type this version does not know:
 * that one comes back as an `UnknownRoomEvent` (its place in the sequence, nothing to show), never
 * an error, or every stream of the room would fail its catch-up and reconnect in a loop.
 */
export function toRoomEvent(stored: StoredRoomEvent): LoggedRoomEvent {
  if (!ROOM_EVENT_TYPES.has(stored.type as RoomEventType)) {
    return {
      id: stored.id,
      room: stored.roomCode,
      type: UNKNOWN_ROOM_EVENT,
      data: { type: stored.type },
      at: new Date(stored.createdAt).toISOString(),
    };
  }
  const data = JSON.parse(stored.data);
  // Rolls stored before secret rolls and the signed log (migration 009a) lack these fields.
  if (stored.type === 'roll') {
    data.visibility ??= 'room';
    data.hidden ??= false;
    data.hash ??= null;
  }
  return {
    id: stored.id,
    room: stored.roomCode,
    type: stored.type,
    data,
    at: new Date(stored.createdAt).toISOString(),
  } as RoomEvent;
}

function isRollEvent(event: LoggedRoomEvent): event is RoomEvent<'roll'> {
  return event.type === 'roll';
}

/** Checks a last event id and caps a page size. */
function pageArgs(lastEventId: number, limit: number): number {
  if (!Number.isSafeInteger(lastEventId) || lastEventId < 0) {
    const message = 'Last event id must be a non-negative integer';
    throw new GatehouseError('VALIDATION_FAILED', message, {
      errors: [{ field: 'lastEventId', message }],
    });
  }
  return Number.isFinite(limit)
    ? Math.min(Math.max(Math.trunc(limit), 1), ROOM_EVENTS_MAX_PAGE)
    : ROOM_EVENTS_MAX_PAGE;
}

/** Creates the {@link RoomService}. */
export function createRoomService(options: RoomServiceOptions): RoomService {
  const { rooms, bus, clock, transaction } = options;
  const generateCode = options.generateCode ?? generateRoomCode;
  const onPublishError = options.onPublishError ?? warnPublishError;
  const recentRollLimit = options.recentRollLimit ?? 20;
  const maxPlayers = options.maxPlayers ?? 100;
  const maxPerNetwork = options.maxPlayersPerNetwork ?? Number.POSITIVE_INFINITY;
  const maxOpenRooms = options.maxOpenRoomsPerHost ?? 20;
  const seatTtlMs = (options.seatTtlSeconds ?? 30 * 86_400) * 1000;
  const claimTtlMs = (options.claimCodeTtlSeconds ?? 600) * 1000;

  const getOpenRoom = findOpenRoom;

  /** The player if present in `room`; undefined for unknown ids, other rooms' players and leavers. */
  async function findPresentPlayer(
    store: RoomStore,
    room: RoomRecord,
    playerId: string,
  ): Promise<PlayerRecord | undefined> {
    const player = await store.findPlayer(playerId);
    if (player === undefined || player.roomCode !== room.code || player.leftAt !== null) return undefined;
    return player;
  }

  const change = createRoomChange({
    transaction,
    bus,
    onPublishError,
    ...(options.maxEventsPerRoom === undefined ? {} : { maxEventsPerRoom: options.maxEventsPerRoom }),
  });

  function removePlayer(rawCode: string, playerId: string, reason: 'left' | 'kicked', hostUserId?: string) {
    return change(async (store, emit) => {
      // Not the host: indistinguishable from no room. Checked under the room's lock, so a host who
      // has just handed the room over cannot kick any more.
      const room = await lockOpenRoom(store, rawCode, hostUserId);
      const player = await findPresentPlayer(store, room, playerId);
      if (player === undefined) throw new GatehouseError('PLAYER_NOT_FOUND', 'Player not found');
      const now = clock();
      // The conditional update decides races (two kicks, a kick and a leave): only one emits an event.
      if (!(await store.markPlayerGone(player.id, reason, now))) {
        throw new GatehouseError('PLAYER_NOT_FOUND', 'Player not found');
      }
      // Kick = ban (issue 14): the name is refused from now on, and the seat, which a kick keeps, too.
      if (reason === 'kicked') await banPlayer(store, player, now);
      await emit(room.code, 'player_left', { player: { id: player.id, name: player.name }, reason }, now);
    });
  }

  /** Inserts a new present player (with a seat when `seat` is set) and emits `player_joined`. */
  async function addPlayer(
    store: RoomStore,
    emit: Emit,
    code: string,
    rawName: string,
    seat: { hash: string; expiresAt: number } | null,
    network: string | undefined,
  ): Promise<PlayerRecord> {
    const name = normalizePlayerName(rawName);
    // Locked first: the ban, the count and the room's lock below are read as the join commits over
    // them (a kick committing meanwhile would otherwise let its name back in).
    const room = await lockOpenRoom(store, code);
    if (!name.ok) throw playerNameError(name.reason);
    // A ban recorded before keys folded confusables carries the old key: check both.
    if (
      (await store.findBan(room.code, name.key)) !== undefined ||
      (name.legacyKey !== name.key && (await store.findBan(room.code, name.legacyKey)) !== undefined)
    ) {
      throw playerBanned();
    }
    const now = clock();
    const present = await store.listPresentPlayers(room.code);
    const fromNetwork = (players: PlayerRecord[]) =>
      network === undefined ? [] : players.filter((player) => player.network === network);
    if (present.length >= maxPlayers) {
      // A full room first lets go of its ghosts (see isGhost). Otherwise anyone with the code
      // could fill a room with them for good (or for ROOM_SEAT_TTL, 30 days, with cookie joins),
      // and each kick the host answered with would be a ban (at most 1000).
      for (const player of present)
        if (isGhost(player, now)) await expirePlayer(store, emit, room.code, player, now);
    } else if (fromNetwork(present).length >= maxPerNetwork) {
      // So does the joining network's share of it, of that network's own ghosts.
      for (const player of fromNetwork(present))
        if (isGhost(player, now)) await expirePlayer(store, emit, room.code, player, now);
    }
    if (seat !== null) {
      // An abandoned seat must not hold its name forever: its player is removed as `expired`.
      const holder = present.find((p) => p.nameKey === name.key);
      if (holder?.seatExpiresAt != null && holder.seatExpiresAt <= now) {
        await expirePlayer(store, emit, room.code, holder, now);
      }
    }
    const result = await store.insertPlayer({
      id: randomUUID(),
      roomCode: room.code,
      name: name.name,
      nameKey: name.key,
      joinedAt: now,
      seatHash: seat?.hash ?? null,
      seatExpiresAt: seat?.expiresAt ?? null,
      network: network ?? null,
    });
    if (!result.ok) {
      if (result.reason === 'room_not_open') throw roomNotFound();
      throw new GatehouseError('PLAYER_NAME_TAKEN', 'A player with this name is already in the room', {
        errors: [{ field: 'player', message: 'This name is already taken in this room' }],
      });
    }
    const { player } = result;
    await emit(room.code, 'player_joined', { player: { id: player.id, name: player.name } }, now);
    // Counted after the event's append, which row-locks the room (PostgreSQL) or holds the one
    // writer (SQLite) until commit: concurrent joins are counted one at a time, so the cap is
    // exact, and a refused join rolls back with its player row and its sequence number.
    const after = await store.listPresentPlayers(room.code);
    if (after.length > maxPlayers) {
      throw new GatehouseError('ROOM_FULL', `This room already has ${maxPlayers} players.`);
    }
    // Counted the same way, so the share is exact too. One network (an IPv4 address or IPv6 /48:
    // a NAT, a household, a campus) holds at most its share of the room, so whoever has the code
    // cannot keep a room full from one address (red-team 2026-12g D4).
    if (fromNetwork(after).length > maxPerNetwork) {
      throw new GatehouseError<DiceryErrorCode>(
        'TOO_MANY_PLAYERS_FROM_NETWORK',
        `This room already has ${maxPerNetwork} players from your network.`,
      );
    }
    // Read after the append for the same reason: a lock committed before it is seen here.
    if ((await store.findRoom(room.code))?.locked === true) throw roomLocked();
    return player;
  }

  /**
   * A present player a full room may let go of (see {@link RoomService.joinSeated}). The join's
   * room token lasts at most `ROOM_TOKEN_MAX_TTL`; past it, nobody acts for a player unless a
   * credential was minted since. A bearer player has no seat to mint one: a ghost. A seated player
   * whose seat expired: a ghost. A seated player who never came back (no resume, claim or roll since
   * the join) is one too: that is what a script joining with cookies it throws away leaves behind,
   * 30 days a seat; a browser still in the room past its token has resumed its seat to renew it, so
   * it is never taken for one. The price: someone who joined, never rolled, and returns after the
   * room filled up and let them go joins afresh (their name is free again).
   */
  function isGhost(player: PlayerRecord, now: number): boolean {
    const joinTokenDead = player.joinedAt + ROOM_TOKEN_MAX_TTL * 1000 <= now;
    if (player.seatExpiresAt === null) return joinTokenDead;
    return player.seatExpiresAt <= now || (player.firstActiveAt === null && joinTokenDead);
  }

  async function expirePlayer(store: RoomStore, emit: Emit, code: string, player: PlayerRecord, now: number) {
    if (await store.markPlayerGone(player.id, 'expired', now)) {
      await emit(
        code,
        'player_left',
        { player: { id: player.id, name: player.name }, reason: 'expired' },
        now,
      );
    }
  }

  /**
   * Resumes the seat `secret` of room `code`. The expiry of an expired seat is committed (the
   * player removed, `player_left` with reason `expired` published) before the answer says so.
   */
  async function tryResume(
    rawCode: string,
    secret: string,
  ): Promise<{ ok: true; value: SeatedPlayer } | { ok: false; reason: 'unknown' | 'kicked' | 'expired' }> {
    if (secret === '' || secret.length > SEAT_SECRET_MAX_LENGTH) return { ok: false, reason: 'unknown' };
    const seatHash = hashSecret(secret);
    return change(async (store, emit) => {
      const room = await lockOpenRoom(store, rawCode);
      const player = await store.findPlayerBySeat(room.code, seatHash);
      if (player === undefined) return { ok: false, reason: 'unknown' } as const;
      if (player.leftReason === 'kicked') return { ok: false, reason: 'kicked' } as const;
      if (player.leftAt !== null) return { ok: false, reason: 'unknown' } as const;
      const now = clock();
      if (player.seatExpiresAt === null || player.seatExpiresAt <= now) {
        await expirePlayer(store, emit, room.code, player, now);
        return { ok: false, reason: 'expired' } as const;
      }
      const expiresAt = now + seatTtlMs;
      if (!(await store.renewSeat(player.id, expiresAt))) return { ok: false, reason: 'unknown' } as const;
      // Back with the seat: never a ghost from now on (see isGhost).
      if (player.firstActiveAt === null) await store.markPlayerActive(player.id, now);
      return {
        ok: true,
        value: {
          player: { ...player, seatExpiresAt: expiresAt, firstActiveAt: player.firstActiveAt ?? now },
          seat: { secret, expiresAt },
          resumed: true,
        },
      } as const;
    });
  }

  return {
    async createRoom(hostUserId, name) {
      const validName = normalizeDisplayText(name, ROOM_NAME_MAX_LENGTH);
      if (!validName.ok) throw textError('name', 'Room name', validName.reason, ROOM_NAME_MAX_LENGTH);
      for (let attempt = 0; attempt < CODE_ATTEMPTS; attempt++) {
        const result = await change(async (store, _emit, unit) => {
          await assertOpenRoomAllowed(store, unit, hostUserId, maxOpenRooms);
          return store.insertRoom({
            code: generateCode(),
            name: validName.text,
            hostUserId,
            createdAt: clock(),
          });
        });
        if (result.ok) return result.room;
      }
      // With ~8.5 × 10^11 codes, five collisions in a row mean a broken generator, not bad luck.
      throw new Error(`No free room code after ${CODE_ATTEMPTS} attempts`);
    },

    getRoom: (code) => getOpenRoom(rooms, code),

    join: (code, rawName, network) =>
      change((store, emit) => addPlayer(store, emit, code, rawName, null, network)),

    async joinSeated(code, rawName, presentedSeat, network) {
      if (presentedSeat !== undefined) {
        const resumed = await tryResume(code, presentedSeat);
        if (resumed.ok) return resumed.value;
        if (resumed.reason === 'kicked') throw playerRemoved();
        // Unknown, left or expired seat: a new player and a new seat, as for a first visit.
      }
      const secret = generateSeatSecret();
      const expiresAt = clock() + seatTtlMs;
      const player = await change((store, emit) =>
        addPlayer(store, emit, code, rawName, { hash: hashSecret(secret), expiresAt }, network),
      );
      return { player, seat: { secret, expiresAt }, resumed: false };
    },

    async resumeSeat(code, seatSecret) {
      const resumed = await tryResume(code, seatSecret);
      if (resumed.ok) return resumed.value;
      if (resumed.reason === 'kicked') throw playerRemoved();
      if (resumed.reason === 'expired') throw seatExpired();
      throw seatInvalid();
    },

    async issueClaimCode(code, playerId, hostUserId) {
      const claim = generateClaimCode();
      const expiresAt = clock() + claimTtlMs;
      await transaction(async (store) => {
        const room = await lockOpenRoom(store, code, hostUserId);
        const player = await findPresentPlayer(store, room, playerId);
        if (player === undefined || !(await store.setClaimCode(player.id, hashSecret(claim), expiresAt))) {
          throw new GatehouseError('PLAYER_NOT_FOUND', 'Player not found');
        }
      });
      return { code: claim, expiresAt };
    },

    async claimSeat(code, claimCode) {
      const normalized = normalizeClaimCode(claimCode);
      const room = await getOpenRoom(rooms, code);
      if (normalized === undefined) throw claimCodeInvalid();
      const claimHash = hashSecret(normalized);
      const secret = generateSeatSecret();
      const now = clock();
      const expiresAt = now + seatTtlMs;
      const player = await transaction(async (store) => {
        const found = await store.findPlayerByClaim(room.code, claimHash, now);
        // The conditional UPDATE is what makes the code single-use under concurrent claims.
        if (
          found === undefined ||
          !(await store.moveSeat(found.id, claimHash, hashSecret(secret), expiresAt))
        ) {
          throw claimCodeInvalid();
        }
        // The seat taken to a device: someone came back for this player (see isGhost).
        if (found.firstActiveAt === null) await store.markPlayerActive(found.id, now);
        return {
          ...found,
          seatExpiresAt: expiresAt,
          seatGeneration: found.seatGeneration + 1,
          firstActiveAt: found.firstActiveAt ?? now,
        };
      });
      return { player, seat: { secret, expiresAt }, resumed: true };
    },

    async standing(rawCode, playerId, generation) {
      const code = normalizeRoomCode(rawCode);
      if (code === undefined) return 'absent';
      const [room, player] = await Promise.all([rooms.findRoom(code), rooms.findPlayer(playerId)]);
      if (room === undefined || room.state !== 'open' || player === undefined || player.roomCode !== code) {
        return 'absent';
      }
      if (player.leftReason !== null) return player.leftReason;
      return player.seatGeneration > generation ? 'replaced' : 'present';
    },

    leave: (code, playerId) => removePlayer(code, playerId, 'left'),

    kick: (code, hostUserId, playerId) => removePlayer(code, playerId, 'kicked', hostUserId),

    async closeHostedRooms(hostUserId, unit) {
      const now = clock();
      const events: RoomEvent[] = [];
      for (const code of await unit.store.listOpenRoomCodes(hostUserId)) {
        // Locked and read again, as every change does (`lockOpenRoom`): a hand-over that committed
        // since the list made it another account's room, which is not this account's to close (it
        // was closed under the new host's name, who was told 200, red-team 2026-12j R3).
        const room = await unit.store.lockRoom(code);
        if (room === undefined || room.state !== 'open' || room.hostUserId !== hostUserId) continue;
        // The event first, as in `close`: appending needs the room open.
        const stored = await unit.store.appendEvent(code, 'room_closed', '{}', now);
        if (stored === undefined) continue;
        events.push({
          id: stored.id,
          room: code,
          type: 'room_closed',
          data: {},
          at: new Date(now).toISOString(),
        });
        await unit.store.closeRoom(code, now);
      }
      unit.afterCommit(async () => {
        for (const event of events) {
          try {
            await bus.publish(event);
          } catch (error) {
            onPublishError(error, event);
          }
        }
      });
      return events.length;
    },

    close(code, hostUserId) {
      return change(async (store, emit) => {
        const room = await lockOpenRoom(store, code, hostUserId); // not the host: same as no room
        const now = clock();
        // The event first: appending needs the room open, and the close must be its last event.
        await emit(room.code, 'room_closed', {}, now);
        if (!(await store.closeRoom(room.code, now))) throw roomNotFound();
      });
    },

    async reveal(code, hostUserId, rollId) {
      return change(async (store, emit) => {
        const room = await lockOpenRoom(store, code, hostUserId); // not the host: same as no room
        const entry = await store.log.findEntry(room.code, rollId);
        const stored = await store.log.findEvent(room.code, rollId);
        if (entry === undefined || entry.salt === null || stored === undefined || stored.type !== 'roll') {
          throw new GatehouseError<DiceryErrorCode>(
            'ROLL_NOT_FOUND',
            'No secret roll with this id in this room',
          );
        }
        if (entry.revealedSeq !== null) {
          throw new GatehouseError<DiceryErrorCode>(
            'ROLL_ALREADY_REVEALED',
            'This roll was already revealed',
          );
        }
        const roll = toRoomEvent(stored);
        if (roll.type !== 'roll') throw new Error('unreachable: checked above');
        const now = clock();
        const event = await emit(
          room.code,
          'roll_revealed',
          { roll_id: roll.id, roll: roll.data, salt: entry.salt, content: rollContent(roll.data) },
          now,
        );
        // Conditional: of two concurrent reveals, the second finds it set and rolls back.
        if (!(await store.log.markRevealed(room.code, rollId, event.id))) {
          throw new GatehouseError<DiceryErrorCode>(
            'ROLL_ALREADY_REVEALED',
            'This roll was already revealed',
          );
        }
        return event;
      });
    },

    async roll(code, playerId, notation, label, visibility = 'room') {
      // The key is loaded outside the transaction: on SQLite that holds the only connection.
      await options.log?.ready();
      // Parse the notation as sent, so the error position points into the player's own input.
      const parsed = parseNotation(notation);
      const labelResult =
        label === undefined || label === null
          ? undefined
          : normalizeDisplayText(label, ROLL_LABEL_MAX_LENGTH);
      return change(async (store, emit) => {
        // Locked before the player is read: a kick that commits while this roll waits is seen here,
        // so no roll of a removed player is committed (and broadcast) after their `player_left`.
        const room = await lockOpenRoom(store, code);
        const player = await store.findPlayer(playerId);
        if (player === undefined || player.roomCode !== room.code || player.leftAt !== null) {
          // What the room guard answers a kicked player's requests, so a roll that lost the race
          // to a kick reads like every later one.
          if (player?.roomCode === room.code && player.leftReason === 'kicked') throw playerRemoved();
          throw new GatehouseError('FORBIDDEN', 'Only players present in this room can roll');
        }
        if (!parsed.ok) {
          throw new GatehouseError('INVALID_DICE_NOTATION', parsed.error.message, {
            extra: { position: parsed.error.position },
          });
        }
        let validLabel: string | null = null;
        if (labelResult?.ok) validLabel = labelResult.text;
        else if (labelResult !== undefined && labelResult.reason !== 'empty') {
          throw textError('label', 'Label', labelResult.reason, ROLL_LABEL_MAX_LENGTH);
        }
        const outcome = rollDice(parsed.expression, options.randomInt);
        const now = clock();
        // A player who rolls is someone, not a script's leftover: never a ghost (see isGhost).
        if (player.firstActiveAt === null) await store.markPlayerActive(player.id, now);
        const event = await emit(
          room.code,
          'roll',
          {
            player: { id: player.id, name: player.name },
            notation: notation.trim(),
            label: validLabel,
            terms: toTermData(outcome),
            modifier: outcome.modifier,
            total: outcome.total,
            rolled_at: new Date(now).toISOString(),
            visibility,
            hidden: false,
            hash: null,
          },
          now,
        );
        // Chained and signed in the same transaction: a roll is never published without its entry.
        if (options.log !== undefined) await options.log.record(store.log, event);
        return event;
      });
    },

    async isPresent(rawCode, playerId) {
      const code = normalizeRoomCode(rawCode);
      if (code === undefined) return false;
      const [room, player] = await Promise.all([rooms.findRoom(code), rooms.findPlayer(playerId)]);
      return (
        room !== undefined &&
        room.state === 'open' &&
        player !== undefined &&
        player.roomCode === code &&
        player.leftAt === null
      );
    },

    async snapshot(code) {
      // Read first: events 1..lastEventSeq are committed, and nothing after it is shown twice.
      const room = await getOpenRoom(rooms, code);
      const lastEventId = room.lastEventSeq;
      const [players, rolls] = await Promise.all([
        rooms.listPresentPlayers(room.code),
        rooms.listRecentEvents(room.code, 'roll', recentRollLimit),
      ]);
      // Rolls newer than lastEventId are left to the stream, so no roll is shown twice.
      const recentRolls = rolls
        .filter((event) => event.id <= lastEventId)
        .map(toRoomEvent)
        .filter(isRollEvent);
      return { room, players, recentRolls, lastEventId };
    },

    async eventsAfter(code, lastEventId, limit = ROOM_EVENTS_MAX_PAGE) {
      const room = await getOpenRoom(rooms, code);
      const pageSize = pageArgs(lastEventId, limit);
      const stored = await rooms.listEventsAfter(room.code, lastEventId, pageSize);
      // A newer version's event types have nothing to show here (see toRoomEvent).
      return stored.map(toRoomEvent).filter(isKnownRoomEvent);
    },

    async catchUp(rawCode, lastEventId, limit = ROOM_EVENTS_MAX_PAGE) {
      const code = normalizeRoomCode(rawCode);
      if (code === undefined) throw roomNotFound();
      const pageSize = pageArgs(lastEventId, limit);
      const stored = await rooms.listEventsAfter(code, lastEventId, pageSize);
      if (stored.length === 0 && (await rooms.findRoom(code)) === undefined) throw roomNotFound();
      return stored.map(toRoomEvent);
    },
  };
}
