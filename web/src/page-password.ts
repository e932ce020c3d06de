/**
 * Forgot and reset password pages (issue 12). The forgot page says the same thing for every
 * address, as the server does: it never tells whether an account exists.
 */
import { requestPasswordReset, resetPassword } from './account-api.js';
import { h } from './dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from './forms.js';
import { noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import { buildNewPasswordField, passwordLengthAccepted } from './password-rule.js';
import { loginHash } from './routes.js';
import { loadCurrentUser } from './session.js';

/** `#/forgot-password`. */
export function renderForgotPassword(ctx: PageContext): void {
  setTitle('Forgot password');
  const email = buildField({
    name: 'email',
    label: 'Email',
    type: 'email',
    autocomplete: 'username',
    required: true,
    testId: 'forgot-email-input',
  });
  const alert = buildAlert('form-error');
  const done = h('p', { class: 'notice', role: 'status', 'data-testid': 'forgot-sent', hidden: true });
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'forgot-button' },
    'Mail me a link',
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': 'forgot-form' },
    alert.element,
    email.element,
    button,
  );
  ctx.main.append(
    pageHeading('Forgot your password?'),
    noticeBanner(ctx.notice) ?? '',
    h('p', {}, 'Enter the address of your account and we will mail you a link to choose a new password.'),
    done,
    form,
    h('p', { class: 'aside' }, 'Remembered it? ', h('a', { href: loginHash() }, 'Log in'), '.'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([email], alert)) return;
    setBusy(form, button, true, 'Sending…');
    void (async () => {
      const result = await requestPasswordReset(email.input.value.trim());
      if (ctx.signal.aborted) return;
      setBusy(form, button, false, '');
      if (!result.ok) {
        showProblem(result.problem, [email], alert);
        return;
      }
      // The same words whatever the address: the server does not say either.
      done.textContent = `If ${email.input.value.trim()} has an account, a link is on its way. It works once, for 30 minutes at most.`;
      done.hidden = false;
      form.hidden = true;
    })();
  });
}

/** `#/reset-password?token=…`, the page the reset mail links to. */
export function renderResetPassword(ctx: PageContext, token: string | undefined): void {
  setTitle('Choose a new password');
  ctx.main.append(pageHeading('Choose a new password'));
  if (token === undefined) {
    ctx.main.append(missingToken('forgot-password'));
    return;
  }
  // The lengths are the server's (`GET /auth/password-policy`); until they arrive it alone checks.
  void ctx.account.loadPasswordPolicy();
  const password = buildNewPasswordField(
    { name: 'password', label: 'New password', testId: 'new-password-input' },
    ctx.store.passwordPolicy,
    ctx.signal,
  );
  const alert = buildAlert('form-error');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'reset-button' },
    'Set the new password',
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': 'reset-form' },
    alert.element,
    password.element,
    button,
  );
  ctx.main.append(
    h('p', {}, 'Every session of your account ends when the new password is set; second factors stay on.'),
    form,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([password], alert)) return;
    if (!passwordLengthAccepted(password, [password], ctx.store.passwordPolicy.peek(), alert)) return;
    setBusy(form, button, true, 'Saving…');
    void (async () => {
      const result = await resetPassword(token, password.input.value);
      if (ctx.signal.aborted) return;
      if (!result.ok) {
        setBusy(form, button, false, '');
        showProblem(result.problem, [password], alert, { WEAK_PASSWORD: 'password' });
        if (result.problem.code === 'INVALID_LINK_TOKEN') {
          alert.element.append(
            ' ',
            h('a', { href: '#/forgot-password', 'data-testid': 'ask-again' }, 'Ask for a new link'),
          );
        }
        return;
      }
      // Every session of that account ended (this browser's too, if it was signed in to it).
      const me = await loadCurrentUser();
      if (ctx.signal.aborted) return;
      ctx.account.recordUser(me.ok ? me.data : null);
      ctx.navigate(loginHash(), 'Your password was changed. Log in with the new one.');
    })();
  });
}

/** What a link page says when opened without its token (a mangled or hand-typed address). */
export function missingToken(askAgain: 'forgot-password' | 'account'): HTMLElement {
  return h(
    'p',
    { class: 'alert', role: 'alert', 'data-testid': 'missing-token' },
    'This link is incomplete. Open the link from the mail again, or ',
    h('a', { href: `#/${askAgain}` }, 'ask for a new one'),
    '.',
  );
}
