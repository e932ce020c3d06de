/**
 * The login page's other factors: the second-factor prompt (a code from the authenticator app or
 * a recovery code, after a right password) and the passwordless "Sign in with a passkey" button.
 * Both sign in through the account actions, the only writers of `store.user`.
 */
import type { AccountActions } from '../account-actions.js';
import { h } from '../dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from '../forms.js';
import { problemMessage } from '../problem.js';

/** Options of {@link secondFactorForm}. */
export interface SecondFactorOptions {
  /** Aborted when the form leaves the screen: a late answer is then ignored. */
  until: AbortSignal;
  /** Runs once signed in. */
  onLoggedIn(): void;
  /** The pending sign-in expired or used up its tries: the password must be typed again. */
  onExpired(): void;
}

/** The code prompt of a sign-in whose password was right. */
export function secondFactorForm(
  actions: Pick<AccountActions, 'completeLogin'>,
  mfaToken: string,
  options: SecondFactorOptions,
): HTMLFormElement {
  const code = buildField({
    name: 'otp',
    label: 'Code from your authenticator app, or a recovery code',
    autocomplete: 'one-time-code',
    required: true,
    testId: 'otp-input',
  });
  code.input.setAttribute('inputmode', 'text');
  const alert = buildAlert('otp-error');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'otp-button' },
    'Verify',
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': 'otp-form' },
    h('p', {}, 'This account has two-step sign-in. Enter the current code of your authenticator app.'),
    alert.element,
    code.element,
    button,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([code], alert)) return;
    setBusy(form, button, true, 'Verifying…');
    void (async () => {
      const result = await actions.completeLogin(mfaToken, code.input.value.trim());
      if (options.until.aborted) return;
      setBusy(form, button, false, '');
      if (!result.ok) {
        if (result.problem.code === 'MFA_TOKEN_INVALID') {
          options.onExpired();
          return;
        }
        showProblem(result.problem, [code], alert, { INVALID_OTP: 'otp' });
        code.input.select();
        return;
      }
      options.onLoggedIn();
    })();
  });
  queueMicrotask(() => code.input.focus());
  return form;
}

/** Options of {@link passkeyLogin}. */
export interface PasskeyLoginOptions {
  /** Aborted when the button leaves the screen: a late answer is then ignored. */
  until: AbortSignal;
  /** Runs once signed in. */
  onLoggedIn(): void;
}

/** "Sign in with a passkey": no email, no password (discoverable credentials). */
export function passkeyLogin(
  actions: Pick<AccountActions, 'logInWithPasskey'>,
  options: PasskeyLoginOptions,
): HTMLElement {
  const alert = buildAlert('passkey-login-error');
  const button = h(
    'button',
    { type: 'button', class: 'button button--secondary', 'data-testid': 'passkey-login-button' },
    'Sign in with a passkey',
  );
  button.addEventListener('click', () => {
    alert.clear();
    button.disabled = true;
    void (async () => {
      const result = await actions.logInWithPasskey();
      if (options.until.aborted) return;
      button.disabled = false;
      if (!result.ok) {
        alert.show(problemMessage(result.problem));
        return;
      }
      options.onLoggedIn();
    })();
  });
  return h(
    'div',
    { class: 'passkey-login' },
    h('p', { class: 'aside' }, 'Or, without a password:'),
    alert.element,
    button,
  );
}
