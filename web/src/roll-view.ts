/**
 * The DOM of one roll in the log: who rolled what, every die (dropped ones struck through and
 * announced as dropped), and the total.
 */
import { type Child, h } from './dom.js';
import { describeRoll, rollParts, splitAtPosition } from './format-roll.js';
import type { Roll } from './types.js';

/** Renders a roll as a log entry. `mine` highlights the viewer's own rolls. */
export function renderRollItem(roll: Roll, mine: boolean): HTMLLIElement {
  if (roll.hidden === true) return renderSecretPlaceholder(roll, mine);
  const parts = rollParts(roll.terms).map((part): Child => {
    if (part.kind === 'operator') return h('span', { class: 'roll-operator' }, part.text);
    if (part.kind === 'constant') return h('span', { class: 'roll-constant' }, String(part.value));
    return h(
      'span',
      { class: 'roll-term' },
      h('span', { class: 'roll-term-notation' }, part.notation),
      h('span', { class: 'dice' }, ...part.dice.map((die) => renderDie(die.value, die.kept))),
    );
  });
  const time = formatTime(roll.rolled_at);
  return h(
    'li',
    { class: mine ? 'roll roll--mine' : 'roll', 'data-testid': 'roll-item', title: describeRoll(roll) },
    h(
      'div',
      { class: 'roll-head' },
      h('span', { class: 'roll-player', 'data-testid': 'roll-player' }, roll.player.name),
      mine ? h('span', { class: 'tag' }, 'you') : null,
      ' rolled ',
      h('code', { class: 'roll-notation', 'data-testid': 'roll-notation' }, roll.notation),
      roll.visibility === 'host'
        ? h(
            'span',
            { class: 'tag', 'data-testid': 'roll-secret' },
            roll.revealed === true ? 'secret, revealed' : 'secret: host only',
          )
        : null,
      roll.label === null
        ? null
        : h('span', { class: 'roll-label', 'data-testid': 'roll-label' }, roll.label),
      time === null ? null : h('time', { class: 'roll-time', datetime: roll.rolled_at }, time),
    ),
    h(
      'div',
      { class: 'roll-body' },
      h('span', { class: 'roll-parts' }, ...parts),
      h('span', { class: 'roll-equals', 'aria-hidden': 'true' }, '='),
      h('span', { class: 'visually-hidden' }, 'total '),
      h('span', { class: 'roll-total', 'data-testid': 'roll-total' }, String(roll.total)),
    ),
  );
}

/** "Pat rolled in secret": all a player other than the roller and the host learns of a secret roll. */
function renderSecretPlaceholder(roll: Roll, mine: boolean): HTMLLIElement {
  const time = formatTime(roll.rolled_at);
  return h(
    'li',
    { class: 'roll roll--secret', 'data-testid': 'roll-item', 'data-secret': 'true' },
    h(
      'div',
      { class: 'roll-head' },
      h('span', { class: 'roll-player', 'data-testid': 'roll-player' }, roll.player.name),
      mine ? h('span', { class: 'tag' }, 'you') : null,
      h('span', { 'data-testid': 'roll-secret-placeholder' }, ' rolled in secret'),
      time === null ? null : h('time', { class: 'roll-time', datetime: roll.rolled_at }, time),
    ),
  );
}

function renderDie(value: number, kept: boolean): HTMLElement {
  return h(
    'span',
    {
      class: kept ? 'die die--kept' : 'die die--dropped',
      'data-testid': 'die',
      'data-kept': String(kept),
      title: kept ? undefined : 'dropped',
    },
    kept ? null : h('span', { class: 'visually-hidden' }, 'dropped '),
    String(value),
  );
}

/**
 * The notation with the character at `position` marked, for an `INVALID_DICE_NOTATION` answer.
 * An error at the very end (something missing) is marked after the last character.
 */
export function renderNotationError(notation: string, position: number): HTMLElement {
  const split = splitAtPosition(notation, position);
  return h(
    'p',
    { class: 'notation-error', 'data-testid': 'notation-error-position' },
    `At character ${Math.min(position, notation.length) + 1}: `,
    h(
      'code',
      {},
      split.before,
      h('mark', {}, split.at === '' ? '\u2002' : split.at),
      split.at === '' ? h('span', { class: 'visually-hidden' }, ' (end of input)') : null,
      split.after,
    ),
  );
}

/**
 * When a roll happened, in the viewer's locale: the time for today's rolls, the date too for
 * older ones (history reaches back further than one evening; issue 14).
 */
export function formatTime(iso: string, now: Date = new Date()): string | null {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return null;
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (date.toDateString() === now.toDateString()) return time;
  return `${date.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' })} ${time}`;
}
