/**
 * Joining a room as a player: the join form (room code + display name, no account) and the
 * claim-code form (a seat moved from another device). The answers set HttpOnly cookies scoped to
 * `/rooms/{code}`, which the browser then sends on that room's calls by itself.
 */
import { h } from '../dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from '../forms.js';
import type { RoomActions } from '../room-actions.js';
import { canonicalRoomCode } from '../routes.js';
import { normalizeRoomCode, PLAYER_NAME_MAX_LENGTH, ROOM_CODE_LENGTH } from '../shared.js';
import type { JoinResult } from '../types.js';

/** Options of {@link joinForm}. */
export interface JoinFormOptions {
  /** Pre-filled code. */
  code?: string | undefined;
  /** The code is fixed (joining the room on screen): no code field. */
  fixedCode?: string;
  /** Label of the submit button. @default 'Join room' */
  submitLabel?: string;
  /** Aborted when the form leaves the screen: a late answer is then ignored. */
  until: AbortSignal;
  onJoined(result: JoinResult): void;
}

/** The join form, used by the join page and by a room's lobby for visitors who are not in it yet. */
export function joinForm(actions: Pick<RoomActions, 'joinRoom'>, options: JoinFormOptions): HTMLFormElement {
  const codeField =
    options.fixedCode === undefined
      ? buildField({
          name: 'code',
          label: 'Room code',
          required: true,
          autocomplete: 'off',
          autocapitalize: 'characters',
          spellcheck: false,
          maxLength: 16,
          placeholder: 'ABCD2345',
          value: options.code,
          testId: 'join-code-input',
        })
      : undefined;
  const player = buildField({
    name: 'player',
    label: 'Your name',
    required: true,
    autocomplete: 'nickname',
    // The limit counts code points; an emoji is 2 UTF-16 units (what `maxlength` counts), hence ×2.
    maxLength: PLAYER_NAME_MAX_LENGTH * 2,
    hint: `Up to ${PLAYER_NAME_MAX_LENGTH} characters; others in the room will see it.`,
    testId: 'player-name-input',
  });
  const fields = codeField === undefined ? [player] : [codeField, player];
  const alert = buildAlert('join-error');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'join-button' },
    options.submitLabel ?? 'Join room',
  );
  const form = h(
    'form',
    { novalidate: true, class: 'join-form', 'data-testid': 'join-form' },
    alert.element,
    ...fields.map((f) => f.element),
    button,
  );

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired(fields, alert)) return;
    const code = options.fixedCode ?? canonicalRoomCode(codeField?.input.value ?? '');
    if (codeField !== undefined) {
      codeField.input.value = code;
      // The server's own room-code rule: a code that cannot exist is refused without a request.
      if (normalizeRoomCode(code) === undefined) {
        codeField.showError(`A room code is ${ROOM_CODE_LENGTH} letters and digits, like ABCD2345.`);
        alert.show('Please check the room code.');
        codeField.input.focus();
        return;
      }
    }
    setBusy(form, button, true, 'Joining…');
    void (async () => {
      const result = await actions.joinRoom(code, player.input.value.trim());
      if (options.until.aborted) return;
      setBusy(form, button, false, '');
      if (!result.ok) {
        // A room that does not exist, or no longer does, is the code field's problem.
        showProblem(result.problem, fields, alert, { ROOM_NOT_FOUND: 'code', PLAYER_NAME_TAKEN: 'player' });
        if (result.problem.code === 'ROOM_NOT_FOUND') {
          alert.element.append(' Check the code with your host; closed rooms cannot be joined.');
        }
        return;
      }
      options.onJoined(result.data);
    })();
  });
  return form;
}

/** Options of {@link claimForm}. */
export interface ClaimFormOptions {
  /** The room the seat is in. */
  code: string;
  /** Aborted when the form leaves the screen: a late answer is then ignored. */
  until: AbortSignal;
  onJoined(result: JoinResult): void;
}

/**
 * The claim-code form: moves a seat from another device (or one the host handed over) to this
 * browser. The server answers one `CLAIM_CODE_INVALID` for unknown, used and expired codes.
 */
export function claimForm(
  actions: Pick<RoomActions, 'claimSeat'>,
  options: ClaimFormOptions,
): HTMLFormElement {
  const claim = buildField({
    name: 'claim_code',
    label: 'Claim code',
    required: true,
    autocomplete: 'off',
    autocapitalize: 'characters',
    spellcheck: false,
    maxLength: 32,
    placeholder: 'ABCD-EFGH-JKMN',
    hint: 'Shown on your other device under “Play on another device”, or given by the host.',
    testId: 'claim-code-input',
  });
  const alert = buildAlert('claim-error');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--secondary', 'data-testid': 'claim-button' },
    'Continue here',
  );
  const form = h('form', { novalidate: true, class: 'claim-form' }, alert.element, claim.element, button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([claim], alert)) return;
    setBusy(form, button, true, 'Checking…');
    void (async () => {
      const result = await actions.claimSeat(options.code, claim.input.value.trim());
      if (options.until.aborted) return;
      setBusy(form, button, false, '');
      if (!result.ok) {
        showProblem(result.problem, [claim], alert, { CLAIM_CODE_INVALID: 'claim_code' });
        return;
      }
      options.onJoined(result.data);
    })();
  });
  return form;
}
