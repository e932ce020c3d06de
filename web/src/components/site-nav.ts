/**
 * The site navigation: join for everyone; log in and sign up for visitors; create a room, the
 * account page (named by who is signed in), the admin console for admins, and Log out for users.
 * Follows `store.user`.
 */
import { h, setChildren } from '../dom.js';
import type { AppStore } from '../store.js';
import { isAdmin } from '../user-roles.js';
import { watch } from './watch.js';

/** What the navigation asks of the shell. */
export interface SiteNavOptions {
  /** Logs out; answers a message to show when that failed, or null. */
  logOut(): Promise<string | null>;
}

/** Renders the navigation into `nav` (the page's `<nav>`), for as long as `until` is not aborted. */
export function siteNav(
  nav: HTMLElement,
  store: AppStore,
  options: SiteNavOptions,
  until: AbortSignal,
): void {
  watch(until, () => {
    const user = store.user.value;
    const join = h('a', { href: '#/join', 'data-testid': 'nav-join' }, 'Join a room');
    if (user === null) {
      setChildren(
        nav,
        join,
        h('a', { href: '#/login', 'data-testid': 'nav-login' }, 'Log in'),
        h('a', { href: '#/signup', 'data-testid': 'nav-signup' }, 'Sign up'),
      );
      return;
    }
    const logout = h(
      'button',
      { type: 'button', class: 'button button--link', 'data-testid': 'logout-button' },
      'Log out',
    );
    logout.addEventListener('click', () => {
      logout.disabled = true;
      void options.logOut().then((problem) => {
        if (problem !== null) logout.disabled = false;
      });
    });
    setChildren(
      nav,
      join,
      h('a', { href: '#/rooms/new', 'data-testid': 'nav-create-room' }, 'Create a room'),
      h('a', { href: '#/rooms', 'data-testid': 'nav-my-rooms' }, 'My rooms'),
      h('a', { href: '#/account', class: 'nav-user', 'data-testid': 'nav-user' }, user.email),
      isAdmin(user) ? h('a', { href: '#/admin/users', 'data-testid': 'nav-admin' }, 'Admin') : null,
      logout,
    );
  });
}
