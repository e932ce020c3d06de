/**
 * The lobby's roll form: dice notation, an optional label, and one-die quick rolls.
 */
import { h } from '../dom.js';
import { buildAlert, buildField, showProblem } from '../forms.js';
import type { LobbyActions } from '../lobby-controller.js';
import { renderNotationError } from '../roll-view.js';
import { DICE_LIMITS, ROLL_LABEL_MAX_LENGTH } from '../shared.js';
import type { LobbyStore } from '../store.js';
import { watch } from './watch.js';

/** Sides of the quick-roll buttons. */
export const QUICK_DICE = [4, 6, 8, 10, 12, 20, 100] as const;

/** The "Roll dice" card, for players; it leaves the page when the lobby ends. */
export function rollForm(
  lobby: LobbyStore,
  actions: Pick<LobbyActions, 'roll'>,
  until: AbortSignal,
): HTMLElement {
  const notation = buildField({
    name: 'notation',
    label: 'Dice notation',
    required: true,
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: false,
    maxLength: DICE_LIMITS.maxInputLength,
    placeholder: '2d20kh1+5',
    hint: 'For example 1d20+3, 4d6kh3 (keep highest 3), 2d20kl1, 8d6dl2.',
    testId: 'notation-input',
  });
  const label = buildField({
    name: 'label',
    label: 'Label',
    autocomplete: 'off',
    // The limit counts code points; an emoji is 2 UTF-16 units (what `maxlength` counts), hence ×2.
    maxLength: ROLL_LABEL_MAX_LENGTH * 2,
    placeholder: 'Stealth check',
    testId: 'label-input',
  });
  // A secret roll goes to the host only (issue 14); the box stays as set, like a GM screen.
  const secret = h('input', { type: 'checkbox', name: 'secret', 'data-testid': 'secret-input' });
  const secretLabel = h('label', { class: 'roll-secret' }, secret, ' Secret roll (host only)');
  const alert = buildAlert('roll-error');
  const submit = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'roll-button' },
    'Roll',
  );
  const quick = QUICK_DICE.map((sides) => {
    const button = h(
      'button',
      {
        type: 'button',
        class: 'button button--die',
        'data-testid': `quick-roll-d${sides}`,
        'aria-label': `Roll 1d${sides}`,
      },
      `d${sides}`,
    );
    button.addEventListener('click', () => void roll(`1d${sides}`, false));
    return button;
  });
  const buttons = [submit, ...quick];
  const form = h(
    'form',
    { novalidate: true, class: 'roll-form', 'data-testid': 'roll-form' },
    alert.element,
    h('div', { class: 'roll-inputs' }, notation.element, label.element),
    h('div', { class: 'roll-submit' }, secretLabel, submit),
    h('div', { class: 'quick-dice', role: 'group', 'aria-label': 'Quick rolls: one die' }, ...quick),
  );

  let busy = false;
  /**
   * Rolls `text`. Only the form's own roll carries the label (issue 14): a quick roll never picks
   * up a label typed for something else, and a successful labelled roll clears the label, so it
   * cannot stick to the next one.
   */
  async function roll(text: string, withLabel: boolean): Promise<void> {
    if (busy || lobby.ended.peek() !== null) return;
    busy = true;
    alert.clear();
    notation.clearError();
    label.clearError();
    // Inputs stay enabled (and focused); only the buttons wait, so a double tap rolls once.
    for (const button of buttons) button.disabled = true;
    form.setAttribute('aria-busy', 'true');
    const sentLabel = withLabel ? label.input.value.trim() : '';
    const result = await actions.roll(text, sentLabel, secret.checked);
    busy = false;
    for (const button of buttons) button.disabled = false;
    form.setAttribute('aria-busy', 'false');
    if (until.aborted || lobby.ended.peek() !== null) return;
    if (result.ok) {
      // Cleared only if unchanged meanwhile: a label typed while the roll was in flight stays.
      if (withLabel && label.input.value.trim() === sentLabel) label.input.value = '';
      return;
    }
    const { problem } = result;
    showProblem(problem, [notation, label], alert);
    if (problem.code === 'INVALID_DICE_NOTATION') {
      // The alert already says what is wrong (and where); the field is only marked, not repeated.
      notation.input.setAttribute('aria-invalid', 'true');
      if (problem.position !== undefined) {
        alert.element.append(renderNotationError(text, problem.position));
        if (notation.input.value === text) {
          notation.input.focus();
          notation.input.setSelectionRange(problem.position, Math.min(problem.position + 1, text.length));
        }
      }
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    // Send exactly what is shown, so an error position points into the visible text.
    const text = notation.input.value.trim();
    notation.input.value = text;
    if (text === '') {
      notation.showError('Type some dice first, like 1d20 or 2d6+3.');
      notation.input.focus();
      return;
    }
    void roll(text, true);
  });

  const card = h(
    'section',
    { class: 'card', 'aria-labelledby': 'roll-title' },
    h('h2', { id: 'roll-title' }, 'Roll dice'),
    form,
  );
  watch(until, () => {
    if (lobby.ended.value !== null) card.remove();
  });
  return card;
}
