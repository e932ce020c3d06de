/**
 * A room's lobby (`#/rooms/CODE`): the players and the roll log, kept live by the event stream; the
 * roll form for players; kick and close for the host. Visitors who are not in the room get the
 * join form instead.
 */
import { api } from './api.js';
import { h, setChildren } from './dom.js';
import { type Alert, buildAlert, buildField, showProblem } from './forms.js';
import { noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import { buildJoinForm } from './page-join.js';
import { type Problem, problemMessage } from './problem.js';
import { renderNotationError, renderRollItem } from './roll-view.js';
import {
  asRoll,
  asSnapshot,
  emptyLobby,
  type LobbyState,
  rollKey,
  withPlayerJoined,
  withPlayerLeft,
  withRoll,
  withSnapshot,
} from './room-state.js';
import { openRoomStream, type RoomStream } from './room-stream.js';
import { loginHash } from './routes.js';
import type { Player, RoomSnapshot } from './types.js';

/** Sides of the quick-roll buttons. */
const QUICK_DICE = [4, 6, 8, 10, 12, 20, 100] as const;

/** Longest notation the server parses (UTF-16 units). */
const NOTATION_MAX_LENGTH = 64;

/** Most code points in a roll label (the server's limit); ×2 leaves room for emoji. */
const LABEL_MAX_LENGTH = 64;

/** Messages shown when the lobby ends; the wording is part of what players are told. */
export const LOBBY_ENDED = {
  kicked: 'You were removed from this room by the host.',
  left: 'You left this room.',
  closed: 'The host closed this room.',
  closedByYou: 'You closed this room.',
  signedOut: 'You are no longer signed in. Log in again to manage this room.',
  expired: 'Your place in this room has expired. Join again to keep playing.',
} as const;

/** `#/rooms/CODE`. */
export function renderRoom(ctx: PageContext, code: string): void {
  setTitle(`Room ${code}`);
  const container = h('div', { class: 'room-page' });
  ctx.main.append(noticeBanner(ctx.notice) ?? '', container);
  let current: AbortController | undefined;
  let first = true;
  const mount = () => {
    current?.abort();
    const controller = new AbortController();
    ctx.signal.addEventListener('abort', () => controller.abort(), { once: true });
    current = controller;
    container.replaceChildren(h('p', { class: 'loading', role: 'status' }, 'Loading the room…'));
    void loadRoom(ctx, code, container, controller.signal, mount).then(() => {
      // Focus the heading once, when the page opens; a remount (after joining) keeps focus.
      if (first && !controller.signal.aborted) container.querySelector<HTMLElement>('h1')?.focus();
      first = false;
    });
  };
  mount();
}

function roomPath(code: string, suffix = ''): string {
  return `/rooms/${encodeURIComponent(code)}${suffix}`;
}

async function loadRoom(
  ctx: PageContext,
  code: string,
  container: HTMLElement,
  signal: AbortSignal,
  remount: () => void,
): Promise<void> {
  const result = await api<unknown>('GET', roomPath(code));
  if (signal.aborted) return;
  const snapshot = result.ok ? asSnapshot(result.data) : undefined;
  if (!result.ok || snapshot === undefined) {
    const problem: Problem = result.ok
      ? { status: 500, code: 'BAD_RESPONSE', detail: 'The server sent an unexpected answer.', errors: [] }
      : result.problem;
    setChildren(container, ...roomUnavailable(ctx, code, problem, signal, remount));
    return;
  }
  setTitle(snapshot.room.name);
  mountLobby(ctx, snapshot, container, signal, remount);
}

/** What a visitor sees when the room cannot be shown: join form, not found, or the error. */
function roomUnavailable(
  ctx: PageContext,
  code: string,
  problem: Problem,
  signal: AbortSignal,
  remount: () => void,
): Node[] {
  if (problem.status === 401 || problem.status === 403) {
    return [
      pageHeading(`Join room ${code}`),
      h('p', {}, 'You are not in this room. Pick a name to join it.'),
      buildJoinForm({ fixedCode: code, signal, onJoined: remount }),
      ctx.user === null
        ? h(
            'p',
            { class: 'aside' },
            'Hosting this room? ',
            h('a', { href: loginHash(`/rooms/${code}`) }, 'Log in'),
            ' to manage it.',
          )
        : h('p', { class: 'aside' }, 'Joining as a player uses a name, not your account.'),
    ];
  }
  if (problem.status === 404) {
    return [
      pageHeading('Room not found'),
      h(
        'p',
        { role: 'alert', 'data-testid': 'status-message' },
        `There is no open room with the code ${code}. It may have been closed by its host.`,
      ),
      h('p', {}, h('a', { class: 'button button--primary', href: '#/join' }, 'Join another room')),
    ];
  }
  const retry = h(
    'button',
    { type: 'button', class: 'button button--primary', 'data-testid': 'retry-button' },
    'Try again',
  );
  retry.addEventListener('click', remount);
  return [
    pageHeading('Could not open the room'),
    h('p', { class: 'alert', role: 'alert', 'data-testid': 'status-message' }, problemMessage(problem)),
    retry,
  ];
}

/** The live lobby. Everything it opens is closed when `signal` aborts. */
function mountLobby(
  ctx: PageContext,
  snapshot: RoomSnapshot,
  container: HTMLElement,
  signal: AbortSignal,
  remount: () => void,
): void {
  const { room, you } = snapshot;
  const code = room.code;
  let state: LobbyState = withSnapshot(emptyLobby(), snapshot);
  let stream: RoomStream | undefined;
  let ended = false;
  let checking = false;

  // --- Elements -------------------------------------------------------------------------------
  const status = h('p', {
    class: 'status',
    role: 'status',
    tabindex: '-1',
    'data-testid': 'status-message',
    hidden: true,
  });
  const announcer = h('p', { class: 'visually-hidden', 'aria-live': 'polite', 'data-testid': 'announcer' });
  const playerCount = h('span', { class: 'count', 'data-testid': 'player-count' });
  const playerList = h('ul', { class: 'player-list', 'data-testid': 'player-list' });
  const playersAlert = buildAlert('players-error');
  const rollLog = h('ol', {
    class: 'roll-log',
    'data-testid': 'roll-log',
    'aria-label': 'Rolls, newest first',
    // New rolls are inserted, never re-rendered (see renderRolls), so each is announced once.
    'aria-live': 'polite',
    'aria-relevant': 'additions',
  });
  const noRolls = h('p', { class: 'empty', 'data-testid': 'no-rolls' }, 'No rolls yet.');
  const rollItems = new Map<string, HTMLLIElement>();
  const actions = h('div', { class: 'lobby-actions' });

  const youText =
    you.player_id !== null
      ? `You are playing as ${nameOf(state.players, you.player_id) ?? 'a player'}${you.host ? ' and hosting' : ''}.`
      : you.host
        ? 'You are the host.'
        : '';

  const rollSection = you.player_id === null ? null : buildRollForm();
  const hostJoin = you.host && you.player_id === null ? buildHostJoin() : null;
  const hostControls = you.host ? buildHostControls() : null;
  const leave = you.player_id === null ? null : buildLeave();
  if (leave !== null) actions.append(leave.element);
  if (hostControls !== null) actions.append(hostControls.element);

  // Filled before the lobby is attached, so the initial log is not announced as new.
  renderPlayers();
  renderRolls();
  setChildren(
    container,
    h(
      'header',
      { class: 'room-header' },
      pageHeading(room.name, 'room-name'),
      h(
        'p',
        { class: 'room-code-line' },
        h('span', { class: 'room-code-label' }, 'Room code '),
        h('span', { class: 'room-code', 'data-testid': 'room-code' }, code),
      ),
      youText === '' ? null : h('p', { class: 'you', 'data-testid': 'you-are' }, youText),
    ),
    status,
    announcer,
    h(
      'div',
      { class: 'lobby' },
      h(
        'div',
        { class: 'lobby-main' },
        rollSection?.element ?? null,
        hostJoin,
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'rolls-title' },
          h('h2', { id: 'rolls-title' }, 'Rolls'),
          noRolls,
          rollLog,
        ),
      ),
      h(
        'div',
        { class: 'lobby-side' },
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'players-title' },
          h('h2', { id: 'players-title' }, 'Players ', playerCount),
          playersAlert.element,
          playerList,
        ),
        actions,
      ),
    ),
  );

  // --- Live updates ---------------------------------------------------------------------------
  stream = openRoomStream(code, {
    onOpen() {
      if (ended) return;
      if (!status.hidden && status.dataset.kind === 'reconnecting') showStatus('');
      // Catch up on anything between the snapshot and the stream's start; merging is idempotent.
      void refreshSnapshot();
    },
    onPlayerJoined({ player }) {
      const before = state;
      state = withPlayerJoined(state, player);
      if (state !== before) {
        renderPlayers();
        announce(`${player.name} joined.`);
      }
    },
    onPlayerLeft({ player, reason }) {
      const wasHere = state.players.some((p) => p.id === player.id);
      state = withPlayerLeft(state, player.id);
      renderPlayers();
      if (player.id === you.player_id) end(reason === 'kicked' ? LOBBY_ENDED.kicked : LOBBY_ENDED.left);
      else if (wasHere)
        announce(reason === 'kicked' ? `${player.name} was removed by the host.` : `${player.name} left.`);
    },
    onRoll(roll) {
      addRoll(roll);
    },
    onRoomClosed() {
      end(you.host ? LOBBY_ENDED.closedByYou : LOBBY_ENDED.closed);
    },
    onStreamEnd(reason) {
      // A player's stream runs on the room token, a host's on the account session: say which
      // one ended rather than asking the room (a refused token would read as a kick).
      end(reason === 'token_expired' && you.player_id !== null ? LOBBY_ENDED.expired : LOBBY_ENDED.signedOut);
    },
    onReconnecting() {
      if (!ended) showStatus('Connection lost. Reconnecting…', 'reconnecting');
    },
    onRefused() {
      void checkMembership();
    },
  });
  signal.addEventListener('abort', () => stream?.close(), { once: true });

  // --- Behaviour ------------------------------------------------------------------------------
  function showStatus(message: string, kind = 'info'): void {
    status.textContent = message;
    status.hidden = message === '';
    status.dataset.kind = kind;
  }

  function announce(message: string): void {
    announcer.textContent = message;
  }

  /** Ends the lobby for this viewer: no more stream, no more controls. The first reason wins. */
  function end(message: string): void {
    if (ended) return;
    ended = true;
    stream?.close();
    showStatus(message, 'ended');
    rollSection?.element.remove();
    hostJoin?.remove();
    actions.replaceChildren(
      h(
        'a',
        { class: 'button button--primary', href: '#/join', 'data-testid': 'join-another-link' },
        'Join another room',
      ),
      h('a', { class: 'button button--secondary', href: '#/' }, 'Home'),
    );
    renderPlayers();
    status.focus();
  }

  /**
   * The stream was refused, or an action was: ask the room itself why. 404 means it closed;
   * 401/403 means this viewer is no longer in it (a kicked player's room cookie is revoked).
   */
  async function checkMembership(): Promise<void> {
    if (ended || checking) return;
    checking = true;
    const result = await api<unknown>('GET', roomPath(code));
    checking = false;
    if (signal.aborted || ended) return;
    if (!result.ok) {
      const { status: httpStatus } = result.problem;
      if (httpStatus === 404) end(you.host ? LOBBY_ENDED.closedByYou : LOBBY_ENDED.closed);
      else if (httpStatus === 401 || httpStatus === 403)
        end(you.player_id !== null ? LOBBY_ENDED.kicked : LOBBY_ENDED.signedOut);
      else showReconnect(`Live updates stopped: ${problemMessage(result.problem)}`);
      return;
    }
    // Still allowed in: the stream failed for another reason (e.g. too many open streams).
    const fresh = asSnapshot(result.data);
    if (fresh !== undefined) mergeSnapshot(fresh);
    showReconnect('Live updates stopped.');
  }

  function showReconnect(message: string): void {
    const button = h(
      'button',
      { type: 'button', class: 'button button--secondary', 'data-testid': 'reconnect-button' },
      'Reconnect',
    );
    button.addEventListener('click', remount);
    showStatus(message, 'stopped');
    status.append(' ', button);
  }

  async function refreshSnapshot(): Promise<void> {
    const result = await api<unknown>('GET', roomPath(code));
    if (signal.aborted || ended) return;
    if (!result.ok) {
      if ([401, 403, 404].includes(result.problem.status)) void checkMembership();
      return;
    }
    const fresh = asSnapshot(result.data);
    if (fresh !== undefined) mergeSnapshot(fresh);
  }

  function mergeSnapshot(fresh: RoomSnapshot): void {
    state = withSnapshot(state, fresh);
    renderPlayers();
    renderRolls();
  }

  function addRoll(roll: Parameters<typeof withRoll>[1]): void {
    const before = state;
    state = withRoll(state, roll);
    if (state !== before) renderRolls();
  }

  function renderPlayers(): void {
    playerCount.textContent = `(${state.players.length})`;
    const canKick = you.host && !ended;
    setChildren(
      playerList,
      ...state.players.map((player) => {
        const item = h(
          'li',
          { class: 'player', 'data-testid': 'player-item', 'data-player-id': player.id },
          h('span', { class: 'player-name', 'data-testid': 'player-name' }, player.name),
          player.id === you.player_id ? h('span', { class: 'tag' }, 'you') : null,
        );
        if (canKick) item.append(kickButton(player));
        return item;
      }),
    );
    if (state.players.length === 0) playerList.append(h('li', { class: 'empty' }, 'Nobody has joined yet.'));
  }

  /**
   * Keyed update of the log: existing entries are reused and only new ones inserted, so the
   * screen reader hears each new roll once, not the whole log again.
   */
  function renderRolls(): void {
    noRolls.hidden = state.rolls.length > 0;
    const keep = new Set<string>();
    state.rolls.forEach((roll, index) => {
      const key = rollKey(roll);
      keep.add(key);
      let item = rollItems.get(key);
      if (item === undefined) {
        item = renderRollItem(roll, roll.player.id === you.player_id);
        rollItems.set(key, item);
      }
      const at = rollLog.children[index] ?? null;
      if (at !== item) rollLog.insertBefore(item, at);
    });
    for (const [key, item] of rollItems) {
      if (!keep.has(key)) {
        item.remove();
        rollItems.delete(key);
      }
    }
  }

  function kickButton(player: Player): HTMLButtonElement {
    const button = h(
      'button',
      {
        type: 'button',
        class: 'button button--danger button--small',
        'data-testid': 'kick-button',
        'aria-label': `Remove ${player.name} from the room`,
      },
      'Remove',
    );
    button.addEventListener('click', () => {
      button.disabled = true;
      playersAlert.clear();
      void (async () => {
        const result = await api<undefined>(
          'DELETE',
          roomPath(code, `/players/${encodeURIComponent(player.id)}`),
        );
        if (signal.aborted) return;
        // PLAYER_NOT_FOUND: they already left; the list just catches up.
        if (result.ok || result.problem.code === 'PLAYER_NOT_FOUND') {
          state = withPlayerLeft(state, player.id);
          renderPlayers();
          announce(`${player.name} was removed.`);
          return;
        }
        button.disabled = false;
        playersAlert.show(problemMessage(result.problem));
        if (result.problem.status === 401 || result.problem.status === 404) void checkMembership();
      })();
    });
    return button;
  }

  function buildRollForm(): { element: HTMLElement } {
    const notation = buildField({
      name: 'notation',
      label: 'Dice notation',
      required: true,
      autocomplete: 'off',
      autocapitalize: 'off',
      spellcheck: false,
      maxLength: NOTATION_MAX_LENGTH,
      placeholder: '2d20kh1+5',
      hint: 'For example 1d20+3, 4d6kh3 (keep highest 3), 2d20kl1, 8d6dl2.',
      testId: 'notation-input',
    });
    const label = buildField({
      name: 'label',
      label: 'Label',
      autocomplete: 'off',
      maxLength: LABEL_MAX_LENGTH * 2,
      placeholder: 'Stealth check',
      testId: 'label-input',
    });
    const alert: Alert = buildAlert('roll-error');
    const submit = h(
      'button',
      { type: 'submit', class: 'button button--primary', 'data-testid': 'roll-button' },
      'Roll',
    );
    const quick = QUICK_DICE.map((sides) =>
      h(
        'button',
        {
          type: 'button',
          class: 'button button--die',
          'data-testid': `quick-roll-d${sides}`,
          'aria-label': `Roll 1d${sides}`,
        },
        `d${sides}`,
      ),
    );
    const buttons = [submit, ...quick];
    const form = h(
      'form',
      { novalidate: true, class: 'roll-form', 'data-testid': 'roll-form' },
      alert.element,
      h('div', { class: 'roll-inputs' }, notation.element, label.element),
      submit,
      h('div', { class: 'quick-dice', role: 'group', 'aria-label': 'Quick rolls: one die' }, ...quick),
    );

    let busy = false;
    const roll = async (text: string) => {
      if (busy || ended) return;
      busy = true;
      alert.clear();
      notation.clearError();
      label.clearError();
      // Inputs stay enabled (and focused); only the buttons wait, so a double tap rolls once.
      for (const button of buttons) button.disabled = true;
      form.setAttribute('aria-busy', 'true');
      const labelText = label.input.value.trim();
      const result = await api<unknown>(
        'POST',
        roomPath(code, '/rolls'),
        labelText === '' ? { notation: text } : { notation: text, label: labelText },
      );
      busy = false;
      for (const button of buttons) button.disabled = false;
      form.setAttribute('aria-busy', 'false');
      if (signal.aborted || ended) return;
      if (result.ok) {
        const rolled = asRoll(result.data);
        if (rolled !== undefined) addRoll(rolled);
        return;
      }
      const { problem } = result;
      showProblem(problem, [notation, label], alert);
      if (problem.code === 'INVALID_DICE_NOTATION') {
        // The alert already says what is wrong (and where); the field is only marked, not repeated.
        notation.input.setAttribute('aria-invalid', 'true');
        if (problem.position !== undefined) {
          alert.element.append(renderNotationError(text, problem.position));
          if (notation.input.value === text) {
            notation.input.focus();
            notation.input.setSelectionRange(problem.position, Math.min(problem.position + 1, text.length));
          }
        }
      }
      if ([401, 403, 404].includes(problem.status)) void checkMembership();
    };

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      // Send exactly what is shown, so an error position points into the visible text.
      const text = notation.input.value.trim();
      notation.input.value = text;
      if (text === '') {
        notation.showError('Type some dice first, like 1d20 or 2d6+3.');
        notation.input.focus();
        return;
      }
      void roll(text);
    });
    QUICK_DICE.forEach((sides, i) => {
      quick[i]?.addEventListener('click', () => void roll(`1d${sides}`));
    });
    return {
      element: h(
        'section',
        { class: 'card', 'aria-labelledby': 'roll-title' },
        h('h2', { id: 'roll-title' }, 'Roll dice'),
        form,
      ),
    };
  }

  function buildHostJoin(): HTMLElement {
    return h(
      'section',
      { class: 'card', 'aria-labelledby': 'host-join-title' },
      h('h2', { id: 'host-join-title' }, 'Roll too?'),
      h('p', {}, 'Hosts watch by default. Join under a player name to roll in this room as well.'),
      buildJoinForm({ fixedCode: code, submitLabel: 'Join as a player', signal, onJoined: remount }),
    );
  }

  function buildHostControls(): { element: HTMLElement } {
    const element = h('div', { class: 'host-controls' });
    const alert = buildAlert('close-room-error');
    const closeButton = h(
      'button',
      { type: 'button', class: 'button button--danger', 'data-testid': 'close-room-button' },
      'Close room',
    );
    const idle = () => setChildren(element, alert.element, closeButton);
    closeButton.addEventListener('click', () => {
      alert.clear();
      const confirm = h(
        'button',
        { type: 'button', class: 'button button--danger', 'data-testid': 'confirm-close-button' },
        'Yes, close it',
      );
      const cancel = h(
        'button',
        { type: 'button', class: 'button button--secondary', 'data-testid': 'cancel-close-button' },
        'Cancel',
      );
      cancel.addEventListener('click', () => {
        idle();
        closeButton.focus();
      });
      confirm.addEventListener('click', () => {
        confirm.disabled = true;
        cancel.disabled = true;
        void (async () => {
          const result = await api<undefined>('DELETE', roomPath(code));
          if (signal.aborted) return;
          if (result.ok) {
            end(LOBBY_ENDED.closedByYou);
            return;
          }
          idle();
          alert.show(problemMessage(result.problem));
          if (result.problem.status === 404) void checkMembership();
        })();
      });
      setChildren(
        element,
        h(
          'div',
          { class: 'confirm', role: 'group', 'aria-labelledby': 'confirm-close-text' },
          h(
            'p',
            { id: 'confirm-close-text' },
            'Close this room for everyone? Players can no longer roll or join, and the code stops working.',
          ),
          h('div', { class: 'button-row' }, confirm, cancel),
        ),
      );
      confirm.focus();
    });
    idle();
    return { element };
  }

  function buildLeave(): { element: HTMLElement } {
    const alert = buildAlert('leave-error');
    const button = h(
      'button',
      { type: 'button', class: 'button button--secondary', 'data-testid': 'leave-button' },
      'Leave room',
    );
    button.addEventListener('click', () => {
      button.disabled = true;
      alert.clear();
      void (async () => {
        const result = await api<undefined>('DELETE', roomPath(code, '/players/me'));
        if (signal.aborted) return;
        if (result.ok) {
          stream?.close();
          ctx.navigate('#/join', LOBBY_ENDED.left);
          return;
        }
        button.disabled = false;
        alert.show(problemMessage(result.problem));
        if ([401, 403, 404].includes(result.problem.status)) void checkMembership();
      })();
    });
    return { element: h('div', { class: 'leave' }, alert.element, button) };
  }
}

function nameOf(players: readonly Player[], id: string): string | undefined {
  return players.find((player) => player.id === id)?.name;
}
