import { describe, expect, it } from 'vitest';
import { diceryMigrations } from '../../../../../src/apps/dicery/index.js';
import { createRoomStore } from '../../../../../src/apps/dicery/storage/room-store.js';
import type { DiceryTables } from '../../../../../src/apps/dicery/storage/tables.js';
import { appTables } from '../../../../../src/storage/app-tables.js';
import { migrateToLatest } from '../../../../../src/storage/migrate.js';
import type { Schema } from '../../../../../src/storage/schema.js';
import { engines } from '../../../../support/databases.js';
import { diceryMigrationsBefore, insertOldRoom } from '../../../../support/dicery-old-schema.js';
import { type RawDatabase, withTestDatabase } from '../../../../support/old-schema.js';

const BEFORE = diceryMigrationsBefore('012a-player-activity');

describe.each(engines)('migration 012a-player-activity on $name', ({ name: engine }) => {
  // Nothing says whether a player present before the upgrade ever came back: counted as having
  // come back, so an upgrade never lets a real player be taken for a ghost.
  it('marks players present before it as having come back, and leaves departed and new ones unmarked', async () => {
    await withTestDatabase(engine, async (database) => {
      expect((await migrateToLatest(database, { dicery: BEFORE })).applied).not.toContain(
        'dicery/012a-player-activity',
      );
      const raw = database.db as unknown as RawDatabase;
      await insertOldRoom(raw);
      const player = (id: string, joinedAt: number, gone: boolean) => ({
        id,
        room_code: 'ROOM2345',
        name: id,
        name_key: id,
        present_key: gone ? null : id,
        joined_at: joinedAt,
        left_at: gone ? joinedAt + 1 : null,
        left_reason: gone ? 'left' : null,
        seat_hash: gone ? null : `${id}-seat`,
        seat_expires_at: gone ? null : 9_000_000_000_000,
      });
      await raw
        .insertInto('room_players')
        .values([player('present', 10, false), player('gone', 20, true)])
        .execute();

      // The migrations after it run too (the stores below are today's): this one first.
      expect((await migrateToLatest(database, { dicery: diceryMigrations })).applied[0]).toBe(
        'dicery/012a-player-activity',
      );
      const store = createRoomStore(appTables<DiceryTables, Schema>(database.db));
      expect(await store.findPlayer('present')).toMatchObject({ firstActiveAt: 10 });
      expect(await store.findPlayer('gone')).toMatchObject({ firstActiveAt: null });
      const joined = await store.insertPlayer({
        id: 'new',
        roomCode: 'ROOM2345',
        name: 'new',
        nameKey: 'new',
        joinedAt: 30,
      });
      expect(joined).toMatchObject({ ok: true, player: { firstActiveAt: null } });
      expect(await store.findPlayer('new')).toMatchObject({ firstActiveAt: null });
      await store.markPlayerActive('new', 40);
      await store.markPlayerActive('new', 50);
      expect(await store.findPlayer('new')).toMatchObject({ firstActiveAt: 40 });
    });
  });
});
