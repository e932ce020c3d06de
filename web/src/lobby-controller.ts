/**
 * The lobby's behaviour, apart from its looks: it follows the room's event stream, asks the room
 * why when something is refused, and carries out the viewer's actions (roll, remove a player,
 * close, leave). It is the only writer of the {@link LobbyStore}; components call its actions and
 * render what the store says.
 */
import { batch } from '@preact/signals-core';
import { type ApiResult, api, probeStream } from './api.js';
import { problemMessage } from './problem.js';
import {
  asHistoryPage,
  asRoll,
  asSnapshot,
  emptyLobby,
  type LobbyState,
  MAX_ROLLS,
  oldestRollId,
  withOlderRolls,
  withPlayerJoined,
  withPlayerLeft,
  withRoll,
  withRollRevealed,
  withSnapshot,
} from './room-state.js';
import { openRoomStream, type RoomStream, type RoomStreamHandlers, roomEventsPath } from './room-stream.js';
import { type LobbyStatus, type LobbyStore, presenceOf } from './store.js';
import type { Player, Roll, RoomSnapshot } from './types.js';

/** Seat renewals tried in all when the server answers 429 or 5xx, or not at all (see `renewSeat`). */
const SEAT_RENEW_TRIES = 5;
/** Seconds to wait before another seat renewal when a 429 or 503 names no `Retry-After`. */
const SEAT_RENEW_DEFAULT_WAIT_S = 5;

/** Messages shown when the lobby ends; the wording is part of what players are told. */
export const LOBBY_ENDED = {
  kicked: 'The host removed you from this room.',
  left: 'You left this room.',
  closed: 'The host closed this room.',
  closedByYou: 'You closed this room.',
  signedOut: 'You are no longer signed in. Log in again to manage this room.',
  expired: 'Your seat expired — rejoin to keep playing.',
  replaced: 'You continued on another device with a claim code, so this window stopped.',
  noSeat: 'You are no longer in this room. Join it again to keep playing.',
  // The server cannot tell a closed room's spectator from a made-up credential (it tells a
  // credential that proves nothing no room's state), so this covers both.
  linkRevoked:
    'Watching stopped: the host revoked this watch link or closed the room. Ask them for a new link.',
  stoppedWatching: 'You stopped watching this room.',
  watchEnded:
    'Watching stopped: you stopped in another window, or more people opened this watch link than it allows. ' +
    'Open the link again to keep watching.',
} as const;

/** Rolls per "Load older rolls" page (the server allows up to 1000). */
export const HISTORY_PAGE_SIZE = 50;

/** Why live updates stopped while the viewer may still be in the room (issue 14: say why). */
export const STREAM_STOPPED =
  'Live updates stopped: this room is already open in too many tabs or windows of yours. Close one, then reconnect.';

/**
 * Why live updates stopped when the stream is refused `AMBIGUOUS_COOKIE` again after the refusal's
 * own headers dropped the planted copies (red-team G2): a copy those headers cannot clear (a child
 * of this host planted it for this host), or a sibling site planting it again. The server will not
 * guess which cookie is the player's, so only the browser's cookies can change.
 */
export const STREAM_COOKIE_PLANTED =
  'Live updates stopped: your browser keeps sending a second cookie for this room, planted by another site ' +
  "under this domain, so the server cannot tell which player you are and will not guess. Clear this site's " +
  'cookies in your browser settings, then join the room again.';

/** Why live updates stopped when the stream was refused, yet opens when asked again. */
export const STREAM_REFUSED = 'Live updates stopped. Reconnect to try again.';

/**
 * Said when the stream skipped what happened while this page was away (`resync`) and the room could
 * not be read again: the view is stale, and Reconnect loads the room afresh.
 */
export const ROOM_OUT_OF_DATE =
  'You missed updates while away, and the room could not be reloaded. Reconnect to see where things stand.';

/** Announced once the view was rebuilt after a `resync`, so a screen reader hears why it changed. */
export const ROOM_RELOADED = 'You missed some updates, so the room was reloaded.';

/** A change to the lobby's players and rolls (see `room-state.ts`: each is idempotent). */
type Update = (state: LobbyState) => LobbyState;

/**
 * Most view updates recorded while a reload's read is out (see `reloadRoom` in {@link startLobby});
 * beyond it the reload gives up and offers Reconnect rather than hold a busy room's traffic.
 */
const MAX_UPDATES_DURING_RELOAD = MAX_ROLLS;

/**
 * What ends a player's lobby, by the code the server answered: each cause has its own code, so an
 * expired seat is never shown as a kick. Undefined for codes that do not end it.
 */
export function endingFor(code: string): string | undefined {
  switch (code) {
    case 'PLAYER_REMOVED':
      return LOBBY_ENDED.kicked;
    case 'SEAT_EXPIRED':
      return LOBBY_ENDED.expired;
    case 'SEAT_REPLACED':
      return LOBBY_ENDED.replaced;
    case 'NOT_ROOM_MEMBER':
    case 'SEAT_INVALID':
      return LOBBY_ENDED.noSeat;
    case 'SPECTATOR_LINK_INVALID':
      return LOBBY_ENDED.linkRevoked;
    default:
      return undefined;
  }
}

/** What the lobby controller needs from the page around it. */
export interface LobbyControllerOptions {
  /** Aborted when the lobby leaves the screen: the stream closes and late answers are ignored. */
  readonly signal: AbortSignal;
  /** Loads the room again from scratch (after a "Reconnect"). */
  readonly remount: () => void;
  /** Goes to another page, leaving it a one-line notice. */
  readonly navigate: (hash: string, notice?: string) => void;
  /** Opens the event stream; tests pass a fake. */
  readonly openStream?: typeof openRoomStream;
}

/**
 * The actions a lobby's components may take. `roll` answers the API result (its problem carries
 * the field errors and notation position the form shows); the others a message to show, or null.
 */
export interface LobbyActions {
  /**
   * Rolls `notation` (with an optional label) on the server; the roll joins the log. `secret`
   * rolls for the host's eyes only (others see "Pat rolled in secret").
   */
  roll(notation: string, label: string, secret?: boolean): Promise<ApiResult<unknown>>;
  /** Removes a player from the room (host only). */
  kick(player: Player): Promise<string | null>;
  /** Closes the room for everyone (host only). */
  close(): Promise<string | null>;
  /** Leaves the room and goes to the join page. */
  leave(): Promise<string | null>;
  /** Ends this spectator's watch credential on the server and goes home (spectators only). */
  stopWatching(): Promise<string | null>;
  /** Reloads the room (after the stream stopped). */
  reconnect(): void;
  /** A single-use code that moves this player's seat to another device (shown once). */
  claimCode(): Promise<ApiResult<{ claim_code: string; expires_at: string }>>;
  /** Loads the next page of older rolls into the log; a message to show, or null. */
  loadOlder(): Promise<string | null>;
  /** Reveals a secret roll to the whole room (host only); a message to show, or null. */
  reveal(roll: Roll): Promise<string | null>;
}

function roomPath(code: string, suffix = ''): string {
  return `/rooms/${encodeURIComponent(code)}${suffix}`;
}

/** Starts following the room in `lobby` and returns the actions its components call. */
export function startLobby(lobby: LobbyStore, options: LobbyControllerOptions): LobbyActions {
  const { code, you } = lobby;
  const { signal } = options;
  let stream: RoomStream | undefined;
  let checking = false;
  let renewing = false;
  /**
   * Counts `presence` events. A snapshot answer that arrives after one was counted may predate it,
   * so its `online` would undo a newer change; it replaces the presence only when none arrived.
   */
  let presenceEvents = 0;
  let loadingOlder = false;
  /** Set when the stream was refused, until {@link explainRefusal} has looked into it. */
  let streamRefused = false;
  /** One automatic reopen per run of refusals; a stream that opens allows the next. */
  let reopened = false;
  /** A reload (see {@link reloadRoom}) is waiting for its read; `reloadAgain`: one more after it. */
  let reloading = false;
  let reloadAgain = false;
  /** Reloads started: a page of older rolls asked for before one no longer fits the view. */
  let reloads = 0;
  /**
   * While a reload's read is out, the updates made to the view meanwhile, to replay over its answer
   * (which may predate them), at most {@link MAX_UPDATES_DURING_RELOAD}. Undefined otherwise.
   */
  let sinceReload: { updates: Update[]; overflowed: boolean } | undefined;

  const isEnded = () => lobby.ended.peek() !== null;
  const showStatus = (status: LobbyStatus | null) => {
    lobby.status.value = status;
  };
  const announce = (message: string) => {
    lobby.announcement.value = message;
  };
  const update = (next: Update) => {
    lobby.state.value = next(lobby.state.peek());
    if (sinceReload === undefined || sinceReload.overflowed) return;
    if (sinceReload.updates.length < MAX_UPDATES_DURING_RELOAD) sinceReload.updates.push(next);
    else sinceReload = { updates: [], overflowed: true };
  };

  /** Ends the lobby for this viewer: no more stream, no more controls. The first reason wins. */
  function end(message: string): void {
    if (isEnded()) return;
    stream?.close();
    batch(() => {
      lobby.ended.value = message;
      showStatus({ message, kind: 'ended' });
    });
  }

  function mergeSnapshot(fresh: RoomSnapshot, presenceEventsBefore: number): void {
    batch(() => {
      update((state) => withSnapshot(state, fresh));
      if (presenceEvents === presenceEventsBefore) lobby.presence.value = presenceOf(fresh);
    });
  }

  function setOnline(playerId: string | null, online: boolean): void {
    const current = lobby.presence.peek();
    if (playerId === null) {
      if (current.host !== online) lobby.presence.value = { ...current, host: online };
      return;
    }
    if (current.players.has(playerId) === online) return;
    const players = new Set(current.players);
    if (online) players.add(playerId);
    else players.delete(playerId);
    lobby.presence.value = { ...current, players };
  }

  function addRoll(roll: Roll): void {
    update((state) => withRoll(state, roll));
  }

  /**
   * The stream was refused, or an action was: ask the room itself why. 404 means it closed;
   * 401/403 means this viewer is no longer in it (a kicked player's room cookie is revoked).
   */
  async function checkMembership(): Promise<void> {
    if (isEnded() || checking) return;
    checking = true;
    const presenceEventsBefore = presenceEvents;
    const result = await api<unknown>('GET', roomPath(code));
    checking = false;
    if (signal.aborted || isEnded()) return;
    if (!result.ok) {
      const { status, code: problemCode } = result.problem;
      if (status === 404) end(you.host ? LOBBY_ENDED.closedByYou : LOBBY_ENDED.closed);
      else if (you.spectator === true && (status === 401 || status === 403))
        end(endingFor(problemCode) ?? LOBBY_ENDED.linkRevoked);
      else if (you.player_id !== null && (status === 401 || status === 403)) {
        const ending = endingFor(problemCode);
        // An expired (or missing) room token is renewed from the seat, never taken for a kick.
        if (ending === undefined) void renewSeat();
        else end(ending);
      } else if (status === 401 || status === 403) end(LOBBY_ENDED.signedOut);
      else
        showStatus({ message: `Live updates stopped: ${problemMessage(result.problem)}`, kind: 'stopped' });
      return;
    }
    // Still allowed in: the room refused only the stream (if it was the stream that was refused).
    const fresh = asSnapshot(result.data);
    if (fresh !== undefined) mergeSnapshot(fresh, presenceEventsBefore);
    if (streamRefused) void explainRefusal();
  }

  /**
   * The stream was refused while the room still admits this viewer: ask the stream itself why
   * (`EventSource` does not say). A refusal for a planted cookie (`AMBIGUOUS_COOKIE`, red-team G2)
   * carried headers that drop the planted copies, as the server's problem detail says, so the
   * stream is reopened once, as `api` retries once; likewise when the stream opens now. Otherwise,
   * or when the reopened stream is refused too, the status says what to do.
   */
  async function explainRefusal(): Promise<void> {
    streamRefused = false;
    const probe = await probeStream(roomEventsPath(code));
    if (signal.aborted || isEnded()) return;
    const cookie = !probe.ok && probe.problem.code === 'AMBIGUOUS_COOKIE';
    if ((probe.ok || cookie) && !reopened) {
      reopened = true;
      connect();
      return;
    }
    const message = probe.ok
      ? STREAM_REFUSED
      : cookie
        ? STREAM_COOKIE_PLANTED
        : probe.problem.code === 'TOO_MANY_STREAMS'
          ? STREAM_STOPPED
          : `Live updates stopped: ${problemMessage(probe.problem)}`;
    showStatus({ message, kind: 'stopped' });
  }

  /**
   * Mints a fresh room token from this browser's seat (HttpOnly cookie) and reloads the lobby;
   * when the seat cannot be resumed, ends the lobby with the reason the server gave. A refusal
   * that says "later" (429, 503) is no lost seat: after `gatehouse revoke-all` every player's token
   * ends at the same heartbeat, and a class behind one address renews at once, past the join
   * limit. Tried again after `Retry-After`, spread by up to half as long, {@link SEAT_RENEW_TRIES}
   * times in all; so are a 5xx and no answer at all. Refused so after the last try, the lobby stays
   * (the status line says why): the seat was not lost, and a reload resumes it.
   */
  async function renewSeat(attempt = 1): Promise<void> {
    if ((renewing && attempt === 1) || isEnded()) return;
    renewing = true;
    const result = await api<unknown>('POST', roomPath(code, '/seat'));
    if (signal.aborted || isEnded()) {
      renewing = false;
      return;
    }
    // "Later", not "no": a limit (429), an instance starting or going away (503, a proxy's 502 or
    // 504 during a deploy, no answer at all). None of them says the seat is gone.
    const transient =
      !result.ok &&
      (result.problem.status === 0 || result.problem.status === 429 || result.problem.status >= 500);
    if (transient && attempt < SEAT_RENEW_TRIES) {
      const waitMs =
        (result.problem.retryAfterSeconds ?? SEAT_RENEW_DEFAULT_WAIT_S) * 1000 * (1 + Math.random() / 2);
      showStatus({ message: 'Renewing your seat…', kind: 'reconnecting' });
      setTimeout(() => void renewSeat(attempt + 1), waitMs);
      return;
    }
    renewing = false;
    if (result.ok) {
      stream?.close();
      options.remount();
      return;
    }
    if (transient) {
      // Still refused after the last try: the seat is still this browser's (reloading the page
      // resumes it), so never "you are no longer in this room".
      showStatus({ message: `Live updates stopped: ${problemMessage(result.problem)}`, kind: 'stopped' });
      return;
    }
    if (result.problem.status === 404) end(LOBBY_ENDED.closed);
    else end(endingFor(result.problem.code) ?? LOBBY_ENDED.noSeat);
  }

  async function refreshSnapshot(): Promise<void> {
    const presenceEventsBefore = presenceEvents;
    const result = await api<unknown>('GET', roomPath(code));
    if (signal.aborted || isEnded()) return;
    if (!result.ok) {
      if ([401, 403, 404].includes(result.problem.status)) void checkMembership();
      return;
    }
    const fresh = asSnapshot(result.data);
    if (fresh !== undefined) mergeSnapshot(fresh, presenceEventsBefore);
  }

  /**
   * After a `resync`: reads the room as the page's first load does (`GET /rooms/{code}`) and
   * replaces the view with it. Merging, as after an ordinary reconnect, would keep what the skipped
   * events changed: players who left meanwhile, a hole between the rolls shown and the snapshot's,
   * placeholders of secret rolls revealed meanwhile. The updates the stream made while the read was
   * out are replayed over its answer, which may predate them. One read at a time: room reads are
   * rate limited (`ROOM_READS_PER_MINUTE`, 120 by default), and a resync comes at most once per
   * stream open (`ROOM_STREAM_OPENS_PER_MINUTE`, 30), so with `onOpen`'s read an open costs two at
   * most. A resync meanwhile (from a later stream) asks for one more read, since the answer out may
   * predate what that stream skipped.
   */
  async function reloadRoom(): Promise<void> {
    if (reloading) {
      reloadAgain = true;
      return;
    }
    reloading = true;
    try {
      do {
        reloadAgain = false;
        reloads++;
        sinceReload = { updates: [], overflowed: false };
        const presenceEventsBefore = presenceEvents;
        const result = await api<unknown>('GET', roomPath(code));
        const { updates, overflowed } = sinceReload;
        sinceReload = undefined;
        if (signal.aborted || isEnded()) return;
        if (!result.ok && [401, 403, 404].includes(result.problem.status)) {
          void checkMembership();
          return;
        }
        const fresh = result.ok ? asSnapshot(result.data) : undefined;
        if (fresh === undefined || overflowed) {
          showStatus({ message: ROOM_OUT_OF_DATE, kind: 'stopped' });
          return;
        }
        if (!reloadAgain) replaceView(fresh, updates, presenceEventsBefore);
      } while (reloadAgain);
    } finally {
      reloading = false;
      sinceReload = undefined;
    }
  }

  /** Replaces players, rolls, presence and the history's start with `fresh`, then `replayed`. */
  function replaceView(fresh: RoomSnapshot, replayed: readonly Update[], presenceEventsBefore: number): void {
    // Departures seen stay known: player ids are never reused, and a replayed join must not bring a
    // ghost back.
    const base = withSnapshot({ ...emptyLobby(), gone: lobby.state.peek().gone }, fresh);
    const state = replayed.reduce((current, next) => next(current), base);
    batch(() => {
      lobby.state.value = state;
      // As on a first load: older rolls continue before the oldest one shown.
      lobby.history.value = { before: oldestRollId(state.rolls) ?? null };
      if (presenceEvents === presenceEventsBefore) lobby.presence.value = presenceOf(fresh);
      if (lobby.status.peek()?.message === ROOM_OUT_OF_DATE) showStatus(null);
    });
    announce(ROOM_RELOADED);
  }

  const handlers: RoomStreamHandlers = {
    onOpen() {
      reopened = false;
      if (isEnded()) return;
      if (lobby.status.peek()?.kind === 'reconnecting') showStatus(null);
      // Catch up on anything between the snapshot and the stream's start; merging is idempotent.
      void refreshSnapshot();
    },
    onPlayerJoined({ player }) {
      const before = lobby.state.peek();
      update((state) => withPlayerJoined(state, player));
      if (lobby.state.peek() !== before) announce(`${player.name} joined.`);
    },
    onPlayerLeft({ player, reason }) {
      const wasHere = lobby.state.peek().players.some((p) => p.id === player.id);
      batch(() => {
        update((state) => withPlayerLeft(state, player.id));
        setOnline(player.id, false);
      });
      if (player.id === you.player_id) {
        end(
          reason === 'kicked'
            ? LOBBY_ENDED.kicked
            : reason === 'expired'
              ? LOBBY_ENDED.expired
              : LOBBY_ENDED.left,
        );
      } else if (wasHere) {
        announce(
          reason === 'kicked'
            ? `${player.name} was removed by the host.`
            : reason === 'expired'
              ? `${player.name}'s seat expired.`
              : `${player.name} left.`,
        );
      }
    },
    onRoll: addRoll,
    onRollRevealed(rollId, roll) {
      const before = lobby.state.peek();
      update((state) => withRollRevealed(state, rollId, roll));
      if (lobby.state.peek() !== before)
        announce(`The host revealed ${roll.player.name}'s secret roll: ${roll.total}.`);
    },
    onPresence({ player_id, online }) {
      presenceEvents++;
      setOnline(player_id, online);
    },
    onSpectators(count) {
      presenceEvents++;
      const current = lobby.presence.peek();
      if (current.spectators !== count) lobby.presence.value = { ...current, spectators: count };
    },
    onRoomClosed() {
      end(you.host ? LOBBY_ENDED.closedByYou : LOBBY_ENDED.closed);
    },
    onResync() {
      if (!isEnded()) void reloadRoom();
    },
    onStreamEnd(reason) {
      // A player's stream runs on the room token, a host's on the account session. A player's
      // expired token is renewed from the seat; nothing here ever reads as a kick.
      if (reason === 'link_revoked') end(LOBBY_ENDED.linkRevoked);
      else if (reason === 'watch_ended') end(LOBBY_ENDED.watchEnded);
      // A revoke-all's cut-off ends room tokens, not seats: renewed the same way.
      else if (you.player_id !== null && (reason === 'token_expired' || reason === 'token_revoked'))
        void renewSeat();
      else if (you.player_id !== null && reason === 'seat_replaced') end(LOBBY_ENDED.replaced);
      else end(LOBBY_ENDED.signedOut);
    },
    onReconnecting() {
      if (!isEnded()) showStatus({ message: 'Connection lost. Reconnecting…', kind: 'reconnecting' });
    },
    onRefused() {
      streamRefused = true;
      void checkMembership();
    },
  };
  /** Opens (or, after a refusal, reopens) the room's stream. */
  function connect(): void {
    stream?.close();
    stream = (options.openStream ?? openRoomStream)(code, handlers);
  }
  connect();
  signal.addEventListener('abort', () => stream?.close(), { once: true });

  /** After a refused action: 401/403/404 may mean the viewer or the room is gone. */
  const recheckAfter = (status: number, statuses: readonly number[]) => {
    if (statuses.includes(status)) void checkMembership();
  };

  return {
    async roll(notation, label, secret = false) {
      const result = await api<unknown>('POST', roomPath(code, '/rolls'), {
        notation,
        ...(label === '' ? {} : { label }),
        ...(secret ? { visibility: 'host' } : {}),
      });
      if (signal.aborted || isEnded()) return result;
      if (result.ok) {
        const rolled = asRoll(result.data);
        if (rolled !== undefined) addRoll(rolled);
      } else recheckAfter(result.problem.status, [401, 403, 404]);
      return result;
    },
    async kick(player) {
      const result = await api<undefined>(
        'DELETE',
        roomPath(code, `/players/${encodeURIComponent(player.id)}`),
      );
      if (signal.aborted) return null;
      // PLAYER_NOT_FOUND: they already left; the list just catches up.
      if (result.ok || result.problem.code === 'PLAYER_NOT_FOUND') {
        update((state) => withPlayerLeft(state, player.id));
        announce(`${player.name} was removed.`);
        return null;
      }
      recheckAfter(result.problem.status, [401, 404]);
      return problemMessage(result.problem);
    },
    async close() {
      const result = await api<undefined>('DELETE', roomPath(code));
      if (signal.aborted) return null;
      if (result.ok) {
        end(LOBBY_ENDED.closedByYou);
        return null;
      }
      recheckAfter(result.problem.status, [404]);
      return problemMessage(result.problem);
    },
    async leave() {
      const result = await api<undefined>('DELETE', roomPath(code, '/players/me'));
      if (signal.aborted) return null;
      if (result.ok) {
        stream?.close();
        options.navigate('#/join', LOBBY_ENDED.left);
        return null;
      }
      recheckAfter(result.problem.status, [401, 403, 404]);
      return problemMessage(result.problem);
    },
    async stopWatching() {
      const result = await api<undefined>('DELETE', roomPath(code, '/watch'));
      if (signal.aborted) return null;
      if (result.ok) {
        stream?.close();
        options.navigate('#/', LOBBY_ENDED.stoppedWatching);
        return null;
      }
      return problemMessage(result.problem);
    },
    reconnect: options.remount,
    claimCode: () =>
      api<{ claim_code: string; expires_at: string }>('POST', roomPath(code, '/players/me/claim-code')),
    async loadOlder() {
      const { before } = lobby.history.peek();
      if (before === null || loadingOlder) return null;
      if (lobby.state.peek().rolls.length >= MAX_ROLLS) {
        lobby.history.value = { before, full: true };
        return null;
      }
      loadingOlder = true;
      const reloadsBefore = reloads;
      const result = await api<unknown>(
        'GET',
        roomPath(code, `/rolls?before=${before}&limit=${HISTORY_PAGE_SIZE}`),
      );
      loadingOlder = false;
      // A reload replaced the log meanwhile: this page continues the old one, and would leave a hole.
      if (signal.aborted || reloads !== reloadsBefore) return null;
      if (!result.ok) {
        recheckAfter(result.problem.status, [401, 403, 404]);
        return problemMessage(result.problem);
      }
      const page = asHistoryPage(result.data);
      if (page === undefined) return 'The server sent an unexpected answer.';
      batch(() => {
        update((state) => withOlderRolls(state, page.items));
        lobby.history.value = { before: page.next_before };
      });
      return null;
    },
    async reveal(roll) {
      const rollId = Number(roll.id);
      if (!Number.isSafeInteger(rollId)) return 'This roll cannot be revealed from here.';
      const result = await api<unknown>('POST', roomPath(code, `/rolls/${rollId}/reveal`));
      if (signal.aborted) return null;
      if (result.ok) {
        const data = result.data;
        const revealed =
          typeof data === 'object' && data !== null && 'roll' in data ? asRoll(data.roll) : undefined;
        update((state) => withRollRevealed(state, rollId, revealed ?? roll));
        return null;
      }
      // Revealed meanwhile (another tab of the host): show it as revealed, say nothing.
      if (result.problem.code === 'ROLL_ALREADY_REVEALED') {
        update((state) => withRollRevealed(state, rollId, roll));
        return null;
      }
      recheckAfter(result.problem.status, [401, 404]);
      return problemMessage(result.problem);
    },
  };
}
