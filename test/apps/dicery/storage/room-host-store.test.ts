import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { diceryMigrations } from '../../../../src/apps/dicery/index.js';
import { createRoomStore, type RoomStore } from '../../../../src/apps/dicery/storage/room-store.js';
import type { DiceryTables } from '../../../../src/apps/dicery/storage/tables.js';
import { appTables } from '../../../../src/storage/app-tables.js';
import type { Schema } from '../../../../src/storage/schema.js';
import { createTestDatabase, engines, type TestDatabase } from '../../../support/databases.js';

const T0 = 1_700_000_000_000;

/**
 * The host tools' storage (migration 008a) on every engine: bans (one per name, lifting forgets
 * only a gone player's seat), lock and rename of open rooms only, single-use hand-over, the host's
 * list and the idle listing.
 */
describe.each(engines)('RoomHostStore on $name', ({ name: engine }) => {
  let testDb: TestDatabase;
  let store: RoomStore;
  let hostId: string;
  let code: string;

  beforeAll(async () => {
    testDb = await createTestDatabase(engine, { dicery: diceryMigrations });
    store = createRoomStore(appTables<DiceryTables, Schema>(testDb.database.db));
  });
  afterAll(async () => {
    await testDb?.dispose();
  });

  const newRoom = async (createdAt = T0) => {
    const room = randomUUID().slice(0, 8).toUpperCase();
    expect((await store.insertRoom({ code: room, name: 'Table', hostUserId: hostId, createdAt })).ok).toBe(
      true,
    );
    return room;
  };
  const newRoomWithCode = (room: string) =>
    store.insertRoom({ code: room, name: 'Table', hostUserId: hostId, createdAt: T0 });

  beforeEach(async () => {
    hostId = randomUUID();
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
    code = await newRoom();
  });

  const ban = (name: string, playerId: string | null = null, createdAt = T0) => ({
    id: randomUUID(),
    roomCode: code,
    name,
    nameKey: name.toLowerCase(),
    playerId,
    createdAt,
  });

  it('keeps one ban per name, lists them newest first, and lifting forgets the gone player’s seat', async () => {
    const playerId = randomUUID();
    const inserted = await store.insertPlayer({
      id: playerId,
      roomCode: code,
      name: 'Pat',
      nameKey: 'pat',
      joinedAt: T0,
      seatHash: 'a'.repeat(64),
      seatExpiresAt: T0 + 1000,
    });
    expect(inserted.ok).toBe(true);
    expect(await store.markPlayerGone(playerId, 'kicked', T0)).toBe(true);
    const patBan = ban('Pat', playerId);
    expect(await store.insertBan(patBan)).toBe(true);
    expect(await store.insertBan(ban('PAT'))).toBe(false);
    expect(await store.insertBan(ban('Sam', null, T0 + 5))).toBe(true);
    expect(await store.countBans(code)).toBe(2);
    expect((await store.listBans(code, 10, 0)).map((b) => b.name)).toEqual(['Sam', 'Pat']);
    expect((await store.listBans(code, 1, 1)).map((b) => b.name)).toEqual(['Pat']);
    expect(await store.findBan(code, 'pat')).toMatchObject({ id: patBan.id, playerId });
    // The kicked seat is still known (so it stays refused) until the ban is lifted.
    expect(await store.findPlayerBySeat(code, 'a'.repeat(64))).toMatchObject({ id: playerId });

    expect(await store.deleteBan('OTHER234', patBan.id)).toBeUndefined();
    expect(await store.deleteBan(code, patBan.id)).toMatchObject({ id: patBan.id });
    expect(await store.deleteBan(code, patBan.id)).toBeUndefined();
    expect(await store.findBan(code, 'pat')).toBeUndefined();
    expect(await store.findPlayerBySeat(code, 'a'.repeat(64))).toBeUndefined();
  });

  it('locks and renames open rooms only', async () => {
    expect(await store.updateRoom(code, { locked: true, name: 'Den' })).toBe(true);
    expect(await store.findRoom(code)).toMatchObject({ locked: true, name: 'Den' });
    expect(await store.updateRoom(code, { locked: false })).toBe(true);
    expect((await store.findRoom(code))?.locked).toBe(false);
    expect(await store.closeRoom(code, T0 + 1)).toBe(true);
    expect(await store.updateRoom(code, { locked: true })).toBe(false);
  });

  it('hands a room over once per code, before it expires', async () => {
    const next = hostId;
    expect(await store.setTransferCode(code, 'h1', T0 + 600_000)).toBe(true);
    expect(await store.takeOverRoom(code, 'wrong', next, T0)).toBe(false);
    expect(await store.takeOverRoom(code, 'h1', next, T0 + 600_000)).toBe(false);
    const [first, second] = await Promise.all([
      store.takeOverRoom(code, 'h1', next, T0 + 1),
      store.takeOverRoom(code, 'h1', next, T0 + 1),
    ]);
    expect([first, second].sort()).toEqual([false, true]);
  });

  it('empties a closed room over several bounded calls, keeps its row, and never touches an open one (retention, red-team 2026-12g D6)', async () => {
    for (let i = 0; i < 5; i += 1) expect(await store.appendEvent(code, 'roll', '{}', T0 + i)).toBeDefined();
    const open = await newRoom();
    expect(await store.appendEvent(open, 'roll', '{}', T0)).toBeDefined();
    expect(await store.purgeClosedRoom(open, 10, T0)).toEqual({ deleted: 0, done: true });
    expect(await store.listEventsAfter(open, 0, 10)).toHaveLength(1);
    expect(await store.closeRoom(code, T0 + 100)).toBe(true);
    expect(await store.listClosedRooms(T0 + 100, 1000)).not.toContain(code);
    expect(await store.listClosedRooms(T0 + 101, 1000)).toContain(code);
    expect(await store.purgeClosedRoom(code, 2, T0 + 200)).toEqual({ deleted: 2, done: false });
    expect(await store.purgeClosedRoom(code, 2, T0 + 200)).toEqual({ deleted: 2, done: false });
    expect(await store.listClosedRooms(T0 + 101, 1000)).toContain(code);
    expect(await store.purgeClosedRoom(code, 2, T0 + 200)).toEqual({ deleted: 1, done: true });
    expect(await store.listEventsAfter(code, 0, 10)).toEqual([]);
    // The row stays (closed), so its code is never drawn again; it is not listed for the sweep again.
    expect((await store.findRoom(code))?.state).toBe('closed');
    expect((await newRoomWithCode(code)).ok).toBe(false);
    expect(await store.listClosedRooms(T0 + 101, 1000)).not.toContain(code);
    expect(await store.purgeClosedRoom(code, 2, T0 + 300)).toEqual({ deleted: 0, done: true });
    expect((await store.findRoom(open))?.state).toBe('open');
  });

  it("lists the host's rooms newest first with the total, and idle open rooms oldest first", async () => {
    const newer = await newRoom(T0 + 10);
    const newest = await newRoom(T0 + 20);
    expect(await store.closeRoom(newer, T0 + 30)).toBe(true);
    const page = await store.listHostedRooms(hostId, 10, 0);
    expect(page.map((room) => [room.code, room.state])).toEqual([
      [newest, 'open'],
      [newer, 'closed'],
      [code, 'open'],
    ]);
    expect(await store.countHostedRooms(hostId)).toBe(3);

    // An event moves a room's activity: `code` becomes the newest, `newest` stays idle.
    expect(await store.appendEvent(code, 'roll', '{}', T0 + 1000)).toBeDefined();
    expect((await store.findRoom(code))?.lastActivityAt).toBe(T0 + 1000);
    const idle = await store.listIdleRooms(T0 + 500, 1000);
    expect(idle).toContain(newest);
    expect(idle).not.toContain(code);
    expect(idle).not.toContain(newer); // closed
    expect((await store.listIdleRooms(T0 + 500, 1)).length).toBe(1);
  });
});
