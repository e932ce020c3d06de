// @vitest-environment happy-dom
import { describe, expect, it, vi } from 'vitest';
import { rollLog } from '../../../web/src/components/roll-log.js';
import { withRoll, withRollRevealed } from '../../../web/src/room-state.js';
import { createLobbyStore } from '../../../web/src/store.js';
import { rollOf, settle, snapshotOf } from '../fixtures.js';

const open = new AbortController().signal;

function items(card: HTMLElement): Element[] {
  return Array.from(card.querySelectorAll('[data-testid="roll-item"]'));
}

describe('rollLog', () => {
  it('says there are no rolls yet, as a polite log of additions', () => {
    const card = rollLog(createLobbyStore(snapshotOf()), open);
    expect(card.querySelector<HTMLElement>('[data-testid="no-rolls"]')?.hidden).toBe(false);
    const log = card.querySelector('[data-testid="roll-log"]');
    expect(log?.getAttribute('aria-live')).toBe('polite');
    expect(log?.getAttribute('aria-relevant')).toBe('additions');
    expect(items(card)).toHaveLength(0);
  });

  it('shows the snapshot newest first and inserts a new roll on top, reusing the other entries', () => {
    const lobby = createLobbyStore(snapshotOf({ rolls: [rollOf(1), rollOf(2)] }));
    const card = rollLog(lobby, open);
    expect(card.querySelector<HTMLElement>('[data-testid="no-rolls"]')?.hidden).toBe(true);
    const [second, first] = items(card);
    expect(second?.textContent).toContain('2');
    lobby.state.value = withRoll(lobby.state.value, rollOf(3, { id: 'p2', name: 'Bob' }));
    const after = items(card);
    expect(after).toHaveLength(3);
    expect(after[0]?.textContent).toContain('Bob');
    // The same nodes, not re-rendered copies: a screen reader hears only the new roll.
    expect(after[1]).toBe(second);
    expect(after[2]).toBe(first);
  });

  it('does not add a roll it already shows (the POST answer and its event)', () => {
    const lobby = createLobbyStore(snapshotOf({ rolls: [rollOf(1)] }));
    const card = rollLog(lobby, open);
    lobby.state.value = withRoll(lobby.state.value, { ...rollOf(1), id: '1' });
    expect(items(card)).toHaveLength(1);
  });
});

describe('rollLog reveal (issue 14)', () => {
  const secret = { ...rollOf(4, { id: 'p2', name: 'Bob' }), visibility: 'host' as const };

  it('offers the host a Reveal button on secret rolls only, and players none', () => {
    const rolls = [secret, rollOf(5)];
    const host = rollLog(
      createLobbyStore(snapshotOf({ you: { player_id: null, host: true }, rolls })),
      open,
      { reveal: vi.fn() },
    );
    expect(host.querySelectorAll('[data-testid="reveal-button"]')).toHaveLength(1);
    expect(host.querySelector('[data-testid="reveal-button"]')?.getAttribute('aria-label')).toBe(
      "Reveal Bob's secret roll to the room",
    );
    const player = rollLog(createLobbyStore(snapshotOf({ rolls })), open, { reveal: vi.fn() });
    expect(player.querySelectorAll('[data-testid="reveal-button"]')).toHaveLength(0);
  });

  it('takes the Reveal buttons away when the lobby ends', () => {
    const lobby = createLobbyStore(snapshotOf({ you: { player_id: null, host: true }, rolls: [secret] }));
    const card = rollLog(lobby, open, { reveal: vi.fn() });
    expect(card.querySelectorAll('[data-testid="reveal-button"]')).toHaveLength(1);
    lobby.ended.value = 'You closed this room.';
    expect(card.querySelectorAll('[data-testid="reveal-button"]')).toHaveLength(0);
  });

  it('reveals on a click, shows a refusal, and swaps in the revealed entry', async () => {
    const lobby = createLobbyStore(snapshotOf({ you: { player_id: null, host: true }, rolls: [secret] }));
    const reveal = vi.fn(async () => 'Not allowed.');
    const card = rollLog(lobby, open, { reveal });
    const button = card.querySelector<HTMLButtonElement>('[data-testid="reveal-button"]');
    button?.click();
    expect(reveal).toHaveBeenCalledWith(secret);
    await settle();
    expect(card.querySelector('[data-testid="reveal-error"]')?.textContent).toBe('Not allowed.');
    expect(button?.disabled).toBe(false);
    lobby.state.value = withRollRevealed(lobby.state.value, 4, secret);
    expect(items(card)).toHaveLength(1);
    expect(card.querySelector('[data-testid="reveal-button"]')).toBeNull();
    expect(card.querySelector('[data-testid="roll-secret"]')?.textContent).toBe('secret, revealed');
  });
});
