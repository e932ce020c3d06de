// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { rollForm } from '../../../web/src/components/roll-form.js';
import type { LobbyActions } from '../../../web/src/lobby-controller.js';
import { DICE_LIMITS, ROLL_LABEL_MAX_LENGTH } from '../../../web/src/shared.js';
import { createLobbyStore } from '../../../web/src/store.js';
import { problemOf, settle, snapshotOf } from '../fixtures.js';

const open = new AbortController().signal;
afterEach(() => {
  document.body.replaceChildren();
});

function setUp(roll: LobbyActions['roll']) {
  const lobby = createLobbyStore(snapshotOf());
  const card = rollForm(lobby, { roll }, open);
  document.body.append(card);
  const get = <T extends HTMLElement>(testId: string) => {
    const element = card.querySelector<T>(`[data-testid="${testId}"]`);
    if (element === null) throw new Error(`no ${testId}`);
    return element;
  };
  return {
    lobby,
    card,
    notation: get<HTMLInputElement>('notation-input'),
    label: get<HTMLInputElement>('label-input'),
    button: get<HTMLButtonElement>('roll-button'),
    form: get<HTMLFormElement>('roll-form'),
    alert: get('roll-error'),
    get,
  };
}

describe('rollForm', () => {
  it('sizes its fields from the shared limits', () => {
    const { notation, label } = setUp(vi.fn());
    expect(notation.maxLength).toBe(DICE_LIMITS.maxInputLength);
    expect(label.maxLength).toBe(ROLL_LABEL_MAX_LENGTH * 2);
  });

  it('rolls in secret (host only) while the box is ticked, quick rolls included', async () => {
    const roll = vi.fn<LobbyActions['roll']>(async () => ({ ok: true, status: 201, data: {} }));
    const { notation, form, get } = setUp(roll);
    get<HTMLInputElement>('secret-input').checked = true;
    notation.value = '1d20';
    form.requestSubmit();
    expect(roll).toHaveBeenLastCalledWith('1d20', '', true);
    await settle();
    get<HTMLButtonElement>('quick-roll-d6').click();
    expect(roll).toHaveBeenLastCalledWith('1d6', '', true);
    await settle();
    get<HTMLInputElement>('secret-input').checked = false;
    get<HTMLButtonElement>('quick-roll-d6').click();
    expect(roll).toHaveBeenLastCalledWith('1d6', '', false);
  });

  it('asks for dice instead of sending an empty notation', () => {
    const roll = vi.fn<LobbyActions['roll']>();
    const { notation, form } = setUp(roll);
    notation.value = '   ';
    form.requestSubmit();
    expect(roll).not.toHaveBeenCalled();
    expect(form.textContent).toContain('Type some dice first');
    expect(document.activeElement).toBe(notation);
  });

  it('sends the trimmed notation and label, and holds the buttons until the answer', async () => {
    let answer: (value: Awaited<ReturnType<LobbyActions['roll']>>) => void = () => {};
    const roll = vi.fn<LobbyActions['roll']>(
      () =>
        new Promise((resolve) => {
          answer = resolve;
        }),
    );
    const { notation, label, form, button, get } = setUp(roll);
    notation.value = ' 2d6+3 ';
    label.value = ' Attack ';
    form.requestSubmit();
    expect(roll).toHaveBeenCalledWith('2d6+3', 'Attack', false);
    expect(notation.value).toBe('2d6+3');
    expect(button.disabled).toBe(true);
    expect(form.getAttribute('aria-busy')).toBe('true');
    // A second tap while the first roll is in flight rolls nothing.
    get<HTMLButtonElement>('quick-roll-d20').click();
    expect(roll).toHaveBeenCalledTimes(1);
    answer({ ok: true, status: 201, data: {} });
    await settle();
    expect(button.disabled).toBe(false);
    // The label went with its roll: cleared, and never applied to a quick roll.
    expect(label.value).toBe('');
    label.value = 'Stealth';
    get<HTMLButtonElement>('quick-roll-d20').click();
    expect(roll).toHaveBeenLastCalledWith('1d20', '', false);
    expect(label.value).toBe('Stealth');
  });

  it('points at the offending character of a refused notation', async () => {
    const roll = vi.fn<LobbyActions['roll']>(async () => ({
      ok: false,
      problem: problemOf(400, 'INVALID_DICE_NOTATION', 'Unexpected character.', { position: 4 }),
    }));
    const { notation, form, alert } = setUp(roll);
    notation.value = '2d20x';
    form.requestSubmit();
    await settle();
    expect(alert.hidden).toBe(false);
    expect(alert.textContent).toContain('Unexpected character.');
    expect(alert.querySelector('[data-testid="notation-error-position"]')?.textContent).toContain(
      'At character 5',
    );
    expect(notation.getAttribute('aria-invalid')).toBe('true');
    expect(document.activeElement).toBe(notation);
    expect([notation.selectionStart, notation.selectionEnd]).toEqual([4, 5]);
  });

  it('leaves the page when the lobby ends, and rolls no more', () => {
    const roll = vi.fn<LobbyActions['roll']>();
    const { lobby, card, get } = setUp(roll);
    lobby.ended.value = 'The host closed this room.';
    expect(card.isConnected).toBe(false);
    get<HTMLButtonElement>('quick-roll-d6').click();
    expect(roll).not.toHaveBeenCalled();
  });
});
