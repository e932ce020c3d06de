import { describe, expect, it } from 'vitest';
import { diceryMigrations } from '../../../../../src/apps/dicery/index.js';
import { createRoomStore } from '../../../../../src/apps/dicery/storage/room-store.js';
import type { DiceryTables } from '../../../../../src/apps/dicery/storage/tables.js';
import { appTables } from '../../../../../src/storage/app-tables.js';
import { migrateToLatest } from '../../../../../src/storage/migrate.js';
import type { Schema } from '../../../../../src/storage/schema.js';
import { engines } from '../../../../support/databases.js';
import { diceryMigrationsBefore, insertOldRoom } from '../../../../support/dicery-old-schema.js';
import { columnsOf, type RawDatabase, withTestDatabase } from '../../../../support/old-schema.js';

const BEFORE = diceryMigrationsBefore('015a-closed-room-retention');

describe.each(engines)('migration 015a-closed-room-retention on $name', ({ name: engine }) => {
  // Rooms closed before the upgrade are not yet emptied: the sweep takes them up, oldest first,
  // once past ROOM_CLOSED_RETENTION (README: the upgrade note), and leaves open ones alone.
  it('adds purged_at, null for every room before it; closed rooms before it are listed for the sweep', async () => {
    await withTestDatabase(engine, async (database) => {
      await migrateToLatest(database, { dicery: BEFORE });
      expect(await columnsOf(database, 'rooms')).not.toContain('purged_at');
      const raw = database.db as unknown as RawDatabase;
      await insertOldRoom(raw, 'ROOM2345');
      await raw
        .insertInto('rooms')
        .values({ code: 'ROOM6789', name: 'Table', host_user_id: 'host', state: 'open', created_at: 1 })
        .execute();
      await raw
        .updateTable('rooms')
        .set({ state: 'closed', closed_at: 100 })
        .where('code', '=', 'ROOM2345')
        .execute();

      expect((await migrateToLatest(database, { dicery: diceryMigrations })).applied[0]).toBe(
        'dicery/015a-closed-room-retention',
      );
      expect(await columnsOf(database, 'rooms')).toContain('purged_at');
      const store = createRoomStore(appTables<DiceryTables, Schema>(database.db));
      expect(await store.listClosedRooms(101, 10)).toEqual(['ROOM2345']);
      expect(await store.purgeClosedRoom('ROOM2345', 10, 200)).toEqual({ deleted: 0, done: true });
      expect(await store.listClosedRooms(101, 10)).toEqual([]);
      expect((await store.findRoom('ROOM6789'))?.state).toBe('open');
    });
  });
});
