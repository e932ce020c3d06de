/**
 * The UI's one state store: signals (`@preact/signals-core`) that components read inside
 * {@link watch} and that only actions write. A component never keeps its own copy of shared
 * state; it renders from the store and calls an action, and every component showing that state
 * follows.
 *
 * - {@link AppStore} lives as long as the page: who is signed in.
 * - {@link LobbyStore} lives as long as one room lobby is on screen; the lobby controller
 *   (`lobby-controller.ts`) is its only writer.
 */
import { computed, type ReadonlySignal, type Signal, signal } from '@preact/signals-core';
import { emptyLobby, type LobbyState, oldestRollId, withSnapshot } from './room-state.js';
import type { PasswordPolicy, Player, RoomSnapshot, User } from './types.js';

/** State that outlives pages. */
export interface AppStore {
  /** The signed-in user, or null. */
  readonly user: Signal<User | null>;
  /**
   * The server's rules for new passwords, once a page that sets one asked for them
   * (`AccountActions.loadPasswordPolicy`); null before, or when the server could not say.
   */
  readonly passwordPolicy: Signal<PasswordPolicy | null>;
}

/** A store for a freshly loaded page: nobody signed in yet, no policy loaded. */
export function createAppStore(): AppStore {
  return { user: signal(null), passwordPolicy: signal(null) };
}

/** What the lobby's status line says; `kind` picks its style and what it offers. */
export interface LobbyStatus {
  readonly message: string;
  /** `reconnecting` clears itself when the stream is back; `stopped` offers a Reconnect button. */
  readonly kind: 'info' | 'reconnecting' | 'stopped' | 'ended';
}

/**
 * Who is connected to the room now (issue 14): players with an event stream open, and whether the
 * host has one. Starts from the snapshot's `online` and follows the stream's `presence` events.
 */
export interface LobbyPresence {
  /** Ids of the players online now. */
  readonly players: ReadonlySet<string>;
  /** True while the host has the room open. */
  readonly host: boolean;
  /** How many spectators (watch links) have the room open; they are never players. */
  readonly spectators: number;
}

/**
 * Where the roll history continues (`GET /rooms/{code}/rolls?before=`): the event id to load
 * older rolls before, or null once the log reaches the room's first roll.
 */
export interface LobbyHistory {
  readonly before: number | null;
  /** True when the log holds `MAX_ROLLS` and loads no more (the export has the rest). */
  readonly full?: boolean;
}

/** State of the room lobby on screen. */
export interface LobbyStore {
  /** The room's code, as the API spells it. */
  readonly code: string;
  /** The room's name. */
  readonly name: string;
  /** Who is looking: their player id (if they joined) and whether they host the room. */
  readonly you: RoomSnapshot['you'];
  /** Players and rolls (see `room-state.ts`: every update is idempotent). */
  readonly state: Signal<LobbyState>;
  /** Present players; changes only when the players do, not on every roll. */
  readonly players: ReadonlySignal<readonly Player[]>;
  /** Set once, with the message to show, when the lobby ends for this viewer; null while live. */
  readonly ended: Signal<string | null>;
  /** The status line, or null when there is nothing to say. */
  readonly status: Signal<LobbyStatus | null>;
  /** The last thing said to screen readers through the polite live region. */
  readonly announcement: Signal<string>;
  /** Who is online now. */
  readonly presence: Signal<LobbyPresence>;
  /** Where older rolls can be loaded from. */
  readonly history: Signal<LobbyHistory>;
}

/** The presence a snapshot reports. */
export function presenceOf(snapshot: RoomSnapshot): LobbyPresence {
  return {
    players: new Set(snapshot.online.player_ids),
    host: snapshot.online.host,
    spectators: snapshot.online.spectators ?? 0,
  };
}

/** A lobby store holding `snapshot`. */
export function createLobbyStore(snapshot: RoomSnapshot): LobbyStore {
  const state = signal(withSnapshot(emptyLobby(), snapshot));
  return {
    code: snapshot.room.code,
    name: snapshot.room.name,
    you: snapshot.you,
    state,
    players: computed(() => state.value.players),
    ended: signal(null),
    status: signal(null),
    announcement: signal(''),
    presence: signal(presenceOf(snapshot)),
    // The snapshot holds the newest rolls; anything older starts before its oldest. A room with no
    // roll yet has no history to load.
    history: signal({ before: oldestRollId(snapshot.rolls) ?? null }),
  };
}
