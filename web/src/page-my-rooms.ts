/**
 * "My rooms" (`#/rooms`): the rooms the signed-in host has opened, newest first, with their
 * lobby and join links (`GET /rooms`).
 */
import { api } from './api.js';
import { h, setChildren } from './dom.js';
import { type PageContext, pageHeading, setTitle } from './page.js';
import { problemMessage } from './problem.js';
import { joinHash, loginHash, roomHash } from './routes.js';
import type { HostedRoom } from './shared.js';

/** What `GET /rooms` answers. */
interface HostedRoomPage {
  items: HostedRoom[];
  total: number;
}

/** `#/rooms`. */
export function renderMyRooms(ctx: PageContext): void {
  setTitle('My rooms');
  ctx.main.append(pageHeading('My rooms'));
  // Who is signed in is known before the first page renders, and logging in or out navigates away.
  if (ctx.store.user.peek() === null) {
    ctx.main.append(
      h('p', {}, h('a', { href: loginHash('/rooms') }, 'Log in'), ' to see the rooms you host.'),
    );
    return;
  }
  const list = h('div', { class: 'my-rooms', 'aria-busy': 'true', 'data-testid': 'my-rooms' }, 'Loading…');
  ctx.main.append(list);
  // The newest 100 (the API's largest page): more open rooms than that is beyond MAX_OPEN_ROOMS_PER_HOST.
  void api<HostedRoomPage>('GET', '/rooms?limit=100').then((result) => {
    if (ctx.signal.aborted) return;
    list.setAttribute('aria-busy', 'false');
    if (!result.ok) {
      setChildren(list, h('p', { role: 'alert' }, problemMessage(result.problem)));
      return;
    }
    const { items, total } = result.data;
    if (items.length === 0) {
      setChildren(
        list,
        h('p', {}, 'You host no rooms yet. ', h('a', { href: '#/rooms/new' }, 'Create one'), '.'),
      );
      return;
    }
    setChildren(
      list,
      h('ul', { class: 'room-list' }, ...items.map(roomItem)),
      total > items.length ? h('p', {}, `Showing the newest ${items.length} of ${total}.`) : null,
    );
  });
}

function roomItem(room: HostedRoom): HTMLElement {
  const open = room.state === 'open';
  const created = new Date(room.created_at).toLocaleString();
  return h(
    'li',
    { class: 'room-list-item', 'data-testid': `my-room-${room.code}` },
    open ? h('a', { href: roomHash(room.code) }, room.name) : h('span', {}, room.name),
    ' ',
    h('span', { class: 'room-code' }, room.code),
    ' — ',
    open ? (room.locked ? 'open, locked to new players' : 'open') : 'closed',
    `, created ${created}`,
    open ? ' · ' : null,
    open ? h('a', { href: joinHash(room.code) }, 'join link') : null,
  );
}
