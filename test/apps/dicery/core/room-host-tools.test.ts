import { describe, expect, it } from 'vitest';
import {
  createRoomHostTools,
  emptyHostedRooms,
  PURGE_CHUNK_ROWS,
  PURGE_ROWS_PER_PASS,
  purgeHostedRooms,
} from '../../../../src/apps/dicery/core/room-host-tools.js';
import type { RoomStore } from '../../../../src/apps/dicery/storage/room-store.js';

/**
 * The retention sweep's pass over closed rooms (red-team 2026-12g D6), with a store that says what
 * each room's purge does: the pass's row budget, a room another instance holds, one that fails,
 * and the database away.
 */
/** Counts the event loop's turns (setImmediate callbacks) until `stop`. */
function countEventLoopTurns(): { stop(): number } {
  let turns = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    turns += 1;
    setImmediate(tick);
  };
  setImmediate(tick);
  return {
    stop() {
      running = false;
      return turns;
    },
  };
}

describe('purgeClosedRooms', () => {
  type Step = { deleted: number; done: boolean } | Error;
  const toolsOver = (rooms: Record<string, Step[]>) => {
    const calls: { code: string; maxRows: number }[] = [];
    const store = {
      listClosedRooms: async () => Object.keys(rooms),
      purgeClosedRoom: async (code: string, maxRows: number) => {
        calls.push({ code, maxRows });
        const step = rooms[code]?.shift() ?? { deleted: 0, done: true };
        if (step instanceof Error) throw step;
        return step;
      },
    } as Pick<RoomStore, 'listClosedRooms' | 'purgeClosedRoom'> as RoomStore;
    const tools = createRoomHostTools({
      rooms: store,
      change: async () => {
        throw new Error('no change expected');
      },
      clock: () => 1,
    });
    return { tools, calls };
  };

  it('goes on with the other rooms when one fails, then reports the failure', async () => {
    const { tools, calls } = toolsOver({
      A: [new Error('boom')],
      B: [{ deleted: 10, done: true }],
    });
    await expect(tools.purgeClosedRooms(100)).rejects.toThrow('boom');
    expect(calls.map((call) => call.code)).toEqual(['A', 'B']);
  });

  it('stops at once when the database is away (each room would wait its own timeout)', async () => {
    const away = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const { tools, calls } = toolsOver({ A: [away], B: [{ deleted: 10, done: true }] });
    await expect(tools.purgeClosedRooms(100)).rejects.toThrow('ECONNREFUSED');
    expect(calls.map((call) => call.code)).toEqual(['A']);
  });

  it('lets the event loop run between two statements (better-sqlite3 runs each synchronously)', async () => {
    const { tools } = toolsOver({
      BIG: Array.from({ length: 10 }, (_, i) => ({ deleted: PURGE_CHUNK_ROWS, done: i === 9 })),
    });
    const turns = countEventLoopTurns();
    expect(await tools.purgeClosedRooms(100)).toBe(1);
    expect(turns.stop()).toBeGreaterThanOrEqual(9);
  });

  it('leaves a room another instance is deleting to the next pass, and keeps to its row budget', async () => {
    const chunks = Math.ceil(PURGE_ROWS_PER_PASS / PURGE_CHUNK_ROWS) + 5;
    const { tools, calls } = toolsOver({
      // Rows held by another instance's delete: nothing deleted, not done.
      HELD: [{ deleted: 0, done: false }],
      BIG: Array.from({ length: chunks }, () => ({ deleted: PURGE_CHUNK_ROWS, done: false })),
      NEXT: [{ deleted: 1, done: true }],
    });
    expect(await tools.purgeClosedRooms(100)).toBe(0);
    expect(calls.filter((call) => call.code === 'HELD')).toHaveLength(1);
    const big = calls.filter((call) => call.code === 'BIG');
    expect(big.reduce((sum, call) => sum + call.maxRows, 0)).toBe(PURGE_ROWS_PER_PASS);
    expect(calls.some((call) => call.code === 'NEXT')).toBe(false);
  });
});

describe('emptyHostedRooms (a host account’s deletion)', () => {
  it('deletes each room by ranges of sequence numbers, then its row, letting the event loop run between statements', async () => {
    const last: Record<string, number> = {
      A: 2 * PURGE_CHUNK_ROWS + 7,
      EMPTY: 0,
      B: 3,
      C: 3 * PURGE_CHUNK_ROWS,
    };
    // C was emptied up to 2 * PURGE_CHUNK_ROWS + 10 before the transaction: its ranges start there.
    const first: Record<string, number | undefined> = { A: 1, B: 2, C: 2 * PURGE_CHUNK_ROWS + 11 };
    const calls: string[] = [];
    const store = {
      listHostedRoomCodes: async (host: string) => (host === 'host' ? Object.keys(last) : []),
      firstEventSeq: async (code: string) => first[code],
      lastEventId: async (code: string) => last[code] ?? 0,
      deleteRoomEventRange: async (code: string, after: number, upTo: number) => {
        calls.push(`${code} ${after}..${upTo}`);
        return Math.max(0, Math.min(upTo, last[code] ?? 0) - Math.max(after, (first[code] ?? 1) - 1)) * 2;
      },
      deleteRoom: async (code: string) => {
        calls.push(`${code} row`);
        return true;
      },
      deleteEmptiedHostedRooms: async (host: string) => {
        calls.push(`emptied rooms of ${host}`);
        return 0;
      },
    } as Pick<
      RoomStore,
      | 'listHostedRoomCodes'
      | 'firstEventSeq'
      | 'lastEventId'
      | 'deleteRoomEventRange'
      | 'deleteRoom'
      | 'deleteEmptiedHostedRooms'
    > as RoomStore;
    const turns = countEventLoopTurns();
    expect(await emptyHostedRooms(store, 'host')).toBe(
      (2 * PURGE_CHUNK_ROWS + 7 + 2 + (PURGE_CHUNK_ROWS - 10)) * 2,
    );
    expect(turns.stop()).toBeGreaterThanOrEqual(6);
    const chunk = PURGE_CHUNK_ROWS;
    expect(calls).toEqual([
      `A 0..${chunk}`,
      `A ${chunk}..${2 * chunk}`,
      `A ${2 * chunk}..${3 * chunk}`,
      'A row',
      'EMPTY row',
      `B 1..${chunk + 1}`,
      'B row',
      `C ${2 * chunk + 10}..${3 * chunk + 10}`,
      'C row',
      'emptied rooms of host',
    ]);
  });
});

describe('purgeHostedRooms (before a host account’s deletion)', () => {
  it('empties each room in chunks until it is done, leaves rows another instance holds, and lets the event loop run', async () => {
    // Rows each room holds; HELD's are being deleted by another instance (none deleted, not done).
    const rows: Record<string, number> = { A: 2 * PURGE_CHUNK_ROWS + 5, HELD: 50, EMPTY: 0 };
    const calls: string[] = [];
    const store = {
      listHostedRoomCodes: async (host: string) => (host === 'host' ? Object.keys(rows) : []),
      purgeClosedRoom: async (code: string, maxRows: number, now: number) => {
        calls.push(`${code} ${maxRows} @${now}`);
        if (code === 'HELD') return { deleted: 0, done: false };
        const deleted = Math.min(maxRows, rows[code] ?? 0);
        rows[code] = (rows[code] ?? 0) - deleted;
        return { deleted, done: deleted < maxRows };
      },
      // The emptied rooms' own rows: a full chunk, then the rest.
      deleteEmptiedHostedRooms: async (host: string, limit: number) => {
        calls.push(`rooms ${host} ${limit}`);
        const taken = host === 'host' ? Math.min(limit, emptiedRooms) : 0;
        emptiedRooms -= taken;
        return taken;
      },
    } as Pick<RoomStore, 'listHostedRoomCodes' | 'purgeClosedRoom' | 'deleteEmptiedHostedRooms'> as RoomStore;
    let emptiedRooms = PURGE_CHUNK_ROWS + 3;
    const turns = countEventLoopTurns();
    expect(await purgeHostedRooms(store, 'host', () => 42)).toBe(
      2 * PURGE_CHUNK_ROWS + 5 + PURGE_CHUNK_ROWS + 3,
    );
    expect(turns.stop()).toBeGreaterThanOrEqual(3);
    const chunk = PURGE_CHUNK_ROWS;
    expect(calls).toEqual([
      `A ${chunk} @42`,
      `A ${chunk} @42`,
      `A ${chunk} @42`,
      // Held by another instance: a few passes, then it is left to it.
      ...Array.from({ length: 5 }, () => `HELD ${chunk} @42`),
      `EMPTY ${chunk} @42`,
      `rooms host ${chunk}`,
      `rooms host ${chunk}`,
    ]);
    expect(await purgeHostedRooms(store, 'someone else', () => 42)).toBe(0);
  });
});
