/**
 * The lobby's status line (connection lost, live updates stopped, the lobby ended) and its polite
 * live region for who came and went.
 */
import { h } from '../dom.js';
import type { LobbyStore } from '../store.js';
import { watch } from './watch.js';

/** The status line and the announcer, following `lobby.status` and `lobby.announcement`. */
export function lobbyStatus(lobby: LobbyStore, until: AbortSignal, onReconnect: () => void): HTMLElement[] {
  const status = h('p', {
    class: 'status',
    role: 'status',
    tabindex: '-1',
    'data-testid': 'status-message',
    hidden: true,
  });
  const announcer = h('p', { class: 'visually-hidden', 'aria-live': 'polite', 'data-testid': 'announcer' });
  watch(until, () => {
    const current = lobby.status.value;
    status.hidden = current === null;
    status.textContent = current?.message ?? '';
    status.dataset.kind = current?.kind ?? 'info';
    if (current?.kind === 'stopped') {
      const button = h(
        'button',
        { type: 'button', class: 'button button--secondary', 'data-testid': 'reconnect-button' },
        'Reconnect',
      );
      button.addEventListener('click', onReconnect);
      status.append(' ', button);
    }
    // The lobby just ended: the status says why, and takes focus so the change is heard.
    if (current?.kind === 'ended') status.focus();
  });
  watch(until, () => {
    announcer.textContent = lobby.announcement.value;
  });
  return [status, announcer];
}
