/** Builders for the web tests: snapshots, rolls and problems shaped like the server's answers. */
import type { Problem } from '../../web/src/problem.js';
import type { Roll, RoomSnapshot } from '../../web/src/types.js';

/** A one-die roll by `player`, with event id `id`. */
export function rollOf(
  id: number,
  player = { id: 'p1', name: 'Alice' },
  rolledAt = `2026-01-01T00:00:${String(id).padStart(2, '0')}.000Z`,
): Roll {
  return {
    id,
    player,
    notation: '1d20',
    label: null,
    terms: [
      {
        kind: 'dice',
        sign: 1,
        count: 1,
        sides: 20,
        keep: null,
        dice: [{ value: id, kept: true }],
        subtotal: id,
      },
    ],
    total: id,
    rolled_at: rolledAt,
  };
}

/** `GET /rooms/{code}` for room `ABCD2345`, seen by `you`. */
export function snapshotOf(overrides: Partial<RoomSnapshot> = {}): RoomSnapshot {
  return {
    room: {
      code: 'ABCD2345',
      name: 'Den',
      state: 'open',
      created_at: '2026-01-01T00:00:00.000Z',
      locked: false,
    },
    online: { player_ids: [], host: false },
    players: [
      { id: 'p1', name: 'Alice' },
      { id: 'p2', name: 'Bob' },
    ],
    rolls: [],
    you: { player_id: 'p1', host: false },
    ...overrides,
  };
}

/** A problem as `toProblem` builds it. */
export function problemOf(
  status: number,
  code: string,
  detail = 'Nope.',
  extra: Partial<Problem> = {},
): Problem {
  return { status, code, detail, errors: [], ...extra };
}

/** Lets pending promise callbacks run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
