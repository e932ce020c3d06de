/**
 * A watch link (`#/watch/CODE?token=…`, issue 14 item 8): the page posts the capability from the
 * fragment once, the server answers with an HttpOnly watch cookie, and the page replaces its own
 * history entry with the room's, so the token stays neither in the address bar nor in history.
 * The room page then shows the lobby read-only ("Watching").
 */
import { api } from './api.js';
import { h } from './dom.js';
import { type PageContext, pageHeading, setTitle } from './page.js';
import { problemMessage } from './problem.js';
import { roomHash } from './routes.js';

/** `#/watch/CODE?token=…`. */
export function renderWatch(ctx: PageContext, code: string, token: string | undefined): void {
  setTitle(`Watch room ${code}`);
  if (token === undefined) {
    // No token: a browser that already holds the cookie just opens the room.
    location.replace(roomHash(code));
    return;
  }
  const status = h('p', { class: 'loading', role: 'status' }, 'Opening the room…');
  ctx.main.append(pageHeading(`Watch room ${code}`), status);
  void api<unknown>('POST', `/rooms/${encodeURIComponent(code)}/watch`, { token }).then((result) => {
    if (ctx.signal.aborted) return;
    if (result.ok) {
      // Replaces this entry: Back never returns to the URL with the token in it.
      location.replace(roomHash(code));
      return;
    }
    const message =
      result.problem.code === 'SPECTATOR_LINK_INVALID'
        ? 'This watch link is not valid any more: the host may have revoked it. Ask them for a new one.'
        : result.problem.status === 404
          ? `There is no open room with the code ${code}. It may have been closed by its host.`
          : problemMessage(result.problem);
    status.replaceWith(h('p', { class: 'alert', role: 'alert', 'data-testid': 'status-message' }, message));
  });
}
