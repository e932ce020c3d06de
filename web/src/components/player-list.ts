/**
 * The lobby's player list: who is online now (issue 14: from the stream's presence events), the
 * host first, and a Remove button per player for the host while the room is live.
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
  const onlineCount = h('span', { class: 'count online-count', 'data-testid': 'online-count' });
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
    const presence = lobby.presence.value;
    const canKick = lobby.you.host && lobby.ended.value === null;
    const online = players.filter((player) => presence.players.has(player.id)).length;
    count.textContent = `(${players.length})`;
    const watching = presence.spectators > 0 ? `${presence.spectators} watching` : '';
    onlineCount.textContent = [players.length === 0 ? '' : `${online} online`, watching]
      .filter((part) => part !== '')
      .join(' · ');
    setChildren(
      list,
      // The host is not a player (and has no name here), but players want to know the GM is in.
      h(
        'li',
        {
          class: presence.host ? 'player player--host' : 'player player--host player--offline',
          'data-testid': 'host-item',
          'data-online': String(presence.host),
        },
        presenceDot(presence.host),
        h('span', { class: 'player-name' }, 'Host'),
        lobby.you.host ? h('span', { class: 'tag' }, 'you') : null,
      ),
      ...players.map((player) => {
        const isOnline = presence.players.has(player.id);
        return h(
          'li',
          {
            class: isOnline ? 'player' : 'player player--offline',
            'data-testid': 'player-item',
            'data-player-id': player.id,
            'data-online': String(isOnline),
          },
          presenceDot(isOnline),
          h('span', { class: 'player-name', 'data-testid': 'player-name' }, player.name),
          player.id === lobby.you.player_id ? h('span', { class: 'tag' }, 'you') : null,
          canKick ? kickButton(player) : null,
        );
      }),
    );
    if (players.length === 0) list.append(h('li', { class: 'empty' }, 'Nobody has joined yet.'));
  });

  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'players-title' },
    h('h2', { id: 'players-title' }, 'Players ', count, ' ', onlineCount),
    alert.element,
    list,
  );
}

/** A dot for sighted users and the same word for screen readers ("online" / "offline"). */
function presenceDot(online: boolean): HTMLElement {
  return h(
    'span',
    { class: online ? 'presence presence--online' : 'presence', 'data-testid': 'presence' },
    h('span', { class: 'visually-hidden' }, online ? 'online: ' : 'offline: '),
  );
}
