// @vitest-environment happy-dom
import { afterEach, describe, expect, it, vi } from 'vitest';
import { playerList } from '../../../web/src/components/player-list.js';
import { withPlayerJoined, withRoll } from '../../../web/src/room-state.js';
import { createLobbyStore } from '../../../web/src/store.js';
import { rollOf, settle, snapshotOf } from '../fixtures.js';

const left = new AbortController();
afterEach(() => {
  document.body.replaceChildren();
});

function names(card: HTMLElement): string[] {
  return Array.from(card.querySelectorAll('[data-testid="player-name"]')).map(
    (node) => node.textContent ?? '',
  );
}

describe('playerList', () => {
  it('lists the players with their count and marks you, without Remove buttons for a player', () => {
    const lobby = createLobbyStore(snapshotOf());
    const card = playerList(lobby, { kick: vi.fn() }, left.signal);
    expect(names(card)).toEqual(['Alice', 'Bob']);
    expect(card.querySelector('[data-testid="player-count"]')?.textContent).toBe('(2)');
    expect(card.querySelector('[data-player-id="p1"] .tag')?.textContent).toBe('you');
    expect(card.querySelector('[data-player-id="p2"] .tag')).toBeNull();
    expect(card.querySelectorAll('[data-testid="kick-button"]')).toHaveLength(0);
  });

  it('follows the store: a join adds the player, a roll leaves the list untouched', () => {
    const lobby = createLobbyStore(snapshotOf());
    const card = playerList(lobby, { kick: vi.fn() }, left.signal);
    const alice = card.querySelector('[data-player-id="p1"]');
    lobby.state.value = withRoll(lobby.state.value, rollOf(1));
    expect(card.querySelector('[data-player-id="p1"]')).toBe(alice);
    lobby.state.value = withPlayerJoined(lobby.state.value, { id: 'p3', name: 'Cleo' });
    expect(names(card)).toEqual(['Alice', 'Bob', 'Cleo']);
    expect(card.querySelector('[data-testid="player-count"]')?.textContent).toBe('(3)');
  });

  it('gives the host a labelled Remove button per player until the lobby ends', () => {
    const lobby = createLobbyStore(snapshotOf({ you: { player_id: null, host: true } }));
    const card = playerList(lobby, { kick: vi.fn() }, left.signal);
    const buttons = Array.from(card.querySelectorAll('[data-testid="kick-button"]'));
    expect(buttons.map((button) => button.getAttribute('aria-label'))).toEqual([
      'Remove Alice from the room',
      'Remove Bob from the room',
    ]);
    lobby.ended.value = 'You closed this room.';
    expect(card.querySelectorAll('[data-testid="kick-button"]')).toHaveLength(0);
  });

  it('shows a failed removal in the alert and lets the host try again', async () => {
    const lobby = createLobbyStore(snapshotOf({ you: { player_id: null, host: true } }));
    const kick = vi.fn(async () => 'The room is busy.');
    const card = playerList(lobby, { kick }, left.signal);
    const button = card.querySelector<HTMLButtonElement>('[data-player-id="p2"] [data-testid="kick-button"]');
    button?.click();
    expect(button?.disabled).toBe(true);
    await settle();
    expect(kick).toHaveBeenCalledWith({ id: 'p2', name: 'Bob' });
    expect(button?.disabled).toBe(false);
    const alert = card.querySelector<HTMLElement>('[data-testid="players-error"]');
    expect(alert?.hidden).toBe(false);
    expect(alert?.textContent).toBe('The room is busy.');
  });

  it('stops following the store once its page is left', () => {
    const leaving = new AbortController();
    const lobby = createLobbyStore(snapshotOf());
    const card = playerList(lobby, { kick: vi.fn() }, leaving.signal);
    leaving.abort();
    lobby.state.value = withPlayerJoined(lobby.state.value, { id: 'p3', name: 'Cleo' });
    expect(names(card)).toEqual(['Alice', 'Bob']);
  });
});

describe('playerList presence (issue 14)', () => {
  const online = (card: HTMLElement, selector: string) =>
    card.querySelector(selector)?.getAttribute('data-online');

  it('shows who is online, the host first, and follows the presence signal', () => {
    const lobby = createLobbyStore(snapshotOf({ online: { player_ids: ['p1'], host: true } }));
    const card = playerList(lobby, { kick: vi.fn() }, left.signal);
    expect(online(card, '[data-testid="host-item"]')).toBe('true');
    expect(online(card, '[data-player-id="p1"]')).toBe('true');
    expect(online(card, '[data-player-id="p2"]')).toBe('false');
    expect(card.querySelector('[data-player-id="p2"]')?.textContent).toContain('offline');
    expect(card.querySelector('[data-testid="online-count"]')?.textContent).toBe('1 online');
    // The host row is not a player: names and the count stay the players'.
    expect(names(card)).toEqual(['Alice', 'Bob']);
    lobby.presence.value = { players: new Set(['p1', 'p2']), host: false, spectators: 0 };
    expect(online(card, '[data-testid="host-item"]')).toBe('false');
    expect(online(card, '[data-player-id="p2"]')).toBe('true');
    expect(card.querySelector('[data-testid="online-count"]')?.textContent).toBe('2 online');
    // Spectators are counted apart, never listed as players.
    lobby.presence.value = { players: new Set(['p1', 'p2']), host: false, spectators: 3 };
    expect(card.querySelector('[data-testid="online-count"]')?.textContent).toBe('2 online · 3 watching');
    expect(names(card)).toEqual(['Alice', 'Bob']);
  });

  it('marks the host row as you for the host', () => {
    const lobby = createLobbyStore(snapshotOf({ you: { player_id: null, host: true } }));
    const card = playerList(lobby, { kick: vi.fn() }, left.signal);
    expect(card.querySelector('[data-testid="host-item"] .tag')?.textContent).toBe('you');
  });
});
