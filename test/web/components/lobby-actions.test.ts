// @vitest-environment happy-dom
import { describe, expect, it, vi } from 'vitest';
import { lobbyActions } from '../../../web/src/components/lobby-actions.js';
import type { LobbyActions } from '../../../web/src/lobby-controller.js';
import { createLobbyStore } from '../../../web/src/store.js';
import { settle, snapshotOf } from '../fixtures.js';

function actions(overrides: Partial<LobbyActions> = {}): LobbyActions {
  return {
    roll: vi.fn(),
    kick: vi.fn(async () => null),
    close: vi.fn(async () => null),
    leave: vi.fn(async () => null),
    stopWatching: vi.fn(async () => null),
    reconnect: vi.fn(),
    claimCode: vi.fn(async () => ({
      ok: true as const,
      status: 201,
      data: { claim_code: 'ABCD-EFGH-JKMN', expires_at: '2026-12-02T16:40:00.000Z' },
    })),
    loadOlder: vi.fn(async () => null),
    reveal: vi.fn(async () => null),
    ...overrides,
  };
}

function byTestId<T extends HTMLElement>(root: HTMLElement, testId: string): T | null {
  return root.querySelector<T>(`[data-testid="${testId}"]`);
}

describe('lobbyActions', () => {
  it('gives a player Leave and no Close, the host Close and no Leave', () => {
    const open = new AbortController().signal;
    const player = lobbyActions(createLobbyStore(snapshotOf()), actions(), open);
    expect(byTestId(player, 'leave-button')).not.toBeNull();
    expect(byTestId(player, 'close-room-button')).toBeNull();
    const host = lobbyActions(
      createLobbyStore(snapshotOf({ you: { player_id: null, host: true } })),
      actions(),
      open,
    );
    expect(byTestId(host, 'leave-button')).toBeNull();
    expect(byTestId(host, 'close-room-button')).not.toBeNull();
  });

  it('gives a spectator Stop watching (and no Leave or Close), which calls the server and shows a failure', async () => {
    const stopWatching = vi.fn(async () => 'Too many requests.');
    const area = lobbyActions(
      createLobbyStore(snapshotOf({ you: { player_id: null, host: false, spectator: true } })),
      actions({ stopWatching }),
      new AbortController().signal,
    );
    expect(byTestId(area, 'leave-button')).toBeNull();
    expect(byTestId(area, 'close-room-button')).toBeNull();
    const button = byTestId<HTMLButtonElement>(area, 'stop-watching-button');
    expect(button?.textContent).toBe('Stop watching');
    button?.click();
    expect(button?.disabled).toBe(true);
    await settle();
    expect(stopWatching).toHaveBeenCalledOnce();
    expect(byTestId(area, 'stop-watching-error')?.textContent).toBe('Too many requests.');
    expect(button?.disabled).toBe(false);
    // Players never get it.
    const player = lobbyActions(createLobbyStore(snapshotOf()), actions(), new AbortController().signal);
    expect(byTestId(player, 'stop-watching-button')).toBeNull();
  });

  it('asks before closing; Cancel puts focus back on Close room', () => {
    const lobby = createLobbyStore(snapshotOf({ you: { player_id: null, host: true } }));
    const all = actions();
    const area = lobbyActions(lobby, all, new AbortController().signal);
    document.body.replaceChildren(area);
    byTestId<HTMLButtonElement>(area, 'close-room-button')?.click();
    expect(area.textContent).toContain('Close this room for everyone?');
    // Its history cannot be opened once closed: the confirmation says so and offers it (W6).
    expect(area.textContent).toContain('download it first');
    expect(byTestId<HTMLAnchorElement>(area, 'close-export-json')?.getAttribute('href')).toBe(
      `/rooms/${lobby.code}/rolls/export?format=json`,
    );
    expect(byTestId<HTMLAnchorElement>(area, 'close-export-csv')?.getAttribute('href')).toBe(
      `/rooms/${lobby.code}/rolls/export?format=csv`,
    );
    expect(document.activeElement).toBe(byTestId(area, 'confirm-close-button'));
    byTestId<HTMLButtonElement>(area, 'cancel-close-button')?.click();
    expect(all.close).not.toHaveBeenCalled();
    expect(document.activeElement).toBe(byTestId(area, 'close-room-button'));
  });

  it('shows why closing failed and goes back to the Close room button', async () => {
    const lobby = createLobbyStore(snapshotOf({ you: { player_id: null, host: true } }));
    const close = vi.fn(async () => 'The server is unavailable.');
    const area = lobbyActions(lobby, actions({ close }), new AbortController().signal);
    byTestId<HTMLButtonElement>(area, 'close-room-button')?.click();
    byTestId<HTMLButtonElement>(area, 'confirm-close-button')?.click();
    await settle();
    expect(close).toHaveBeenCalledOnce();
    expect(byTestId(area, 'close-room-error')?.textContent).toBe('The server is unavailable.');
    expect(byTestId(area, 'close-room-button')).not.toBeNull();
  });

  it('shows a failed leave and re-enables the button', async () => {
    const leave = vi.fn(async () => 'Too many requests.');
    const area = lobbyActions(
      createLobbyStore(snapshotOf()),
      actions({ leave }),
      new AbortController().signal,
    );
    const button = byTestId<HTMLButtonElement>(area, 'leave-button');
    button?.click();
    expect(button?.disabled).toBe(true);
    await settle();
    expect(button?.disabled).toBe(false);
    expect(byTestId(area, 'leave-error')?.textContent).toBe('Too many requests.');
  });

  it('offers the ways out once the lobby ends', () => {
    const lobby = createLobbyStore(snapshotOf());
    const area = lobbyActions(lobby, actions(), new AbortController().signal);
    lobby.ended.value = 'You were removed from this room by the host.';
    expect(byTestId(area, 'leave-button')).toBeNull();
    expect(byTestId(area, 'join-another-link')?.getAttribute('href')).toBe('#/join');
  });

  it('shows a player a claim code for another device, once asked', async () => {
    const element = lobbyActions(createLobbyStore(snapshotOf()), actions(), new AbortController().signal);
    byTestId<HTMLButtonElement>(element, 'claim-code-button')?.click();
    await settle();
    expect(byTestId(element, 'claim-code')?.textContent).toBe('ABCD-EFGH-JKMN');
    expect(element.textContent).toContain('single-use');
  });
});
