/**
 * Sign up and log in pages.
 */
import { h } from './dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from './forms.js';
import { linkButton, noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import { PASSWORD_MIN_LENGTH, passwordTooShort } from './password-rule.js';
import { loginHash } from './routes.js';
import { loadCurrentUser, logIn, register } from './session.js';

/** `#/login`. */
export function renderLogin(ctx: PageContext, next: string | undefined): void {
  setTitle('Log in');
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
  ctx.main.append(
    pageHeading('Log in'),
    noticeBanner(ctx.notice) ?? '',
    ctx.user === null ? form : h('p', {}, `You are signed in as ${ctx.user.email}.`),
    h(
      'p',
      { class: 'aside' },
      h('a', { href: '#/forgot-password', 'data-testid': 'forgot-link' }, 'Forgot your password?'),
      ' No account yet? ',
      h('a', { href: '#/signup' }, 'Sign up'),
      '. Just playing? ',
      h('a', { href: '#/join' }, 'Join a room'),
      ' — no account needed.',
    ),
  );

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([email, password], alert)) return;
    setBusy(form, button, true, 'Logging in…');
    void (async () => {
      const result = await logIn(email.input.value.trim(), password.input.value);
      if (ctx.signal.aborted) return;
      if (!result.ok) {
        setBusy(form, button, false, '');
        showProblem(result.problem, [email, password], alert);
        if (result.problem.code === 'INVALID_CREDENTIALS') password.input.select();
        return;
      }
      const me = await loadCurrentUser();
      if (ctx.signal.aborted) return;
      ctx.setUser(me.ok ? me.data : null);
      ctx.navigate(next === undefined ? '#/' : `#${next}`, 'You are logged in.');
    })();
  });
}

/** `#/signup`. Signs the new account in straight away. */
export function renderSignup(ctx: PageContext): void {
  setTitle('Sign up');
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
  const password = buildField({
    name: 'password',
    label: 'Password',
    type: 'password',
    autocomplete: 'new-password',
    required: true,
    minLength: PASSWORD_MIN_LENGTH,
    hint: `At least ${PASSWORD_MIN_LENGTH} characters, and not a commonly used password.`,
    testId: 'password-input',
  });
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
  ctx.main.append(
    pageHeading('Sign up'),
    h(
      'p',
      {},
      'An account lets you host rooms. Players join with a room code and a name — no account needed.',
    ),
    ctx.user === null ? form : h('p', {}, `You are signed in as ${ctx.user.email}.`),
    h('p', { class: 'aside' }, 'Already have an account? ', h('a', { href: '#/login' }, 'Log in'), '.'),
  );

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([email, password], alert)) return;
    const short = passwordTooShort(password.input.value);
    if (short !== undefined) {
      showProblem(short, fields, alert, { WEAK_PASSWORD: 'password' });
      return;
    }
    setBusy(form, button, true, 'Creating account…');
    void (async () => {
      const input = { email: email.input.value.trim(), password: password.input.value };
      const name = fullName.input.value.trim();
      const created = await register(name === '' ? input : { ...input, full_name: name });
      if (ctx.signal.aborted) return;
      if (!created.ok) {
        setBusy(form, button, false, '');
        showProblem(created.problem, fields, alert, { EMAIL_TAKEN: 'email', WEAK_PASSWORD: 'password' });
        if (created.problem.code === 'EMAIL_TAKEN') {
          alert.element.append(' ', linkButton('Log in instead', loginHash(), 'login-instead', 'link'));
        }
        return;
      }
      const login = await logIn(input.email, input.password);
      if (ctx.signal.aborted) return;
      if (!login.ok) {
        ctx.navigate(loginHash(), 'Your account was created. Please log in.');
        return;
      }
      const me = await loadCurrentUser();
      if (ctx.signal.aborted) return;
      ctx.setUser(me.ok ? me.data : created.data);
      ctx.navigate('#/', 'Your account was created and you are logged in.');
    })();
  });
}
