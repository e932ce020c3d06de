import { describe, expect, it } from 'vitest';
import { createRoomHistory } from '../../../../src/apps/dicery/core/room-history.js';
import type { RoomStore } from '../../../../src/apps/dicery/storage/room-store.js';

/**
 * Race review 2026-12-06 P4: a roll export whose room was emptied while it ran (the host deleted
 * their account, the retention sweep) ended at the first empty page and answered a well-formed
 * file with rolls missing (199 of 260). The export must end visibly incomplete instead.
 */
describe('RoomHistory.all', () => {
  it('throws when the events it began with are gone before it reached them', async () => {
    // A room whose newest event was 260 when the export began, and whose events were all deleted.
    const emptied: Pick<RoomStore, 'lastEventId' | 'listEventsAfter'> = {
      lastEventId: async () => 260,
      listEventsAfter: async () => [],
    };
    const history = createRoomHistory(emptied as RoomStore);
    const exported: unknown[] = [];
    const all = async () => {
      for await (const roll of history.all('ABCDEF', { playerId: null, host: true })) exported.push(roll);
    };
    await expect(all()).rejects.toMatchObject({ code: 'ROOM_NOT_FOUND' });
    expect(exported).toEqual([]);
  });

  // The review of P4: the purges delete a room's events oldest first, 2 000 at a time, so an
  // export behind the purge found the events after the deleted chunk, not an empty page.
  it('throws when a page does not begin right after the last event read', async () => {
    const event = (seq: number) => ({
      id: seq,
      roomCode: 'ABCDEF',
      type: 'player_joined',
      data: '{}',
      createdAt: 0,
    });
    const range = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => event(from + i));
    let pages = 0;
    // 460 events; once the first page is read, the purge has deleted 1..400.
    const purging: Pick<RoomStore, 'lastEventId' | 'listEventsAfter'> & {
      log: Pick<RoomStore['log'], 'findEntries'>;
    } = {
      log: { findEntries: async () => [] },
      lastEventId: async () => 460,
      listEventsAfter: async (_code, after, limit) => {
        pages += 1;
        const left = pages === 1 ? range(1, 460) : range(401, 460);
        return left.filter((each) => each.id > after).slice(0, limit);
      },
    };
    const history = createRoomHistory(purging as unknown as RoomStore);
    const all = async () => {
      for await (const _roll of history.all('ABCDEF', { playerId: null, host: true })) {
        // every roll read
      }
    };
    await expect(all()).rejects.toMatchObject({ code: 'ROOM_NOT_FOUND' });
  });

  it('ends quietly on a room with no events at all', async () => {
    const empty: Pick<RoomStore, 'lastEventId' | 'listEventsAfter'> = {
      lastEventId: async () => 0,
      listEventsAfter: async () => [],
    };
    const history = createRoomHistory(empty as RoomStore);
    const exported: unknown[] = [];
    for await (const roll of history.all('ABCDEF', { playerId: null, host: true })) exported.push(roll);
    expect(exported).toEqual([]);
  });
});
