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
import { emptyLobby, type LobbyState, withSnapshot } from './room-state.js';
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
  };
}
