import { describe, expect, it } from 'vitest';
import {
  asHistoryPage,
  asRoll,
  asSnapshot,
  emptyLobby,
  MAX_ROLLS,
  oldestRollId,
  sameRoll,
  withOlderRolls,
  withPlayerJoined,
  withPlayerLeft,
  withRoll,
  withRollRevealed,
  withSnapshot,
} from '../../web/src/room-state.js';
import type { Roll } from '../../web/src/types.js';
import { rollOf } from './fixtures.js';

/** The fixtures' one-die roll, rolled at `at`, with `overrides`. */
function roll(id: number, at: string, overrides: Partial<Roll> = {}): Roll {
  return { ...rollOf(id, undefined, at), ...overrides };
}

const alice = { id: 'p1', name: 'Alice' };
const bob = { id: 'p2', name: 'Bob' };

describe('players', () => {
  it('adds a player once', () => {
    const state = withPlayerJoined(withPlayerJoined(emptyLobby(), alice), alice);
    expect(state.players).toEqual([alice]);
  });

  it('does not bring back a player whose join is replayed after they left', () => {
    let state = withPlayerJoined(emptyLobby(), bob);
    state = withPlayerLeft(state, bob.id);
    state = withPlayerJoined(state, bob);
    state = withSnapshot(state, { players: [alice, bob], rolls: [] });
    expect(state.players).toEqual([alice]);
  });

  it('keeps a player who joined while an older snapshot was in flight', () => {
    const state = withSnapshot(withPlayerJoined(emptyLobby(), bob), { players: [alice], rolls: [] });
    expect(state.players.map((p) => p.name)).toEqual(['Bob', 'Alice']);
  });
});

describe('rolls', () => {
  it('keeps the log newest first', () => {
    let state = withRoll(emptyLobby(), roll(1, '2025-01-01T00:00:01.000Z'));
    state = withRoll(state, roll(3, '2025-01-01T00:00:03.000Z'));
    state = withRoll(state, roll(2, '2025-01-01T00:00:02.000Z'));
    expect(state.rolls.map((r) => r.id)).toEqual([3, 2, 1]);
  });

  it('ignores a roll it already has, by id or (without one) by content', () => {
    const first = roll(1, '2025-01-01T00:00:01.000Z');
    let state = withRoll(emptyLobby(), first);
    state = withRoll(state, { ...first, id: '1' });
    const { id: _id, ...withoutId } = first;
    state = withRoll(state, withoutId);
    expect(state.rolls).toHaveLength(1);
  });

  it('tells apart different rolls of the same player', () => {
    expect(sameRoll(roll(1, '2025-01-01T00:00:01.000Z'), roll(2, '2025-01-01T00:00:01.000Z'))).toBe(false);
  });

  it('returns the same state object when nothing changed', () => {
    const state = withRoll(emptyLobby(), roll(1, '2025-01-01T00:00:01.000Z'));
    expect(withRoll(state, roll(1, '2025-01-01T00:00:01.000Z'))).toBe(state);
  });

  it(`keeps at most ${MAX_ROLLS} rolls`, () => {
    let state = emptyLobby();
    for (let i = 0; i < MAX_ROLLS + 5; i++)
      state = withRoll(state, roll(i, new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString()));
    expect(state.rolls).toHaveLength(MAX_ROLLS);
    expect(state.rolls[0]?.id).toBe(MAX_ROLLS + 4);
  });
});

describe('reading the wire', () => {
  it('reads a bare roll and a roll wrapped as a stored event', () => {
    const data = { player: alice, notation: '1d6', label: '', terms: [], total: 4, rolled_at: 'x' };
    expect(asRoll(data)).toMatchObject({ notation: '1d6', label: null, total: 4 });
    expect(asRoll({ id: 9, type: 'roll', data })).toMatchObject({ id: 9, notation: '1d6' });
  });

  it('rejects rolls without a player or total, and drops malformed terms', () => {
    expect(asRoll({ notation: '1d6', total: 4 })).toBeUndefined();
    expect(asRoll({ player: alice, notation: '1d6' })).toBeUndefined();
    const parsed = asRoll({
      player: alice,
      notation: '1d6+1',
      total: 5,
      terms: [
        { kind: 'dice', sign: 1, count: 1, sides: 6, dice: [{ value: 4, kept: true }], subtotal: 4 },
        { kind: 'evil' },
        'x',
        { kind: 'constant', sign: 1, value: 1 },
      ],
    });
    expect(parsed?.terms.map((t) => t.kind)).toEqual(['dice', 'constant']);
  });

  it('reads a snapshot, defaulting `you` to a visitor', () => {
    const snapshot = asSnapshot({
      room: { code: 'ABCD2345', name: 'Den', state: 'open', created_at: 't' },
      players: [alice, { id: 3 }],
      rolls: [{ player: alice, notation: '1d4', label: null, terms: [], total: 2, rolled_at: 't' }],
    });
    expect(snapshot?.players).toEqual([alice]);
    expect(snapshot?.rolls).toHaveLength(1);
    expect(snapshot?.you).toEqual({ player_id: null, host: false, spectator: false });
    expect(asSnapshot({ players: [] })).toBeUndefined();
  });
});

describe('history and reveals (issue 14)', () => {
  const at = (second: number) => `2025-01-01T00:00:${String(second).padStart(2, '0')}.000Z`;

  it('puts a page of older rolls under the newer ones, once, and orders rolls of one millisecond by id', () => {
    let state = withRoll(withRoll(emptyLobby(), roll(9, at(9))), roll(10, at(10)));
    state = withOlderRolls(state, [roll(8, at(8)), roll(7, at(7)), roll(9, at(9))]);
    expect(state.rolls.map((r) => r.id)).toEqual([10, 9, 8, 7]);
    state = withOlderRolls(emptyLobby(), [roll(2, at(1)), roll(3, at(1)), roll(1, at(1))]);
    expect(state.rolls.map((r) => r.id)).toEqual([3, 2, 1]);
  });

  it('drops an older page beyond the bound rather than the newest rolls', () => {
    let state = emptyLobby();
    for (let i = 1; i <= MAX_ROLLS; i++)
      state = withRoll(state, roll(1000 + i, new Date(Date.UTC(2025, 0, 2) + i * 1000).toISOString()));
    const full = withOlderRolls(state, [roll(5, at(5))]);
    expect(full).toBe(state);
    expect(full.rolls[0]?.id).toBe(1000 + MAX_ROLLS);
  });

  it('knows where the next older page starts', () => {
    expect(oldestRollId([roll(12, at(12)), { ...roll(4, at(4)), id: '4' }, roll(9, at(9))])).toBe(4);
    const { id: _id, ...withoutId } = roll(3, at(3));
    expect(oldestRollId([withoutId])).toBeUndefined();
  });

  it('reads a history page and refuses what is not one', () => {
    const page = asHistoryPage({ items: [{ ...roll(2, at(2)) }, { nonsense: true }], next_before: 2 });
    expect(page?.items.map((r) => r.id)).toEqual([2]);
    expect(page?.next_before).toBe(2);
    expect(asHistoryPage({ items: [], next_before: null })?.next_before).toBeNull();
    expect(asHistoryPage({ items: [], next_before: -1 })).toBeUndefined();
    expect(asHistoryPage({ next_before: null })).toBeUndefined();
  });

  it('replaces a secret roll placeholder by the revealed roll in place, once', () => {
    const placeholder = asRoll({ id: 5, player: alice, visibility: 'host', hidden: true, rolled_at: at(5) });
    if (placeholder === undefined) throw new Error('placeholder not read');
    let state = withRoll(withRoll(withRoll(emptyLobby(), roll(4, at(4))), placeholder), roll(6, at(6)));
    const full = roll(5, at(5), { notation: '2d6+30', total: 37, visibility: 'host' });
    const revealed = withRollRevealed(state, 5, full);
    expect(revealed.rolls.map((r) => [r.id, r.total, r.revealed === true])).toEqual([
      [6, 6, false],
      [5, 37, true],
      [4, 4, false],
    ]);
    // The same reveal again (the answer, then the event) changes nothing.
    expect(withRollRevealed(revealed, 5, full)).toBe(revealed);
    // A roll not in the log is not invented.
    state = withRollRevealed(state, 99, full);
    expect(state.rolls.map((r) => r.id)).toEqual([6, 5, 4]);
    // The placeholder's replay after the reveal does not bring it back.
    expect(withRoll(revealed, placeholder)).toBe(revealed);
  });
});
