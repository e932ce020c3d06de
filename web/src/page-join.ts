/**
 * `#/join` and `#/join/CODE`: joining a room as a player, with a room code and a display name.
 */
import { joinForm } from './components/join-form.js';
import { h } from './dom.js';
import { noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import { roomHash } from './routes.js';

/** `#/join` and `#/join/CODE`. */
export function renderJoin(ctx: PageContext, code: string | undefined): void {
  setTitle('Join a room');
  ctx.main.append(
    pageHeading('Join a room'),
    noticeBanner(ctx.notice) ?? '',
    h('p', {}, 'Ask your host for the room code, pick a name, and you are in. No account needed.'),
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
  );
}
