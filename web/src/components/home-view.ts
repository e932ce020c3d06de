/**
 * The home page's body, following {@link AppStore.user}: visitors get the two ways in (join a
 * room, or log in to host); a signed-in user gets a welcome and the "Create a room" card.
 */
import { type Child, h, setChildren } from '../dom.js';
import { linkButton, pageHeading } from '../page.js';
import type { RoomActions } from '../room-actions.js';
import { loginHash } from '../routes.js';
import type { AppStore } from '../store.js';
import type { User } from '../types.js';
import { createRoomCard } from './create-room-card.js';
import { watchValue } from './watch.js';

/**
 * The home view, rendered into `container` until `until` aborts; `notice` (the previous page's
 * message) stays right under the heading.
 */
export function homeView(
  container: HTMLElement,
  store: Pick<AppStore, 'user'>,
  rooms: Pick<RoomActions, 'createRoom'>,
  until: AbortSignal,
  notice: Node | null = null,
): void {
  watchValue(
    until,
    () => store.user.value,
    (user, scope) =>
      setChildren(container, ...(user === null ? guestHome(notice) : userHome(user, notice, rooms, scope))),
  );
}

function guestHome(notice: Node | null): Child[] {
  return [
    pageHeading('Roll dice together'),
    notice,
    h(
      'p',
      { class: 'lead' },
      'Dicery is a shared dice table: everyone in a room sees every roll, live. Rolls happen on the server, so nobody can fudge them.',
    ),
    h(
      'div',
      { class: 'cards' },
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Playing?'),
        h('p', {}, 'Got a room code from your host? Join with just a name.'),
        linkButton('Join a room', '#/join', 'home-join-link'),
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Hosting?'),
        h('p', {}, 'Log in to open a room and invite your players.'),
        h(
          'div',
          { class: 'button-row' },
          linkButton('Log in', loginHash(), 'home-login-link'),
          linkButton('Sign up', '#/signup', 'home-signup-link', 'secondary'),
        ),
      ),
    ),
  ];
}

function userHome(
  user: User,
  notice: Node | null,
  rooms: Pick<RoomActions, 'createRoom'>,
  scope: AbortSignal,
): Child[] {
  const name = user.full_name?.trim() || user.email;
  return [
    pageHeading(`Welcome, ${name}`, 'welcome-heading'),
    notice,
    h(
      'div',
      { class: 'cards' },
      createRoomCard(rooms, scope),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Join a room'),
        h('p', {}, 'Playing in someone else’s room?'),
        linkButton('Join with a code', '#/join', 'home-join-link', 'secondary'),
      ),
    ),
  ];
}
