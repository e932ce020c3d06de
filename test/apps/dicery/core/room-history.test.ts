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
