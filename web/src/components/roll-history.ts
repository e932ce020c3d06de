/**
 * Under the roll log (issue 14, items 4 and 5): "Load older rolls", page by page back to the
 * room's first roll, the history's JSON and CSV downloads, and the way to the verify page.
 */
import { h } from '../dom.js';
import { buildAlert } from '../forms.js';
import type { LobbyActions } from '../lobby-controller.js';
import { MAX_ROLLS } from '../room-state.js';
import { verifyHash } from '../routes.js';
import type { LobbyStore } from '../store.js';
import { watch } from './watch.js';

/** The export route for `format`; the room cookie (`Path=/rooms/CODE`) or the session goes with it. */
export function exportPath(code: string, format: 'json' | 'csv'): string {
  return `/rooms/${encodeURIComponent(code)}/rolls/export?format=${format}`;
}

/** The history controls of `lobby`'s log. */
export function rollHistory(
  lobby: LobbyStore,
  actions: Pick<LobbyActions, 'loadOlder'>,
  until: AbortSignal,
): HTMLElement {
  const alert = buildAlert('history-error');
  const more = h(
    'button',
    { type: 'button', class: 'button button--secondary', 'data-testid': 'load-older-button' },
    'Load older rolls',
  );
  const end = h('p', { class: 'aside history-end', 'data-testid': 'history-end', role: 'status' });
  more.addEventListener('click', () => {
    more.disabled = true;
    more.setAttribute('aria-busy', 'true');
    alert.clear();
    void actions.loadOlder().then((problem) => {
      more.disabled = false;
      more.setAttribute('aria-busy', 'false');
      if (problem !== null) alert.show(problem);
    });
  });

  watch(until, () => {
    const { before, full } = lobby.history.value;
    const hasRolls = lobby.state.value.rolls.length > 0;
    more.hidden = before === null || full === true;
    end.textContent = full
      ? `The log shows the newest ${MAX_ROLLS} rolls; download the history for all of them.`
      : before === null && hasRolls
        ? 'This is the start of the room’s history.'
        : '';
    end.hidden = end.textContent === '';
  });

  // `download`: same-origin, so the browser saves the answer under the server's file name.
  const download = (format: 'json' | 'csv', text: string) =>
    h(
      'a',
      {
        class: 'button button--secondary button--small',
        href: exportPath(lobby.code, format),
        download: '',
        'data-testid': `export-${format}`,
      },
      text,
    );

  return h(
    'div',
    { class: 'roll-history', 'data-testid': 'roll-history' },
    alert.element,
    more,
    end,
    h(
      'p',
      { class: 'button-row history-links' },
      download('json', 'Download history (JSON)'),
      download('csv', 'Download history (CSV)'),
      h('a', { href: verifyHash(lobby.code), 'data-testid': 'verify-link' }, 'Check the signed roll log'),
    ),
  );
}
