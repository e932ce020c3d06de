/**
 * The sign-up form: email, optional name, password. The password lengths come from the server
 * (`store.passwordPolicy`, `GET /auth/password-policy`) and are checked here only to answer
 * sooner; until they are known the server alone checks, and its answer always counts.
 */
import type { AccountActions } from '../account-actions.js';
import { h } from '../dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from '../forms.js';
import { linkButton } from '../page.js';
import { buildNewPasswordField, passwordLengthAccepted } from '../password-rule.js';
import { loginHash } from '../routes.js';
import type { AppStore } from '../store.js';

/** Options of {@link signupForm}. */
export interface SignupFormOptions {
  /** Aborted when the form leaves the screen: a late answer is then ignored. */
  until: AbortSignal;
  /** The account exists; `loggedIn` is false when the login after it failed. */
  onSignedUp(loggedIn: boolean): void;
}

/** The form; errors show in its `form-error` alert and under the fields. */
export function signupForm(
  store: Pick<AppStore, 'passwordPolicy'>,
  actions: Pick<AccountActions, 'signUp'>,
  options: SignupFormOptions,
): HTMLFormElement {
  const email = buildField({
    name: 'email',
    label: 'Email',
    type: 'email',
    autocomplete: 'email',
    required: true,
    testId: 'email-input',
  });
  const fullName = buildField({
    name: 'full_name',
    label: 'Your name',
    autocomplete: 'name',
    maxLength: 400,
    testId: 'full-name-input',
  });
  const password = buildNewPasswordField(
    { name: 'password', label: 'Password', testId: 'password-input' },
    store.passwordPolicy,
    options.until,
  );
  const fields = [email, fullName, password];
  const alert = buildAlert('form-error');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'signup-button' },
    'Create account',
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': 'signup-form' },
    alert.element,
    ...fields.map((f) => f.element),
    button,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([email, password], alert)) return;
    if (!passwordLengthAccepted(password, fields, store.passwordPolicy.peek(), alert)) return;
    setBusy(form, button, true, 'Creating account…');
    void (async () => {
      const input = { email: email.input.value.trim(), password: password.input.value };
      const name = fullName.input.value.trim();
      const result = await actions.signUp(name === '' ? input : { ...input, full_name: name });
      if (options.until.aborted) return;
      setBusy(form, button, false, '');
      if (!result.ok) {
        showProblem(result.problem, fields, alert, { EMAIL_TAKEN: 'email', WEAK_PASSWORD: 'password' });
        if (result.problem.code === 'EMAIL_TAKEN') {
          alert.element.append(' ', linkButton('Log in instead', loginHash(), 'login-instead', 'link'));
        }
        return;
      }
      options.onSignedUp(result.loggedIn);
    })();
  });
  return form;
}
