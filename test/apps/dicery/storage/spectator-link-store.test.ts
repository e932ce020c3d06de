import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diceryMigrations } from '../../../../src/apps/dicery/index.js';
import { createRoomStore, type RoomStore } from '../../../../src/apps/dicery/storage/room-store.js';
import type { DiceryTables } from '../../../../src/apps/dicery/storage/tables.js';
import { appTables } from '../../../../src/storage/app-tables.js';
import type { Schema } from '../../../../src/storage/schema.js';
import { createTestDatabase, engines, type TestDatabase } from '../../../support/databases.js';

const T0 = 1_700_000_000_000;

/**
 * Spectator links' storage (migration 010a) on every engine: found by hash within their room
 * only, listed newest first, counted, deleted once, and gone with their room.
 */
describe.each(engines)('SpectatorLinkStore on $name', ({ name: engine }) => {
  let testDb: TestDatabase;
  let store: RoomStore;

  beforeAll(async () => {
    testDb = await createTestDatabase(engine, { dicery: diceryMigrations });
    store = createRoomStore(appTables<DiceryTables, Schema>(testDb.database.db));
  });
  afterAll(async () => {
    await testDb?.dispose();
  });

  async function newRoom(): Promise<string> {
    const hostId = randomUUID();
    await testDb.database.db
      .insertInto('users')
      .values({
        id: hostId,
        email: `${hostId}@example.test`,
        email_key: `${hostId}@example.test`,
        full_name: null,
        password_hash: 'x',
        role: 'user',
        is_active: 1,
        created_at: T0,
        updated_at: T0,
      })
      .execute();
    const code = randomUUID().slice(0, 8).toUpperCase();
    expect((await store.insertRoom({ code, name: 'Table', hostUserId: hostId, createdAt: T0 })).ok).toBe(
      true,
    );
    return code;
  }

  it('finds a link by hash in its own room only, lists newest first, and deletes it once', async () => {
    const room = await newRoom();
    const other = await newRoom();
    const first = { id: randomUUID(), roomCode: room, tokenHash: 'a'.repeat(64), createdAt: T0 };
    const second = { id: randomUUID(), roomCode: room, tokenHash: 'b'.repeat(64), createdAt: T0 + 1000 };
    await store.spectators.insertLink(first);
    await store.spectators.insertLink(second);

    expect(await store.spectators.findLinkByHash(room, first.tokenHash)).toEqual({
      id: first.id,
      roomCode: room,
      createdAt: T0,
    });
    expect(await store.spectators.findLinkByHash(other, first.tokenHash)).toBeUndefined();
    expect(await store.spectators.countLinks(room)).toBe(2);
    expect((await store.spectators.listLinks(room, 10, 0)).map((link) => link.id)).toEqual([
      second.id,
      first.id,
    ]);
    expect((await store.spectators.listLinks(room, 1, 1)).map((link) => link.id)).toEqual([first.id]);
    expect((await store.spectators.listLinkIds(room)).sort()).toEqual([first.id, second.id].sort());

    // Deleting needs the right room, and happens once.
    expect(await store.spectators.deleteLink(other, first.id)).toBe(false);
    expect(await store.spectators.deleteLink(room, first.id)).toBe(true);
    expect(await store.spectators.deleteLink(room, first.id)).toBe(false);
    expect(await store.spectators.findLinkByHash(room, first.tokenHash)).toBeUndefined();
    expect(await store.spectators.countLinks(room)).toBe(1);
  });

  it('refuses a second link with the same secret hash', async () => {
    const room = await newRoom();
    const tokenHash = 'c'.repeat(64);
    await store.spectators.insertLink({ id: randomUUID(), roomCode: room, tokenHash, createdAt: T0 });
    await expect(
      store.spectators.insertLink({ id: randomUUID(), roomCode: room, tokenHash, createdAt: T0 }),
    ).rejects.toThrow();
  });

  it('deletes the links with their room', async () => {
    const room = await newRoom();
    await store.spectators.insertLink({
      id: randomUUID(),
      roomCode: room,
      tokenHash: 'd'.repeat(64),
      createdAt: T0,
    });
    await appTables<DiceryTables, Schema>(testDb.database.db)
      .deleteFrom('rooms')
      .where('code', '=', room)
      .execute();
    expect(await store.spectators.countLinks(room)).toBe(0);
  });
});
