/**
 * The login form. On success the account actions have recorded who is signed in; the form then
 * hands over to `onLoggedIn` (the page decides where to go).
 */
import type { AccountActions } from '../account-actions.js';
import { h } from '../dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from '../forms.js';

/** Options of {@link loginForm}. */
export interface LoginFormOptions {
  /** Aborted when the form leaves the screen: a late answer is then ignored. */
  until: AbortSignal;
  onLoggedIn(): void;
}

/** The form; errors show in its `form-error` alert and under the fields. */
export function loginForm(
  actions: Pick<AccountActions, 'logIn'>,
  options: LoginFormOptions,
): HTMLFormElement {
  const email = buildField({
    name: 'email',
    label: 'Email',
    type: 'email',
    autocomplete: 'username',
    required: true,
    testId: 'email-input',
  });
  const password = buildField({
    name: 'password',
    label: 'Password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    testId: 'password-input',
  });
  const alert = buildAlert('form-error');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'login-button' },
    'Log in',
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': 'login-form' },
    alert.element,
    email.element,
    password.element,
    button,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([email, password], alert)) return;
    setBusy(form, button, true, 'Logging in…');
    void (async () => {
      const result = await actions.logIn(email.input.value.trim(), password.input.value);
      if (options.until.aborted) return;
      setBusy(form, button, false, '');
      if (!result.ok) {
        showProblem(result.problem, [email, password], alert);
        if (result.problem.code === 'INVALID_CREDENTIALS') password.input.select();
        return;
      }
      options.onLoggedIn();
    })();
  });
  return form;
}
