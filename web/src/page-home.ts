/**
 * The home page and the create-room page. Both follow who is signed in (`store.user`).
 */
import { createRoomCard } from './components/create-room-card.js';
import { homeView } from './components/home-view.js';
import { watchValue } from './components/watch.js';
import { h, setChildren } from './dom.js';
import { noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import { loginHash } from './routes.js';

/** `#/`. */
export function renderHome(ctx: PageContext): void {
  setTitle('');
  const container = h('div', { class: 'home' });
  ctx.main.append(container);
  homeView(container, ctx.store, ctx.rooms, ctx.signal, noticeBanner(ctx.notice));
}

/** `#/rooms/new`. */
export function renderCreateRoom(ctx: PageContext): void {
  setTitle('Create a room');
  const body = h('div');
  ctx.main.append(pageHeading('Create a room'), noticeBanner(ctx.notice) ?? '', body);
  watchValue(
    ctx.signal,
    () => ctx.store.user.value !== null,
    (signedIn, scope) =>
      setChildren(
        body,
        signedIn
          ? createRoomCard(ctx.rooms, scope)
          : h(
              'p',
              {},
              'You need an account to host a room. ',
              h('a', { href: loginHash('/rooms/new') }, 'Log in'),
              ' or ',
              h('a', { href: '#/signup' }, 'sign up'),
              '.',
            ),
      ),
  );
}
