/**
 * Entry point: the navigation bar and the hash router. Each route renders into `<main>` with a
 * fresh {@link PageContext}; leaving a page aborts its signal, which closes its event stream.
 */
import { h, setChildren } from './dom.js';
import { type PageContext, pageHeading, setTitle } from './page.js';
import { renderLogin, renderSignup } from './page-auth.js';
import { renderCreateRoom, renderHome } from './page-home.js';
import { renderJoin } from './page-join.js';
import { renderRoom } from './page-room.js';
import { problemMessage } from './problem.js';
import { parseRoute } from './routes.js';
import { loadCurrentUser, logOut } from './session.js';
import type { User } from './types.js';

const main = requireElement('main');
const nav = requireElement('site-nav');

let user: User | null = null;
let pendingNotice: string | undefined;
let leavePage: AbortController | undefined;

function requireElement(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`index.html lacks #${id}`);
  return element;
}

function renderNav(): void {
  const links: (Node | string)[] = [h('a', { href: '#/join', 'data-testid': 'nav-join' }, 'Join a room')];
  if (user === null) {
    links.push(
      h('a', { href: '#/login', 'data-testid': 'nav-login' }, 'Log in'),
      h('a', { href: '#/signup', 'data-testid': 'nav-signup' }, 'Sign up'),
    );
  } else {
    const logout = h(
      'button',
      { type: 'button', class: 'button button--link', 'data-testid': 'logout-button' },
      'Log out',
    );
    logout.addEventListener('click', () => {
      logout.disabled = true;
      void logOut().then((result) => {
        // 401 means the session had already ended: the user is logged out either way.
        if (!result.ok && result.problem.status !== 401) {
          logout.disabled = false;
          showFatal(`Could not log out: ${problemMessage(result.problem)}`);
          return;
        }
        user = null;
        renderNav();
        navigate('#/', 'You are logged out.');
      });
    });
    links.push(
      h('a', { href: '#/rooms/new', 'data-testid': 'nav-create-room' }, 'Create a room'),
      h('span', { class: 'nav-user', 'data-testid': 'nav-user' }, user.email),
      logout,
    );
  }
  setChildren(nav, ...links);
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
    user,
    signal: controller.signal,
    notice,
    setUser(next) {
      user = next;
      renderNav();
    },
    navigate,
  };
  const route = parseRoute(location.hash);
  switch (route.name) {
    case 'home':
      renderHome(ctx);
      break;
    case 'login':
      renderLogin(ctx, route.next);
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

async function start(): Promise<void> {
  wireSkipLink();
  const me = await loadCurrentUser();
  user = me.ok ? me.data : null;
  renderNav();
  window.addEventListener('hashchange', render);
  render();
  if (!me.ok) showFatal(`Could not check whether you are logged in: ${problemMessage(me.problem)}`);
}

void start();
