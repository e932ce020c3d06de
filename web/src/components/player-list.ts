/**
 * The lobby's player list, with a Remove button per player for the host while the room is live.
 */
import { h, setChildren } from '../dom.js';
import { buildAlert } from '../forms.js';
import type { LobbyActions } from '../lobby-controller.js';
import type { LobbyStore } from '../store.js';
import type { Player } from '../types.js';
import { watch } from './watch.js';

/** The "Players" card. It re-renders when the players or the lobby's end change, not on rolls. */
export function playerList(
  lobby: LobbyStore,
  actions: Pick<LobbyActions, 'kick'>,
  until: AbortSignal,
): HTMLElement {
  const count = h('span', { class: 'count', 'data-testid': 'player-count' });
  const list = h('ul', { class: 'player-list', 'data-testid': 'player-list' });
  const alert = buildAlert('players-error');

  const kickButton = (player: Player): HTMLButtonElement => {
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
      alert.clear();
      void actions.kick(player).then((problem) => {
        if (problem === null) return;
        button.disabled = false;
        alert.show(problem);
      });
    });
    return button;
  };

  watch(until, () => {
    const players = lobby.players.value;
    const canKick = lobby.you.host && lobby.ended.value === null;
    count.textContent = `(${players.length})`;
    setChildren(
      list,
      ...players.map((player) =>
        h(
          'li',
          { class: 'player', 'data-testid': 'player-item', 'data-player-id': player.id },
          h('span', { class: 'player-name', 'data-testid': 'player-name' }, player.name),
          player.id === lobby.you.player_id ? h('span', { class: 'tag' }, 'you') : null,
          canKick ? kickButton(player) : null,
        ),
      ),
    );
    if (players.length === 0) list.append(h('li', { class: 'empty' }, 'Nobody has joined yet.'));
  });

  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'players-title' },
    h('h2', { id: 'players-title' }, 'Players ', count),
    alert.element,
    list,
  );
}
