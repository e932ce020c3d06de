/**
 * Shapes of the Gatehouse / Dicery JSON API as the browser sees them. Everything here arrives over
 * the network, so fields are read defensively where a missing one would break rendering.
 */

/** `GET /users/me`, `POST /auth/register`. */
export interface User {
  id: string;
  email: string;
  full_name: string | null;
  role: string;
  is_active: boolean;
  created_at: string;
}

/** A room as `POST /rooms` and `GET /rooms/{code}` return it. */
export interface Room {
  code: string;
  name: string;
  state: string;
  created_at: string;
}

/** A player present in a room. */
export interface Player {
  id: string;
  name: string;
  joined_at?: string;
}

/** `POST /rooms/{code}/join`. */
export interface JoinResult {
  room: { code: string; name: string };
  player: { id: string; name: string };
  expires_at: string;
}

/** One die of a dice term; `kept: false` means a keep/drop rule discarded it. */
export interface RolledDie {
  value: number;
  kept: boolean;
}

/** A dice term such as `4d6kh3` with the dice the server rolled. */
export interface DiceTermData {
  kind: 'dice';
  sign: 1 | -1;
  count: number;
  sides: number;
  keep?: { mode: 'kh' | 'kl' | 'dh' | 'dl'; n: number } | null;
  dice: RolledDie[];
  subtotal: number;
}

/** A constant term such as `+5`. */
export interface ConstantTermData {
  kind: 'constant';
  sign: 1 | -1;
  value: number;
}

/** A term of a roll. */
export type RollTerm = DiceTermData | ConstantTermData;

/** A roll, from `POST /rooms/{code}/rolls`, `GET /rooms/{code}` or the `roll` event. */
export interface Roll {
  /** Event id, when the server sends one; rolls are de-duplicated by it. */
  id?: string | number;
  player: { id: string; name: string };
  notation: string;
  label: string | null;
  terms: RollTerm[];
  total: number;
  rolled_at: string;
}

/** `GET /rooms/{code}`. */
export interface RoomSnapshot {
  room: Room;
  players: Player[];
  rolls: Roll[];
  you: { player_id: string | null; host: boolean };
}

/** Data of the `player_joined` event. */
export interface PlayerJoinedData {
  player: { id: string; name: string };
  at?: string;
}

/** Why the server ended an event stream with its credential: the `stream_end` event's `reason`. */
export type StreamEndReason = 'token_expired' | 'session_ended' | 'session_revoked';

/** Data of the `player_left` event. */
export interface PlayerLeftData {
  player: { id: string; name: string };
  reason: 'left' | 'kicked';
  at?: string;
}
