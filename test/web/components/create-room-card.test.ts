// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createRoomCard } from '../../../web/src/components/create-room-card.js';
import type { RoomActions } from '../../../web/src/room-actions.js';
import { ROOM_NAME_MAX_LENGTH } from '../../../web/src/shared.js';
import type { Room } from '../../../web/src/types.js';
import { problemOf, settle } from '../fixtures.js';

afterEach(() => {
  document.body.replaceChildren();
});

const room = { code: 'ABCD2345', name: 'Den', state: 'open', created_at: '2026-01-01T00:00:00.000Z' } as Room;

function byTestId<T extends HTMLElement>(root: HTMLElement, testId: string): T {
  const element = root.querySelector<T>(`[data-testid="${testId}"]`);
  if (element === null) throw new Error(`no ${testId}`);
  return element;
}

describe('createRoomCard', () => {
  it('creates the room and shows its code and links in place of the form', async () => {
    const createRoom = vi.fn<RoomActions['createRoom']>(async () => ({ ok: true, status: 201, data: room }));
    const card = createRoomCard({ createRoom }, new AbortController().signal);
    document.body.append(card);
    const name = byTestId<HTMLInputElement>(card, 'room-name-input');
    expect(name.maxLength).toBe(ROOM_NAME_MAX_LENGTH);
    name.value = ' Den ';
    byTestId<HTMLFormElement>(card, 'create-room-form').requestSubmit();
    await settle();
    expect(createRoom).toHaveBeenCalledWith('Den');
    expect(card.querySelector('form')).toBeNull();
    expect(byTestId(card, 'room-code').textContent).toBe('ABCD2345');
    expect(byTestId(card, 'share-link').getAttribute('href')).toBe('#/join/ABCD2345');
    expect(byTestId(card, 'lobby-link').getAttribute('href')).toBe('#/rooms/ABCD2345');
    expect(document.activeElement).toBe(byTestId(card, 'created-room-name'));
  });

  it('keeps the form on a refusal, and offers a new login on 401', async () => {
    const createRoom = vi.fn<RoomActions['createRoom']>(async () => ({
      ok: false,
      problem: problemOf(401, 'UNAUTHENTICATED', 'Log in first.'),
    }));
    const card = createRoomCard({ createRoom }, new AbortController().signal);
    document.body.append(card);
    byTestId<HTMLInputElement>(card, 'room-name-input').value = 'Den';
    byTestId<HTMLFormElement>(card, 'create-room-form').requestSubmit();
    await settle();
    const alert = byTestId(card, 'create-room-error');
    expect(alert.textContent).toContain('Log in first.');
    expect(alert.querySelector('a')?.getAttribute('href')).toContain('#/login');
  });

  it('stays a form when the answer comes after the card left the screen', async () => {
    const until = new AbortController();
    const createRoom = vi.fn<RoomActions['createRoom']>(async () => ({ ok: true, status: 201, data: room }));
    const card = createRoomCard({ createRoom }, until.signal);
    byTestId<HTMLInputElement>(card, 'room-name-input').value = 'Den';
    byTestId<HTMLFormElement>(card, 'create-room-form').requestSubmit();
    until.abort();
    await settle();
    expect(card.querySelector('[data-testid="room-code"]')).toBeNull();
  });
});
