/**
 * The lobby's model: who is present and which rolls happened, built from a `GET /rooms/{code}`
 * snapshot and the live events. Every update is idempotent, because the same change can arrive
 * twice (in a snapshot and on the stream, or as our own POST answer and its event). Also the
 * readers that turn untrusted JSON from the wire into these types. Pure, no DOM.
 */
import type { Player, Roll, RollTerm, RoomSnapshot } from './types.js';

/**
 * Most rolls kept in the log, live ones and older pages loaded on demand together; beyond it the
 * oldest fall off the end (the export has the whole history).
 */
export const MAX_ROLLS = 1000;

/** State of one lobby. Treat as immutable: every function returns a new one. */
export interface LobbyState {
  /** Present players, in join order. */
  readonly players: readonly Player[];
  /** Rolls, newest first. */
  readonly rolls: readonly Roll[];
  /**
   * Ids of players seen leaving. Player ids are never reused (a rejoin gets a new id), so a
   * `player_joined` replayed after its `player_left` must not bring a ghost back.
   */
  readonly gone: ReadonlySet<string>;
}

/** A lobby with nobody in it. */
export function emptyLobby(): LobbyState {
  return { players: [], rolls: [], gone: new Set() };
}

/**
 * Merges a snapshot. Players are unioned rather than replaced: an event may have arrived while the
 * snapshot was in flight, and departures are already recorded in `gone`.
 */
export function withSnapshot(
  state: LobbyState,
  snapshot: { players: readonly Player[]; rolls: readonly Roll[] },
): LobbyState {
  let next = state;
  for (const player of snapshot.players) next = withPlayerJoined(next, player);
  for (const roll of snapshot.rolls) next = withRoll(next, roll);
  return next;
}

/** Adds a player unless already present or known to have left. */
export function withPlayerJoined(state: LobbyState, player: Player): LobbyState {
  if (state.gone.has(player.id) || state.players.some((p) => p.id === player.id)) return state;
  return { ...state, players: [...state.players, player] };
}

/** Removes a player and remembers that they left. */
export function withPlayerLeft(state: LobbyState, playerId: string): LobbyState {
  const gone = new Set(state.gone);
  gone.add(playerId);
  return { ...state, players: state.players.filter((p) => p.id !== playerId), gone };
}

/** Adds a roll unless it is already in the log; keeps the log newest first and bounded. */
export function withRoll(state: LobbyState, roll: Roll): LobbyState {
  if (state.rolls.some((existing) => sameRoll(existing, roll))) return state;
  // ISO 8601 UTC timestamps from the server sort as strings; within one millisecond the room's
  // event ids decide, and without them a stable sort keeps the arrival order (newest on top).
  // The log is kept in that order, so the new roll goes before the first one it does not follow:
  // one linear pass, not a sort per roll (a history page adds 50 at once).
  let at = 0;
  while (at < state.rolls.length && compareRolls(roll, state.rolls[at] as Roll) > 0) at++;
  if (at >= MAX_ROLLS) return state;
  const rolls = [...state.rolls.slice(0, at), roll, ...state.rolls.slice(at, MAX_ROLLS - 1)];
  return { ...state, rolls };
}

/** Adds a page of older rolls from the history (`GET /rooms/{code}/rolls?before=`). */
export function withOlderRolls(state: LobbyState, rolls: readonly Roll[]): LobbyState {
  let next = state;
  for (const roll of rolls) next = withRoll(next, roll);
  return next;
}

/**
 * The host revealed secret roll `rollId` (`roll_revealed`): its placeholder, or the full roll the
 * host and its roller already saw, becomes the revealed roll in place. A roll not in the log (not
 * loaded yet) is left alone: the history shows it in full once loaded.
 */
export function withRollRevealed(state: LobbyState, rollId: number, roll: Roll): LobbyState {
  const index = state.rolls.findIndex(
    (existing) => existing.id !== undefined && String(existing.id) === String(rollId),
  );
  if (index === -1 || state.rolls[index]?.revealed === true) return state;
  const revealed: Roll = { ...roll, id: rollId, revealed: true };
  const rolls = state.rolls.slice();
  rolls[index] = revealed;
  return { ...state, rolls };
}

/** The smallest numeric event id among `rolls`: where the next older history page starts. */
export function oldestRollId(rolls: readonly Roll[]): number | undefined {
  let oldest: number | undefined;
  for (const roll of rolls) {
    const id = typeof roll.id === 'number' ? roll.id : Number(roll.id);
    if (Number.isSafeInteger(id) && id > 0 && (oldest === undefined || id < oldest)) oldest = id;
  }
  return oldest;
}

/**
 * True when two rolls are the same event: same event id, or (when one side has none, such as a POST
 * answer, or the two ids come from different sources) same player, time, notation and result.
 */
export function sameRoll(a: Roll, b: Roll): boolean {
  if (a.id !== undefined && b.id !== undefined && String(a.id) === String(b.id)) return true;
  return rollKey(a) === rollKey(b);
}

/** A key identifying a roll by its content, for keyed rendering. */
export function rollKey(roll: Roll): string {
  return JSON.stringify([roll.player.id, roll.rolled_at, roll.notation, roll.total, roll.revealed === true]);
}

function compareDesc(a: string, b: string): number {
  return a < b ? 1 : a > b ? -1 : 0;
}

/** Negative when `a` is newer than `b` (shown above it), positive when older, 0 when unknown. */
function compareRolls(a: Roll, b: Roll): number {
  return compareDesc(a.rolled_at, b.rolled_at) || compareIdsDesc(a.id, b.id);
}

function compareIdsDesc(a: Roll['id'], b: Roll['id']): number {
  if (a === undefined || b === undefined) return 0;
  const [x, y] = [Number(a), Number(b)];
  return Number.isFinite(x) && Number.isFinite(y) ? y - x : 0;
}

/** A player reference (`{ id, name }`) from the wire, or undefined when malformed. */
export function asPlayer(value: unknown): Player | undefined {
  if (!isRecord(value) || typeof value.id !== 'string' || typeof value.name !== 'string') return undefined;
  const player: Player = { id: value.id, name: value.name };
  if (typeof value.joined_at === 'string') player.joined_at = value.joined_at;
  return player;
}

/**
 * A roll as the API sends it, either bare (`{ player, notation, … }`) or wrapped as a stored event
 * (`{ id, type: 'roll', data: { … } }`); undefined when it is neither. Malformed terms are dropped
 * so one odd term cannot break the whole log.
 */
export function asRoll(value: unknown): Roll | undefined {
  if (!isRecord(value)) return undefined;
  if (value.type === 'roll' && isRecord(value.data)) {
    const inner = asRoll(value.data);
    return inner !== undefined && inner.id === undefined && isId(value.id)
      ? { ...inner, id: value.id }
      : inner;
  }
  const player = asPlayer(value.player);
  if (player !== undefined && value.hidden === true) {
    // A secret roll's placeholder: the server sent no notation, label, dice or total.
    const hidden: Roll = {
      player,
      notation: '',
      label: null,
      terms: [],
      total: 0,
      hidden: true,
      visibility: 'host',
      rolled_at: typeof value.rolled_at === 'string' ? value.rolled_at : '',
    };
    if (isId(value.id)) hidden.id = value.id;
    return hidden;
  }
  if (player === undefined || typeof value.notation !== 'string' || typeof value.total !== 'number')
    return undefined;
  const roll: Roll = {
    player,
    notation: value.notation,
    label: typeof value.label === 'string' && value.label !== '' ? value.label : null,
    terms: Array.isArray(value.terms) ? value.terms.flatMap((term) => asTerm(term) ?? []) : [],
    total: value.total,
    rolled_at:
      typeof value.rolled_at === 'string' ? value.rolled_at : typeof value.at === 'string' ? value.at : '',
  };
  if (value.visibility === 'host') roll.visibility = 'host';
  if (isId(value.id)) roll.id = value.id;
  return roll;
}

/** A page of `GET /rooms/{code}/rolls`: rolls newest first, and where the next older page starts. */
export interface HistoryPage {
  readonly items: readonly Roll[];
  readonly next_before: number | null;
}

/** A `GET /rooms/{code}/rolls` answer, or undefined when it is not one. */
export function asHistoryPage(value: unknown): HistoryPage | undefined {
  if (!isRecord(value) || !Array.isArray(value.items)) return undefined;
  const next = value.next_before;
  if (next !== null && !(typeof next === 'number' && Number.isSafeInteger(next) && next > 0))
    return undefined;
  return { items: value.items.flatMap((item) => asRoll(item) ?? []), next_before: next };
}

/** A `GET /rooms/{code}` answer, with anything malformed left out. */
export function asSnapshot(value: unknown): RoomSnapshot | undefined {
  if (!isRecord(value) || !isRecord(value.room) || typeof value.room.code !== 'string') return undefined;
  const room = value.room;
  const you = isRecord(value.you) ? value.you : {};
  return {
    room: {
      code: room.code as string,
      name: typeof room.name === 'string' ? room.name : (room.code as string),
      state: room.state === 'closed' ? 'closed' : 'open',
      created_at: typeof room.created_at === 'string' ? room.created_at : '',
      locked: room.locked === true,
    },
    players: Array.isArray(value.players) ? value.players.flatMap((p) => asPlayer(p) ?? []) : [],
    rolls: Array.isArray(value.rolls) ? value.rolls.flatMap((r) => asRoll(r) ?? []) : [],
    you: {
      player_id: typeof you.player_id === 'string' ? you.player_id : null,
      host: you.host === true,
      spectator: you.spectator === true,
    },
    online: {
      player_ids:
        isRecord(value.online) && Array.isArray(value.online.player_ids)
          ? value.online.player_ids.filter((id): id is string => typeof id === 'string')
          : [],
      host: isRecord(value.online) && value.online.host === true,
      spectators:
        isRecord(value.online) && typeof value.online.spectators === 'number' ? value.online.spectators : 0,
    },
  };
}

function asTerm(value: unknown): RollTerm | undefined {
  if (!isRecord(value)) return undefined;
  const sign = value.sign === -1 ? -1 : 1;
  if (value.kind === 'constant' && typeof value.value === 'number')
    return { kind: 'constant', sign, value: value.value };
  if (value.kind !== 'dice' || typeof value.count !== 'number' || typeof value.sides !== 'number')
    return undefined;
  const dice = Array.isArray(value.dice)
    ? value.dice.flatMap((die) =>
        isRecord(die) && typeof die.value === 'number'
          ? [{ value: die.value, kept: die.kept !== false }]
          : [],
      )
    : [];
  const keep =
    isRecord(value.keep) && isKeepMode(value.keep.mode) && typeof value.keep.n === 'number'
      ? { mode: value.keep.mode, n: value.keep.n }
      : null;
  const subtotal =
    typeof value.subtotal === 'number'
      ? value.subtotal
      : dice.reduce((sum, die) => (die.kept ? sum + die.value : sum), 0);
  return { kind: 'dice', sign, count: value.count, sides: value.sides, keep, dice, subtotal };
}

function isKeepMode(value: unknown): value is 'kh' | 'kl' | 'dh' | 'dl' {
  return value === 'kh' || value === 'kl' || value === 'dh' || value === 'dl';
}

function isId(value: unknown): value is string | number {
  return (typeof value === 'string' && value !== '') || typeof value === 'number';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
