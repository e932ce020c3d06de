/**
 * Entry point: the app store, the navigation bar and the hash router. Each route renders into `<main>` with a
 * fresh {@link PageContext}; leaving a page aborts its signal, which closes its event stream.
 */
import { accountActions } from './account-actions.js';
import { forgetCsrfToken, whenUnauthenticated } from './api.js';
import { siteNav } from './components/site-nav.js';
import { watch } from './components/watch.js';
import { h } from './dom.js';
import { type PageContext, pageHeading, setTitle } from './page.js';
import { renderAccount } from './page-account.js';
import { renderAdmin } from './page-admin.js';
import { renderLogin, renderSignup } from './page-auth.js';
import { renderEmailLink } from './page-email-link.js';
import { renderCreateRoom, renderHome } from './page-home.js';
import { renderJoin } from './page-join.js';
import { renderMyRooms } from './page-my-rooms.js';
import { renderForgotPassword, renderResetPassword } from './page-password.js';
import { renderRoom } from './page-room.js';
import { renderSecurity } from './page-security.js';
import { renderVerifyRoom } from './page-verify-room.js';
import { renderWatch } from './page-watch.js';
import { problemMessage } from './problem.js';
import { roomActions } from './room-actions.js';
import { loginHash, parseRoute } from './routes.js';
import { loadCurrentUser } from './session.js';
import { createAppStore } from './store.js';

const main = requireElement('main');
const nav = requireElement('site-nav');

const store = createAppStore();
const account = accountActions(store);
/** The shell lives as long as the document: nothing aborts this. */
const forever = new AbortController().signal;
let pendingNotice: string | undefined;
let leavePage: AbortController | undefined;

function requireElement(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`index.html lacks #${id}`);
  return element;
}

/** Logs out; on success the navigation follows the store and the home page says so. */
async function logOutAndGoHome(): Promise<string | null> {
  const result = await account.logOut();
  if (!result.ok) {
    const message = `Could not log out: ${problemMessage(result.problem)}`;
    showFatal(message);
    return message;
  }
  navigate('#/', 'You are logged out.');
  return null;
}

function navigate(hash: string, notice?: string): void {
  pendingNotice = notice;
  if (location.hash === hash) render();
  else location.hash = hash;
}

function render(): void {
  leavePage?.abort();
  const controller = new AbortController();
  leavePage = controller;
  const notice = pendingNotice;
  pendingNotice = undefined;
  main.replaceChildren();
  const ctx: PageContext = {
    main,
    store,
    account,
    rooms: roomActions,
    signal: controller.signal,
    notice,
    navigate,
  };
  const route = parseRoute(location.hash);
  if (!sessionKnown && ACCOUNT_PAGES.has(route.name)) {
    renderSessionUnknown();
    return;
  }
  switch (route.name) {
    case 'home':
      renderHome(ctx);
      break;
    case 'login':
      renderLogin(ctx, route.next, route.returnTo, route.reauthenticate === true);
      break;
    case 'signup':
      renderSignup(ctx);
      break;
    case 'create-room':
      renderCreateRoom(ctx);
      break;
    case 'join':
      renderJoin(ctx, route.code);
      break;
    case 'room':
      renderRoom(ctx, route.code);
      break;
    case 'watch':
      renderWatch(ctx, route.code, route.token);
      break;
    case 'verify-room':
      renderVerifyRoom(ctx, route.code);
      break;
    case 'security':
      renderSecurity(ctx);
      break;
    case 'my-rooms':
      renderMyRooms(ctx);
      break;
    case 'forgot-password':
      renderForgotPassword(ctx);
      break;
    case 'reset-password':
      renderResetPassword(ctx, route.token);
      break;
    case 'verify-email':
    case 'confirm-email':
      renderEmailLink(ctx, route.name, route.token);
      break;
    case 'account':
      renderAccount(ctx, store);
      break;
    case 'admin':
      renderAdmin(ctx, route.section);
      break;
    case 'not-found':
      setTitle('Not found');
      main.append(
        pageHeading('Page not found'),
        h('p', {}, 'There is nothing at this address. ', h('a', { href: '#/' }, 'Go home'), '.'),
      );
      break;
  }
  // Move focus to the new page's heading (the room page does it once its data has loaded).
  main.querySelector<HTMLElement>('h1')?.focus();
}

/**
 * A page that is only about one's account, which says "log in" to someone signed out. While the
 * sign-in check itself failed (the server down or busy) it says so instead, with a way to try again:
 * telling a signed-in user to log in during an outage sent them to a login that could not work
 * either (web review 2026-12-06 W5).
 */
const ACCOUNT_PAGES: ReadonlySet<string> = new Set(['account', 'security', 'my-rooms', 'admin']);
/** False while the start-up's sign-in check has not had an answer (see {@link ACCOUNT_PAGES}). */
let sessionKnown = true;
let sessionProblem = '';

function renderSessionUnknown(): void {
  setTitle('Cannot reach the server');
  const retry = h(
    'button',
    { type: 'button', class: 'button button--primary', 'data-testid': 'session-retry' },
    'Try again',
  );
  retry.addEventListener('click', () => void checkSession());
  main.append(
    pageHeading('Cannot reach the server'),
    h(
      'p',
      { role: 'alert', 'data-testid': 'session-unknown' },
      `Could not check whether you are logged in: ${sessionProblem}`,
    ),
    retry,
  );
  main.querySelector<HTMLElement>('h1')?.focus();
}

/** Asks who is signed in; on an answer (signed in or not) the page is drawn for it. */
async function checkSession(): Promise<boolean> {
  const me = await loadCurrentUser();
  const wasKnown = sessionKnown;
  sessionKnown = me.ok;
  if (!me.ok) {
    sessionProblem = problemMessage(me.problem);
    // "Try again" that failed again says so afresh (its problem may have changed).
    if (!wasKnown && ACCOUNT_PAGES.has(parseRoute(location.hash).name)) render();
    return false;
  }
  store.user.value = me.data;
  if (!wasKnown) {
    document.getElementById('app-error')?.remove();
    render();
  }
  return true;
}

function showFatal(message: string): void {
  const existing = document.getElementById('app-error');
  const box =
    existing ?? h('p', { id: 'app-error', class: 'alert', role: 'alert', 'data-testid': 'app-error' });
  box.textContent = message;
  if (existing === null) main.prepend(box);
}

/** The skip link would set `#main` as the hash, which the router would read as a route. */
function wireSkipLink(): void {
  document.querySelector('.skip-link')?.addEventListener('click', (event) => {
    event.preventDefault();
    main.focus();
  });
}

/** The notice of a page whose session ended elsewhere. */
const SIGNED_OUT = 'You were signed out (in another tab, or your session ended). Log in again to go on.';
let checkingSession = false;

/**
 * A call was refused for want of a session while the page showed someone signed in. When the
 * account session is indeed gone (signed out in another tab, expired, revoked), the page signs out
 * and asks for a login that returns here, instead of failing every action with the API's advice to
 * send a bearer token (web review 2026-12-06 W1). A room's routes refuse a visitor without a seat
 * with the same code, hence the check; anonymous pages get 401s by design, so nothing happens when
 * no one was signed in.
 */
async function signOutIfSessionEnded(): Promise<void> {
  if (store.user.peek() === null || checkingSession) return;
  checkingSession = true;
  const me = await loadCurrentUser().finally(() => {
    checkingSession = false;
  });
  if (!me.ok || me.data !== null || store.user.peek() === null) return;
  store.user.value = null;
  forgetCsrfToken();
  const here = location.hash.replace(/^#/, '') || '/';
  navigate(parseRoute(location.hash).name === 'login' ? location.hash : loginHash(here), SIGNED_OUT);
}

async function start(): Promise<void> {
  wireSkipLink();
  whenUnauthenticated(() => void signOutIfSessionEnded());
  const known = await checkSession();
  // A login answers who is signed in as surely as the check: after one, the account pages are
  // drawn for that user, not the failed check's notice (review 2026-12-06 W-a).
  watch(forever, () => {
    if (store.user.value === null || sessionKnown) return;
    sessionKnown = true;
    document.getElementById('app-error')?.remove();
  });
  siteNav(nav, store, { logOut: logOutAndGoHome }, forever);
  window.addEventListener('hashchange', render);
  render();
  // Other pages work for anyone (joining a room needs no account): they say what failed above.
  if (!known && !ACCOUNT_PAGES.has(parseRoute(location.hash).name))
    showFatal(`Could not check whether you are logged in: ${sessionProblem}`);
}

void start();
