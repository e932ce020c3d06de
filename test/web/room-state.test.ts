import { describe, expect, it } from 'vitest';
import {
  asRoll,
  asSnapshot,
  emptyLobby,
  MAX_ROLLS,
  sameRoll,
  withPlayerJoined,
  withPlayerLeft,
  withRoll,
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
