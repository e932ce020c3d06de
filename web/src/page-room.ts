/**
 * A room's lobby (`#/rooms/CODE`): loads the room, then composes the lobby from its components
 * (`components/`), one {@link LobbyStore} and the lobby controller that writes it. Visitors who
 * are not in the room get the join form instead.
 */
import { api } from './api.js';
import { copyButton, joinUrl } from './components/copy-button.js';
import { claimForm, joinForm } from './components/join-form.js';
import { lobbyActions } from './components/lobby-actions.js';
import { lobbyStatus } from './components/lobby-status.js';
import { playerList } from './components/player-list.js';
import { rollForm } from './components/roll-form.js';
import { rollHistory } from './components/roll-history.js';
import { rollLog } from './components/roll-log.js';
import { watchLinks } from './components/watch-links.js';
import { h, setChildren } from './dom.js';
import { endingFor, LOBBY_ENDED, startLobby } from './lobby-controller.js';
import { noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import { type Problem, problemMessage } from './problem.js';
import { asSnapshot } from './room-state.js';
import { joinHash, loginHash } from './routes.js';
import { createLobbyStore, type LobbyStore } from './store.js';
import type { RoomSnapshot } from './types.js';
import { watchLinkActions } from './watch-link-actions.js';

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
  let result = await api<unknown>('GET', roomPath(code));
  if (signal.aborted) return;
  // No (or an expired) room token: this browser may hold a seat, which resumes the same player
  // ("Continue as …") without a new join. The seat cookie is HttpOnly, so only the server can tell.
  let seatProblem: Problem | undefined;
  // A revoked watch link is no player's problem: no seat to try.
  if (!result.ok && result.problem.status === 401 && result.problem.code !== 'SPECTATOR_LINK_INVALID') {
    const seat = await api<unknown>('POST', roomPath(code, '/seat'));
    if (signal.aborted) return;
    if (seat.ok) {
      result = await api<unknown>('GET', roomPath(code));
      if (signal.aborted) return;
    } else seatProblem = seat.problem;
  }
  const snapshot = result.ok ? asSnapshot(result.data) : undefined;
  if (!result.ok || snapshot === undefined) {
    const problem: Problem = result.ok
      ? { status: 500, code: 'BAD_RESPONSE', detail: 'The server sent an unexpected answer.', errors: [] }
      : result.problem;
    setChildren(container, ...roomUnavailable(ctx, code, problem, signal, remount, seatProblem));
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
  seatProblem?: Problem,
): Node[] {
  // The server's own reason wins: a kick, an expired seat or a seat moved on are told apart.
  const ending = endingFor(seatProblem?.code ?? problem.code);
  // A spectator has no seat to join with: a join form would only fail for a closed room.
  if (ending === LOBBY_ENDED.kicked || ending === LOBBY_ENDED.linkRevoked) {
    return [
      pageHeading(`Room ${code}`),
      h('p', { class: 'alert', role: 'alert', 'data-testid': 'status-message' }, ending),
      h('p', {}, h('a', { class: 'button button--primary', href: '#/join' }, 'Join another room')),
    ];
  }
  if (problem.status === 401 || problem.status === 403) {
    return [
      pageHeading(`Join room ${code}`),
      ending === undefined || ending === LOBBY_ENDED.noSeat
        ? h('p', {}, 'You are not in this room. Pick a name to join it.')
        : h('p', { class: 'alert', role: 'alert', 'data-testid': 'status-message' }, ending),
      joinForm(ctx.rooms, { fixedCode: code, until: signal, onJoined: remount }),
      claimDetails(ctx, code, signal, remount),
      ctx.store.user.peek() === null
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
  const lobby = createLobbyStore(snapshot);
  const actions = startLobby(lobby, { signal, remount, navigate: ctx.navigate });
  const { you } = lobby;
  const shareUrl = joinUrl(joinHash(lobby.code));
  const yourName = lobby.players.peek().find((player) => player.id === you.player_id)?.name;
  const youText =
    you.player_id !== null
      ? `You are playing as ${yourName ?? 'a player'}${you.host ? ' and hosting' : ''}.`
      : you.host
        ? 'You are the host.'
        : '';
  setChildren(
    container,
    h(
      'header',
      { class: 'room-header' },
      pageHeading(lobby.name, 'room-name'),
      h(
        'p',
        { class: 'room-code-line' },
        h('span', { class: 'room-code-label' }, 'Room code '),
        h('span', { class: 'room-code', 'data-testid': 'room-code' }, lobby.code),
      ),
      // The join link stays on the lobby (issue 14): a host can share it again at any time.
      // Spectators are not invited to join (the host may lock the room if they must not).
      you.spectator === true
        ? h(
            'p',
            { class: 'watching-banner', role: 'status', 'data-testid': 'watching-banner' },
            h('strong', {}, 'Watching'),
            ' — you see the rolls and who is here, but you are not a player and cannot roll.',
          )
        : h(
            'p',
            { class: 'room-share' },
            'Join link: ',
            h(
              'a',
              { href: joinHash(lobby.code), class: 'share-link', 'data-testid': 'lobby-share-link' },
              shareUrl,
            ),
            ' ',
            ...copyButton(shareUrl, 'Copy link', 'copy-link-button'),
          ),
      youText === '' ? null : h('p', { class: 'you', 'data-testid': 'you-are' }, youText),
    ),
    ...lobbyStatus(lobby, signal, actions.reconnect),
    // Document order is the phone's order (issue 14: the roll form, the player list and the
    // newest roll on the first screen); from 48rem the CSS grid puts the side column beside both.
    h(
      'div',
      { class: you.host ? 'lobby lobby--host' : 'lobby' },
      h(
        'div',
        { class: 'lobby-play' },
        you.player_id === null ? null : rollForm(lobby, actions, signal),
        you.host && you.player_id === null ? hostJoin(ctx, lobby, signal, remount) : null,
      ),
      h(
        'div',
        { class: 'lobby-side' },
        playerList(lobby, actions, signal),
        lobbyActions(lobby, actions, signal),
      ),
      h('div', { class: 'lobby-log' }, rollLog(lobby, signal, actions), rollHistory(lobby, actions, signal)),
      // The host's occasional tools come after the log on a phone, so they never push the newest
      // roll off the first screen; from 48rem they sit under the side column.
      you.host ? h('div', { class: 'lobby-host' }, watchLinks(lobby.code, watchLinkActions, signal)) : null,
    ),
  );
}

/** For a host who is not playing: join under a player name to roll too. Leaves when the lobby ends. */
function hostJoin(
  ctx: PageContext,
  lobby: LobbyStore,
  signal: AbortSignal,
  remount: () => void,
): HTMLElement {
  // Folded by default: on a phone the open form would push the players and rolls off the screen.
  const card = h(
    'details',
    { class: 'card host-join', 'data-testid': 'host-join' },
    h('summary', {}, h('h2', { class: 'summary-title' }, 'Roll too? Join as a player')),
    h('p', {}, 'Hosts watch by default. Join under a player name to roll in this room as well.'),
    joinForm(ctx.rooms, {
      fixedCode: lobby.code,
      submitLabel: 'Join as a player',
      until: signal,
      onJoined: remount,
    }),
  );
  const stop = lobby.ended.subscribe((ended) => {
    if (ended !== null) card.remove();
  });
  signal.addEventListener('abort', stop, { once: true });
  return card;
}

/** "Playing on another device?": take your seat here with the claim code shown there. */
function claimDetails(ctx: PageContext, code: string, signal: AbortSignal, remount: () => void): HTMLElement {
  return h(
    'details',
    { class: 'claim' },
    h('summary', {}, 'Already playing on another device? Use a claim code'),
    claimForm(ctx.rooms, { code, until: signal, onJoined: remount }),
  );
}
