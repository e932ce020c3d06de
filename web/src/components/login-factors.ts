/**
 * The login page's other factors: the second-factor prompt (a code from the authenticator app or
 * a recovery code, after a right password) and the passwordless "Sign in with a passkey" button.
 */
import { h } from '../dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from '../forms.js';
import type { PageContext } from '../page.js';
import { problemMessage } from '../problem.js';
import { completeLogin, logInWithPasskey } from '../security-api.js';

/** The code prompt of a sign-in whose password was right; `done` runs once signed in. */
export function secondFactorForm(ctx: PageContext, mfaToken: string, done: () => void): HTMLFormElement {
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
      const result = await completeLogin(mfaToken, code.input.value.trim());
      if (ctx.signal.aborted) return;
      if (!result.ok) {
        setBusy(form, button, false, '');
        if (result.problem.code === 'MFA_TOKEN_INVALID') {
          ctx.navigate('#/login', 'That sign-in expired or used up its tries. Please log in again.');
          return;
        }
        showProblem(result.problem, [code], alert, { INVALID_OTP: 'otp' });
        code.input.select();
        return;
      }
      done();
    })();
  });
  queueMicrotask(() => code.input.focus());
  return form;
}

/** "Sign in with a passkey": no email, no password (discoverable credentials). */
export function passkeyLogin(ctx: PageContext, done: () => void): HTMLElement {
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
      const result = await logInWithPasskey();
      if (ctx.signal.aborted) return;
      button.disabled = false;
      if (!result.ok) {
        alert.show(problemMessage(result.problem));
        return;
      }
      done();
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
