/**
 * The home page and the create-room page: a signed-in host names a room and gets its code to share.
 */
import { api } from './api.js';
import { copyButton, joinUrl } from './components/copy-button.js';
import { h } from './dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from './forms.js';
import { linkButton, noticeBanner, type PageContext, pageHeading, setTitle } from './page.js';
import { joinHash, loginHash, roomHash } from './routes.js';
import { ROOM_NAME_MAX_LENGTH } from './shared.js';
import type { Room } from './types.js';

/** `#/`. */
export function renderHome(ctx: PageContext): void {
  setTitle('');
  const notice = noticeBanner(ctx.notice) ?? '';
  if (ctx.user === null) {
    ctx.main.append(
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
    );
    return;
  }
  const name = ctx.user.full_name?.trim() || ctx.user.email;
  ctx.main.append(
    pageHeading(`Welcome, ${name}`, 'welcome-heading'),
    notice,
    h(
      'div',
      { class: 'cards' },
      buildCreateRoom(ctx),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Join a room'),
        h('p', {}, 'Playing in someone else’s room?'),
        linkButton('Join with a code', '#/join', 'home-join-link', 'secondary'),
      ),
    ),
  );
}

/** `#/rooms/new`. */
export function renderCreateRoom(ctx: PageContext): void {
  setTitle('Create a room');
  ctx.main.append(pageHeading('Create a room'), noticeBanner(ctx.notice) ?? '');
  if (ctx.user === null) {
    ctx.main.append(
      h(
        'p',
        {},
        'You need an account to host a room. ',
        h('a', { href: loginHash('/rooms/new') }, 'Log in'),
        ' or ',
        h('a', { href: '#/signup' }, 'sign up'),
        '.',
      ),
    );
    return;
  }
  ctx.main.append(buildCreateRoom(ctx));
}

/** The "Create a room" form; on success it is replaced by the new room's code and links. */
function buildCreateRoom(ctx: PageContext): HTMLElement {
  const roomName = buildField({
    name: 'name',
    label: 'Room name',
    required: true,
    maxLength: ROOM_NAME_MAX_LENGTH,
    placeholder: 'Friday one-shot',
    testId: 'room-name-input',
  });
  const alert = buildAlert('create-room-error');
  const button = h(
    'button',
    { type: 'submit', class: 'button button--primary', 'data-testid': 'create-room-button' },
    'Create room',
  );
  const form = h(
    'form',
    { novalidate: true, 'data-testid': 'create-room-form' },
    alert.element,
    roomName.element,
    button,
  );
  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'create-room-title' },
    h('h2', { id: 'create-room-title' }, 'Create a room'),
    form,
  );

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([roomName], alert)) return;
    setBusy(form, button, true, 'Creating…');
    void (async () => {
      const result = await api<Room>('POST', '/rooms', { name: roomName.input.value.trim() });
      if (ctx.signal.aborted) return;
      setBusy(form, button, false, '');
      if (!result.ok) {
        showProblem(result.problem, [roomName], alert, { VALIDATION_FAILED: 'name' });
        if (result.problem.status === 401)
          alert.element.append(' ', h('a', { href: loginHash('/rooms/new') }, 'Log in again'));
        return;
      }
      section.replaceChildren(...createdRoom(result.data));
      section.querySelector<HTMLElement>('h2')?.focus();
    })();
  });
  return section;
}

/** The just-created room: its code, big, with the links to share and to open the lobby. */
function createdRoom(room: Room): Node[] {
  const shareUrl = joinUrl(joinHash(room.code));
  const [copy, copyStatus] = copyButton(room.code, 'Copy code', 'copy-code-button');
  return [
    h('h2', { tabindex: '-1', 'data-testid': 'created-room-name' }, `Room “${room.name}” is open`),
    h('p', {}, 'Share this code with your players:'),
    h('p', { class: 'room-code room-code--big', 'data-testid': 'room-code' }, room.code),
    h('div', { class: 'button-row' }, copy, copyStatus),
    h(
      'p',
      {},
      'Or send them this link: ',
      h('a', { href: joinHash(room.code), class: 'share-link', 'data-testid': 'share-link' }, shareUrl),
    ),
    h('div', { class: 'button-row' }, linkButton('Open the lobby', roomHash(room.code), 'lobby-link')),
  ];
}
