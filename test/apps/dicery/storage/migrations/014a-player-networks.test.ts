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

const BEFORE = diceryMigrationsBefore('014a-player-networks');

describe.each(engines)('migration 014a-player-networks on $name', ({ name: engine }) => {
  // Players present before it joined from no known network: counted for none, so an upgrade
  // refuses nobody; a player joining after it carries the network it joined from.
  it('adds the network: none for the players before it, the joining one for those after, cleared once it counts no more', async () => {
    await withTestDatabase(engine, async (database) => {
      await migrateToLatest(database, { dicery: BEFORE });
      expect(await columnsOf(database, 'room_players')).not.toContain('network');
      const raw = database.db as unknown as RawDatabase;
      await insertOldRoom(raw);
      await raw
        .insertInto('room_players')
        .values({
          id: 'before',
          room_code: 'ROOM2345',
          name: 'before',
          name_key: 'before',
          present_key: 'before',
          joined_at: 10,
        })
        .execute();

      expect((await migrateToLatest(database, { dicery: diceryMigrations })).applied[0]).toBe(
        'dicery/014a-player-networks',
      );
      const store = createRoomStore(appTables<DiceryTables, Schema>(database.db));
      expect(await store.findPlayer('before')).toMatchObject({ network: null });
      const joined = await store.insertPlayer({
        id: 'after',
        roomCode: 'ROOM2345',
        name: 'after',
        nameKey: 'after',
        joinedAt: 20,
        network: '2001:db8:77::/48',
      });
      expect(joined).toMatchObject({ ok: true, player: { network: '2001:db8:77::/48' } });
      expect((await store.listPresentPlayers('ROOM2345')).map((player) => player.network)).toEqual([
        null,
        '2001:db8:77::/48',
      ]);
      // Kept only while it counts: not after the player leaves, nor once the room closes.
      expect(await store.markPlayerGone('after', 'left', 30)).toBe(true);
      expect(await store.findPlayer('after')).toMatchObject({ network: null });
      await store.insertPlayer({
        id: 'last',
        roomCode: 'ROOM2345',
        name: 'last',
        nameKey: 'last',
        joinedAt: 40,
        network: '198.51.100.7',
      });
      expect(await store.closeRoom('ROOM2345', 50)).toBe(true);
      expect(await store.findPlayer('last')).toMatchObject({ network: null });
    });
  });
});
