/**
 * `#/join` and `#/join/CODE`: joining a room as a player, with a room code and a display name.
 * Opened with a code in a browser that already plays in that room, it offers "Continue as Pat"
 * instead (issue 14): the server resumes a seat whatever name is typed, so the form would only
 * mislead.
 */
import { joinForm } from './components/join-form.js';
import { h, setChildren } from './dom.js';
import { endingFor, LOBBY_ENDED } from './lobby-controller.js';
import { noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import type { RoomActions, SeatLookup } from './room-actions.js';
import { roomHash } from './routes.js';

/** `#/join` and `#/join/CODE`. */
export function renderJoin(ctx: PageContext, code: string | undefined): void {
  setTitle('Join a room');
  const body = h('div', { class: 'join-body' });
  ctx.main.append(pageHeading('Join a room'), noticeBanner(ctx.notice) ?? '', body);
  if (code === undefined) {
    setChildren(body, ...joinView(ctx, undefined));
    return;
  }
  setChildren(body, h('p', { class: 'loading', role: 'status' }, 'Opening the room…'));
  void ctx.rooms.findSeat(code).then((seat) => {
    if (!ctx.signal.aborted) setChildren(body, ...seatView(ctx, code, seat));
  });
}

/** What the join views use of the page's context. */
type JoinContext = Pick<PageContext, 'navigate' | 'signal'> & { rooms: Pick<RoomActions, 'joinRoom'> };

/** The join form, with the sentence that introduces it. */
function joinView(ctx: JoinContext, code: string | undefined, lead?: Node): Node[] {
  return [
    lead ?? h('p', {}, 'Ask your host for the room code, pick a name, and you are in. No account needed.'),
    joinForm(ctx.rooms, {
      code,
      until: ctx.signal,
      onJoined: (result) =>
        ctx.navigate(
          roomHash(result.room.code),
          // This browser's seat resumed its player, whatever name was typed: say so.
          result.resumed
            ? `Welcome back to “${result.room.name}”: you continue as ${result.player.name}.`
            : `You joined “${result.room.name}” as ${result.player.name}.`,
        ),
    }),
  ];
}

/** What `#/join/CODE` shows once it knows what this browser holds in the room. */
export function seatView(ctx: JoinContext, code: string, seat: SeatLookup): Node[] {
  if (seat.kind === 'seated') {
    const resume = h(
      'button',
      { type: 'button', class: 'button button--primary', 'data-testid': 'continue-button' },
      `Continue as ${seat.playerName}`,
    );
    resume.addEventListener('click', () => ctx.navigate(roomHash(code)));
    return [
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'continue-title', 'data-testid': 'continue-card' },
        h('h2', { id: 'continue-title' }, seat.roomName),
        h('p', {}, `This browser plays in this room as ${seat.playerName}.`),
        resume,
        // The server resumes this browser's seat whatever name is typed (never a second player),
        // so "join as someone else" is not offered: it would only rejoin as the same player.
        h(
          'p',
          { class: 'aside', 'data-testid': 'continue-other' },
          'Someone else on this device? One browser holds one seat per room: to play under another name, leave the room first, or use another browser or a private window.',
        ),
      ),
    ];
  }
  if (seat.kind === 'ended') {
    const ending = endingFor(seat.problem.code);
    const message = h(
      'p',
      { class: 'alert', role: 'alert', 'data-testid': 'status-message' },
      ending ?? seat.problem.detail,
    );
    // A removed player cannot come back under that seat; an expired or moved seat may join again.
    if (ending === LOBBY_ENDED.kicked) return [message];
    return joinView(ctx, code, message);
  }
  return joinView(ctx, code);
}
