// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { exportPath, rollHistory } from '../../../web/src/components/roll-history.js';
import { MAX_ROLLS } from '../../../web/src/room-state.js';
import { createLobbyStore } from '../../../web/src/store.js';
import { rollOf, settle, snapshotOf } from '../fixtures.js';

const open = new AbortController().signal;
afterEach(() => {
  document.body.replaceChildren();
});

function byTestId<T extends HTMLElement>(root: HTMLElement, testId: string): T {
  const element = root.querySelector<T>(`[data-testid="${testId}"]`);
  if (element === null) throw new Error(`no ${testId}`);
  return element;
}

describe('rollHistory', () => {
  it('offers older rolls while there are any, then says the start is reached', () => {
    const lobby = createLobbyStore(snapshotOf({ rolls: [rollOf(3)] }));
    const element = rollHistory(lobby, { loadOlder: vi.fn() }, open);
    expect(byTestId(element, 'load-older-button').hidden).toBe(false);
    expect(byTestId(element, 'history-end').hidden).toBe(true);
    lobby.history.value = { before: null };
    expect(byTestId(element, 'load-older-button').hidden).toBe(true);
    expect(byTestId(element, 'history-end').textContent).toBe('This is the start of the room’s history.');
    lobby.history.value = { before: 3, full: true };
    expect(byTestId(element, 'load-older-button').hidden).toBe(true);
    expect(byTestId(element, 'history-end').textContent).toContain(`newest ${MAX_ROLLS} rolls`);
  });

  it('says nothing about a start in a room without rolls', () => {
    const element = rollHistory(createLobbyStore(snapshotOf()), { loadOlder: vi.fn() }, open);
    expect(byTestId(element, 'load-older-button').hidden).toBe(true);
    expect(byTestId(element, 'history-end').hidden).toBe(true);
  });

  it('loads on a click, one request at a time, and shows a failure', async () => {
    const lobby = createLobbyStore(snapshotOf({ rolls: [rollOf(3)] }));
    const loadOlder = vi.fn(async () => 'The database is unavailable.');
    const element = rollHistory(lobby, { loadOlder }, open);
    const button = byTestId<HTMLButtonElement>(element, 'load-older-button');
    button.click();
    expect(button.disabled).toBe(true);
    await settle();
    expect(loadOlder).toHaveBeenCalledTimes(1);
    expect(button.disabled).toBe(false);
    expect(byTestId(element, 'history-error').textContent).toBe('The database is unavailable.');
  });

  it('links the JSON and CSV downloads and the verify page of this room', () => {
    const element = rollHistory(createLobbyStore(snapshotOf()), { loadOlder: vi.fn() }, open);
    expect(byTestId(element, 'export-json').getAttribute('href')).toBe(exportPath('ABCD2345', 'json'));
    expect(exportPath('ABCD2345', 'csv')).toBe('/rooms/ABCD2345/rolls/export?format=csv');
    expect(byTestId(element, 'export-csv').hasAttribute('download')).toBe(true);
    expect(byTestId(element, 'verify-link').getAttribute('href')).toBe('#/rooms/ABCD2345/verify');
  });
});
