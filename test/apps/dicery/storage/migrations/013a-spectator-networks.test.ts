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

const BEFORE = diceryMigrationsBefore('013a-spectator-networks');

describe.each(engines)('migration 013a-spectator-networks on $name', ({ name: engine }) => {
  // Spectators from before it have no network: together they are one, the first to give way when
  // the link is full, and a spectator of any network after it keeps its place.
  it('adds the network; spectators from before it count as one network when the link is trimmed', async () => {
    await withTestDatabase(engine, async (database) => {
      await migrateToLatest(database, { dicery: BEFORE });
      expect(await columnsOf(database, 'room_spectator_sessions')).not.toContain('network');
      const raw = database.db as unknown as RawDatabase;
      await insertOldRoom(raw);
      await raw
        .insertInto('room_spectator_links')
        .values({ id: 'link', room_code: 'ROOM2345', token_hash: 'link-hash', created_at: 1 })
        .execute();
      const old = (id: string, createdAt: number) => ({
        id,
        link_id: 'link',
        room_code: 'ROOM2345',
        token_hash: `${id}-hash`,
        created_at: createdAt,
        expires_at: 9_000_000_000_000,
      });
      await raw
        .insertInto('room_spectator_sessions')
        .values([old('old-1', 10), old('old-2', 20)])
        .execute();

      // The migrations after it run too (the stores below are today's): this one first.
      expect((await migrateToLatest(database, { dicery: diceryMigrations })).applied[0]).toBe(
        'dicery/013a-spectator-networks',
      );
      const store = createRoomStore(appTables<DiceryTables, Schema>(database.db)).spectators;
      const open = async (id: string, network: string, createdAt: number) => {
        await store.insertSession({
          id,
          linkId: 'link',
          roomCode: 'ROOM2345',
          tokenHash: `${id}-hash`,
          createdAt,
          expiresAt: 9_000_000_000_000,
          network,
        });
        return store.trimSessions('link', 3, createdAt);
      };
      expect(await open('first', '198.51.100.1', 5)).toBe(0);
      // Four for three places: the two from before are the largest network, its oldest goes.
      expect(await open('second', '198.51.100.2', 30)).toBe(1);
      const left = async () =>
        (
          await raw
            .selectFrom('room_spectator_sessions')
            .select('id')
            .where('link_id', '=', 'link')
            .orderBy('id')
            .execute()
        ).map((row) => row.id);
      expect(await left()).toEqual(['first', 'old-2', 'second']);
      // All three networks hold one now: the oldest of them goes, whichever network it is.
      expect(await open('third', '198.51.100.3', 40)).toBe(1);
      expect(await left()).toEqual(['old-2', 'second', 'third']);
    });
  });
});
