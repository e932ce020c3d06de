// @vitest-environment happy-dom
import { describe, expect, it, vi } from 'vitest';
import { lobbyStatus } from '../../../web/src/components/lobby-status.js';
import { createLobbyStore } from '../../../web/src/store.js';
import { snapshotOf } from '../fixtures.js';

function setUp() {
  const lobby = createLobbyStore(snapshotOf());
  const reconnect = vi.fn();
  const [status, announcer] = lobbyStatus(lobby, new AbortController().signal, reconnect);
  if (status === undefined || announcer === undefined) throw new Error('lobbyStatus returned too little');
  document.body.replaceChildren(status, announcer);
  return { lobby, reconnect, status, announcer };
}

describe('lobbyStatus', () => {
  it('is a hidden status region until there is something to say', () => {
    const { status, announcer } = setUp();
    expect(status.hidden).toBe(true);
    expect(status.getAttribute('role')).toBe('status');
    expect(announcer.getAttribute('aria-live')).toBe('polite');
  });

  it('shows a lost connection, and clears it', () => {
    const { lobby, status } = setUp();
    lobby.status.value = { message: 'Connection lost. Reconnecting…', kind: 'reconnecting' };
    expect(status.hidden).toBe(false);
    expect(status.textContent).toBe('Connection lost. Reconnecting…');
    expect(status.dataset.kind).toBe('reconnecting');
    lobby.status.value = null;
    expect(status.hidden).toBe(true);
  });

  it('offers Reconnect when live updates stopped', () => {
    const { lobby, status, reconnect } = setUp();
    lobby.status.value = { message: 'Live updates stopped.', kind: 'stopped' };
    status.querySelector<HTMLButtonElement>('[data-testid="reconnect-button"]')?.click();
    expect(reconnect).toHaveBeenCalledOnce();
  });

  it('says why the lobby ended and takes focus, replacing any Reconnect button', () => {
    const { lobby, status } = setUp();
    lobby.status.value = { message: 'Live updates stopped.', kind: 'stopped' };
    lobby.status.value = { message: 'The host closed this room.', kind: 'ended' };
    expect(status.textContent).toBe('The host closed this room.');
    expect(status.querySelector('button')).toBeNull();
    expect(document.activeElement).toBe(status);
  });

  it('speaks announcements through the live region', () => {
    const { lobby, announcer } = setUp();
    lobby.announcement.value = 'Bob joined.';
    expect(announcer.textContent).toBe('Bob joined.');
  });
});
