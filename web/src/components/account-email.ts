/**
 * Account page: change the address. The server mails a link to the new address and a notice to
 * the current one; the address changes only when the link is followed. An account with a second
 * factor needs a session that proved it recently (STEP_UP_REQUIRED otherwise): the section asks
 * "confirm it's you" and sends the change once more.
 */
import { h } from '../dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from '../forms.js';
import type { AccountActions, AccountSectionContext } from './account-section.js';
import { say, sectionFrame, sectionStepUp, showUnconfirmed, statusLine } from './account-section.js';
import type { StepUpActions } from './step-up.js';

/** The change-email section. */
export function accountEmail(
  ctx: AccountSectionContext<Pick<AccountActions, 'requestEmailChange' | keyof StepUpActions>>,
): HTMLElement {
  const { actions, until } = ctx;
  const stepUp = sectionStepUp(ctx);
  const email = buildField({
    name: 'email',
    label: 'New email',
    type: 'email',
    autocomplete: 'email',
    required: true,
    testId: 'new-email-input',
  });
  const current = buildField({
    name: 'current_password',
    label: 'Current password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    testId: 'email-current-password-input',
  });
  const fields = [email, current];
  const alert = buildAlert('email-error');
  const status = statusLine('email-status');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'change-email-button' },
    'Change email',
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': 'email-form' },
    alert.element,
    email.element,
    current.element,
    button,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    status.hidden = true;
    if (!checkRequired(fields, alert)) return;
    setBusy(form, button, true, 'Sending…');
    const address = email.input.value.trim();
    const password = current.input.value;
    void stepUp
      .sensitive(() => actions.requestEmailChange(address, password))
      .then((result) => {
        if (until.aborted) return;
        setBusy(form, button, false, '');
        if (!result.ok) {
          const cancelled = 'Your email address was not changed.';
          if (showUnconfirmed(result, { line: status, alert, button, cancelled })) return;
          showProblem(result.problem, fields, alert, {
            EMAIL_TAKEN: 'email',
            INVALID_CREDENTIALS: 'current_password',
          });
          return;
        }
        form.reset();
        say(status, `Check ${address}: your address changes once you follow the link mailed there.`);
      });
  });
  return sectionFrame('account-email', 'Email address', status, form, stepUp.element);
}
