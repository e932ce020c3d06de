/**
 * The lobby's roll log, newest first, as a polite live region. The host gets a Reveal button on
 * each secret roll not yet revealed.
 */
import { h } from '../dom.js';
import type { LobbyActions } from '../lobby-controller.js';
import { renderRollItem } from '../roll-view.js';
import { rollKey } from '../room-state.js';
import type { LobbyStore } from '../store.js';
import type { Roll } from '../types.js';
import { watch } from './watch.js';

/**
 * The "Rolls" card. A keyed update: existing entries are reused and only new ones inserted, so a
 * screen reader hears each new roll once (`aria-relevant="additions"`), not the whole log again.
 * The log is filled before the card is attached, so the initial rolls are not announced as new.
 */
export function rollLog(
  lobby: LobbyStore,
  until: AbortSignal,
  actions?: Pick<LobbyActions, 'reveal'>,
): HTMLElement {
  const log = h('ol', {
    class: 'roll-log',
    'data-testid': 'roll-log',
    'aria-label': 'Rolls, newest first',
    'aria-live': 'polite',
    'aria-relevant': 'additions',
  });
  const empty = h('p', { class: 'empty', 'data-testid': 'no-rolls' }, 'No rolls yet.');
  // Bounded like the log itself (room-state's MAX_ROLLS): entries that fall off are deleted.
  const items = new Map<string, HTMLLIElement>();

  watch(until, () => {
    const { rolls } = lobby.state.value;
    empty.hidden = rolls.length > 0;
    const keep = new Set<string>();
    rolls.forEach((roll, index) => {
      const key = rollKey(roll);
      keep.add(key);
      let item = items.get(key);
      if (item === undefined) {
        item = renderRollItem(roll, roll.player.id === lobby.you.player_id);
        if (actions !== undefined && mayReveal(lobby, roll)) item.append(revealControl(roll, actions));
        items.set(key, item);
      }
      const at = log.children[index] ?? null;
      if (at !== item) log.insertBefore(item, at);
    });
    for (const [key, item] of items) {
      if (!keep.has(key)) {
        item.remove();
        items.delete(key);
      }
    }
    // A closed room reveals nothing more: the buttons go with it.
    if (lobby.ended.value !== null) {
      log.querySelectorAll('.roll-reveal').forEach((control) => {
        control.remove();
      });
    }
  });

  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'rolls-title' },
    h('h2', { id: 'rolls-title' }, 'Rolls'),
    empty,
    log,
  );
}

/** The host may reveal a secret roll they see in full, once, while the room is live. */
function mayReveal(lobby: LobbyStore, roll: Roll): boolean {
  return (
    lobby.you.host &&
    lobby.ended.peek() === null &&
    roll.visibility === 'host' &&
    roll.hidden !== true &&
    roll.revealed !== true &&
    roll.id !== undefined
  );
}

/**
 * "Reveal to the room": after it, the `roll_revealed` event (or the answer) replaces the entry
 * with the revealed roll, so this button goes with the old entry.
 */
function revealControl(roll: Roll, actions: Pick<LobbyActions, 'reveal'>): HTMLElement {
  const error = h('span', { class: 'field-error', role: 'alert', 'data-testid': 'reveal-error' });
  const button = h(
    'button',
    {
      type: 'button',
      class: 'button button--secondary button--small',
      'data-testid': 'reveal-button',
      'aria-label': `Reveal ${roll.player.name}'s secret roll to the room`,
    },
    'Reveal to the room',
  );
  button.addEventListener('click', () => {
    button.disabled = true;
    error.textContent = '';
    void actions.reveal(roll).then((problem) => {
      if (problem === null) return;
      button.disabled = false;
      error.textContent = problem;
    });
  });
  return h('div', { class: 'roll-reveal' }, button, ' ', error);
}
