/**
 * Account page: delete the account (the current password required, and a second click to
 * confirm). Rooms the account hosts close; the session ends. An account with a second factor
 * needs a session that proved it recently (STEP_UP_REQUIRED otherwise): the section asks "confirm
 * it's you" and sends the deletion once more.
 */
import { h } from '../dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from '../forms.js';
import type { AccountActions, AccountSectionContext } from './account-section.js';
import { sectionFrame, sectionStepUp, showUnconfirmed, statusLine } from './account-section.js';
import type { StepUpActions } from './step-up.js';

/** The delete-account section. */
export function accountDelete(
  ctx: AccountSectionContext<Pick<AccountActions, 'deleteAccount' | keyof StepUpActions>>,
): HTMLElement {
  const { actions, until } = ctx;
  const stepUp = sectionStepUp(ctx);
  const current = buildField({
    name: 'current_password',
    label: 'Current password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    testId: 'delete-current-password-input',
  });
  const alert = buildAlert('delete-error');
  const status = statusLine('delete-status');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--danger', 'data-testid': 'delete-account-button' },
    'Delete my account',
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': 'delete-form' },
    alert.element,
    current.element,
    button,
  );
  let armed = false;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    status.hidden = true;
    if (!checkRequired([current], alert)) return;
    if (!armed) {
      // A second, deliberate click: this cannot be undone.
      armed = true;
      button.textContent = 'Yes, delete it for good';
      alert.show('This deletes your account and closes the rooms you host. Click again to confirm.');
      return;
    }
    setBusy(form, button, true, 'Deleting…');
    const password = current.input.value;
    void stepUp
      .sensitive(() => actions.deleteAccount(password))
      .then((result) => {
        if (until.aborted) return;
        if (result.ok) {
          ctx.signedOut('Your account was deleted.');
          return;
        }
        setBusy(form, button, false, '');
        // Still armed: the person already confirmed the deletion once.
        const cancelled = 'Your account was not deleted.';
        if (showUnconfirmed(result, { line: status, alert, button, cancelled })) return;
        showProblem(result.problem, [current], alert, { INVALID_CREDENTIALS: 'current_password' });
      });
  });
  return sectionFrame(
    'account-delete',
    'Delete account',
    h('p', {}, 'Your sessions end and the rooms you host close. The audit log keeps only an anonymous id.'),
    status,
    form,
    stepUp.element,
  );
}
