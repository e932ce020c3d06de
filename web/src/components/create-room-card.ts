/**
 * The "Create a room" card: a signed-in host names a room; once created, the card shows the
 * room's code, big, with the links to share and to open the lobby.
 */
import { signal } from '@preact/signals-core';
import { h, setChildren } from '../dom.js';
import { buildAlert, buildField, checkRequired, setBusy, showProblem } from '../forms.js';
import { linkButton } from '../page.js';
import type { RoomActions } from '../room-actions.js';
import { joinHash, loginHash, roomHash } from '../routes.js';
import { ROOM_NAME_MAX_LENGTH } from '../shared.js';
import type { Room } from '../types.js';
import { copyButton, joinUrl } from './copy-button.js';
import { watchValue } from './watch.js';

/** The card; `until` aborts when it leaves the screen (late answers are then ignored). */
export function createRoomCard(actions: Pick<RoomActions, 'createRoom'>, until: AbortSignal): HTMLElement {
  // The card's own state: the room it created, if any. Nothing else shows it, so it is not in
  // the app store; it lives and dies with the card.
  const created = signal<Room | null>(null);
  const section = h('section', { class: 'card', 'aria-labelledby': 'create-room-title' });
  watchValue(
    until,
    () => created.value,
    (room) => {
      if (room === null) {
        setChildren(
          section,
          h('h2', { id: 'create-room-title' }, 'Create a room'),
          createForm(actions, until, created),
        );
        return;
      }
      setChildren(section, ...createdRoom(room));
      section.querySelector<HTMLElement>('h2')?.focus();
    },
  );
  return section;
}

function createForm(
  actions: Pick<RoomActions, 'createRoom'>,
  until: AbortSignal,
  created: { value: Room | null },
): HTMLFormElement {
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
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    alert.clear();
    if (!checkRequired([roomName], alert)) return;
    setBusy(form, button, true, 'Creating…');
    void (async () => {
      const result = await actions.createRoom(roomName.input.value.trim());
      if (until.aborted) return;
      setBusy(form, button, false, '');
      if (!result.ok) {
        showProblem(result.problem, [roomName], alert, { VALIDATION_FAILED: 'name' });
        if (result.problem.status === 401)
          alert.element.append(' ', h('a', { href: loginHash('/rooms/new') }, 'Log in again'));
        return;
      }
      created.value = result.data;
    })();
  });
  return form;
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
