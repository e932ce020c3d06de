/**
 * Shapes of the Gatehouse / Dicery JSON API as the browser keeps them. Dicery's shapes are the
 * server's own wire types (`src/apps/dicery/shared/wire.ts`, through `shared.ts`); where the
 * lobby's readers accept less than the wire promises, the relaxation is spelled out here as a
 * derivation, so a field added or renamed on the server shows up here as a type error.
 */
import type { PlayerRef, RoomEventDataMap, WirePlayer, WireRoll, WireRoomSnapshot } from './shared.js';

export type {
  DiceTermData,
  JoinResult,
  PresenceEventData,
  RolledDie,
  RollTermData as RollTerm,
  Room,
  SpectatorLink,
  SpectatorLinkCreated,
  StreamEndReason,
} from './shared.js';

/** `GET /users/me`, `POST /auth/register` (the account API's `PublicUser`). */
export interface User {
  id: string;
  email: string;
  full_name: string | null;
  role: string;
  is_active: boolean;
  /** Whether the address was confirmed through a mailed link. */
  email_verified: boolean;
  created_at: string;
}

/**
 * `GET /auth/password-policy`: the lengths the server enforces on new passwords, in code points
 * after NFKC. The browser checks them only to answer sooner; the server has the last word.
 */
export interface PasswordPolicy {
  min_length: number;
  max_length: number;
}

/** A player present in a room; players learned from events have no `joined_at`. */
export type Player = PlayerRef & Partial<Pick<WirePlayer, 'joined_at'>>;

/**
 * A roll as the lobby keeps it. `id` is the room's event sequence number (the SSE `id:` may bring
 * it as a string); a roll read without one is matched by content. `modifier` is not shown (the
 * terms carry it), so a roll without it still renders.
 */
export type Roll = Omit<WireRoll, 'id' | 'modifier' | 'hidden'> & {
  id?: WireRoll['id'] | string;
  modifier?: number;
  /**
   * A secret roll this viewer may not see (issue 14): only who rolled and when are real; the
   * notation is empty, there are no terms and the total is 0.
   */
  hidden?: boolean;
  /** A secret roll the host revealed to the room (`roll_revealed`) while this page was open. */
  revealed?: boolean;
};

/** `GET /rooms/{code}`, as far as the lobby reads it. */
export type RoomSnapshot = Omit<WireRoomSnapshot, 'players' | 'rolls' | 'last_event_id'> & {
  players: Player[];
  rolls: Roll[];
};

/** Data of the `player_joined` event. */
export type PlayerJoinedData = RoomEventDataMap['player_joined'];

/** Data of the `player_left` event. */
export type PlayerLeftData = RoomEventDataMap['player_left'];
