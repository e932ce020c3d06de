/**
 * Account page: change the password (the current one required; other sessions end). The lengths
 * come from the server's policy (`store.passwordPolicy`, loaded by the account page). An account
 * with a second factor needs a session that proved it recently: the server then answers
 * STEP_UP_REQUIRED, and the section asks "confirm it's you" and sends the change once more.
 */
import { h } from '../dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from '../forms.js';
import { buildNewPasswordField, passwordLengthAccepted } from '../password-rule.js';
import type { AccountActions, AccountSectionContext } from './account-section.js';
import { say, sectionFrame, sectionStepUp, showUnconfirmed, statusLine } from './account-section.js';
import type { StepUpActions } from './step-up.js';

/** The change-password section. */
export function accountPassword(
  ctx: AccountSectionContext<Pick<AccountActions, 'updateProfile' | keyof StepUpActions>>,
): HTMLElement {
  const { store, actions, until } = ctx;
  const stepUp = sectionStepUp(ctx);
  const current = buildField({
    name: 'current_password',
    label: 'Current password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    testId: 'current-password-input',
  });
  const next = buildNewPasswordField(
    { name: 'password', label: 'New password', testId: 'change-password-input' },
    store.passwordPolicy,
    until,
  );
  const fields = [current, next];
  const alert = buildAlert('password-error');
  const status = statusLine('password-status');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'change-password-button' },
    'Change password',
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': 'password-form' },
    alert.element,
    current.element,
    next.element,
    button,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    status.hidden = true;
    if (!checkRequired(fields, alert)) return;
    if (!passwordLengthAccepted(next, fields, store.passwordPolicy.peek(), alert)) return;
    setBusy(form, button, true, 'Changing…');
    // Read once: a retry after "confirm it's you" sends the same change.
    const change = { current_password: current.input.value, password: next.input.value };
    void stepUp
      .sensitive(() => actions.updateProfile(change))
      .then((result) => {
        if (until.aborted) return;
        setBusy(form, button, false, '');
        if (!result.ok) {
          const cancelled = 'Your password was not changed.';
          if (showUnconfirmed(result, { line: status, alert, button, cancelled })) return;
          showProblem(result.problem, fields, alert, {
            WEAK_PASSWORD: 'password',
            INVALID_CREDENTIALS: 'current_password',
          });
          return;
        }
        form.reset();
        store.user.value = result.data;
        say(status, 'Your password was changed. Your other sessions have ended.');
      });
  });
  return sectionFrame('account-password', 'Password', status, form, stepUp.element);
}
