/**
 * Sign up and log in pages. Each follows `store.user`: signed in, it says so instead of the form.
 */
import { passkeyLogin } from './components/login-factors.js';
import { loginForm } from './components/login-form.js';
import { signupForm } from './components/signup-form.js';
import { watchValue } from './components/watch.js';
import { h, setChildren } from './dom.js';
import { noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import { loginHash } from './routes.js';
import type { User } from './types.js';

/**
 * `#/login`; `next` is where to go once logged in. `returnTo` is a server page of this origin (the
 * OAuth provider's `/authorize` or `/oauth/logout`, already checked by `parseRoute`): after the
 * login the browser leaves the UI for it, and the provider continues the app's sign-in.
 */
export function renderLogin(
  ctx: PageContext,
  next: string | undefined,
  returnTo?: string,
  reauthenticate = false,
): void {
  setTitle('Log in');
  // Built once, for the page's lifetime: logging in swaps it out (the store now has a user), and
  // its answer must still reach `onLoggedIn`, so it is bound to the page, not to the swap.
  const onLoggedIn = () =>
    returnTo === undefined
      ? ctx.navigate(next === undefined ? '#/' : `#${next}`, 'You are logged in.')
      : window.location.assign(returnTo);
  const form = loginForm(ctx.account, { until: ctx.signal, onLoggedIn });
  // The passkey button sits beside the form and goes with it once someone is signed in.
  const visitor = h('div', {}, form, passkeyLogin(ctx.account, { until: ctx.signal, onLoggedIn }));
  const body = h('div');
  ctx.main.append(
    pageHeading('Log in'),
    noticeBanner(ctx.notice) ?? '',
    body,
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
  if (reauthenticate) {
    // The app asked for a fresh sign-in (OIDC `prompt=login` / `max_age`): the form is shown even
    // to a signed-in person, and signing in replaces the browser's session.
    setChildren(
      body,
      h('p', { 'data-testid': 'reauthenticate-note' }, 'The app asks you to sign in again to continue.'),
      visitor,
    );
    return;
  }
  formOrSignedIn(ctx, body, visitor);
}

/** `#/signup`. Signs the new account in straight away. */
export function renderSignup(ctx: PageContext): void {
  setTitle('Sign up');
  // The password lengths are the server's setting: ask for them rather than copy them.
  void ctx.account.loadPasswordPolicy();
  const form = signupForm(ctx.store, ctx.account, {
    until: ctx.signal,
    onSignedUp: (loggedIn) =>
      loggedIn
        ? ctx.navigate('#/', 'Your account was created and you are logged in.')
        : ctx.navigate(loginHash(), 'Your account was created. Please log in.'),
  });
  const body = h('div');
  ctx.main.append(
    pageHeading('Sign up'),
    h(
      'p',
      {},
      'An account lets you host rooms. Players join with a room code and a name — no account needed.',
    ),
    body,
    h('p', { class: 'aside' }, 'Already have an account? ', h('a', { href: '#/login' }, 'Log in'), '.'),
  );
  formOrSignedIn(ctx, body, form);
}

/** Shows `form` to visitors, and who is signed in to users, following the store. */
function formOrSignedIn(ctx: PageContext, body: HTMLElement, form: HTMLElement): void {
  watchValue(
    ctx.signal,
    () => ctx.store.user.value,
    (user: User | null) =>
      setChildren(
        body,
        user === null
          ? form
          : h('p', { 'data-testid': 'signed-in-as' }, `You are signed in as ${user.email}.`),
      ),
  );
}
