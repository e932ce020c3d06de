import { randomUUID } from 'node:crypto';
import {
  CompiledQuery,
  createQueryId,
  type Kysely,
  type KyselyPlugin,
  Migrator,
  type RootOperationNode,
  sql,
} from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { diceryMigrations } from '../../../../src/apps/dicery/index.js';
import {
  createRoomStore,
  type NewPlayer,
  type RoomStore,
  type StoredRoomEvent,
} from '../../../../src/apps/dicery/storage/room-store.js';
import type { DiceryTables } from '../../../../src/apps/dicery/storage/tables.js';
import { appTables } from '../../../../src/storage/app-tables.js';
import { migrateToLatest } from '../../../../src/storage/migrate.js';
import { openDatabase } from '../../../../src/storage/open-database.js';
import type { Schema } from '../../../../src/storage/schema.js';
import {
  createTestDatabase,
  createTestDatabaseUrl,
  engines,
  type TestDatabase,
} from '../../../support/databases.js';

const T0 = 1_700_000_000_000;

/** Appends to an open room; fails the test if the store refuses. */
async function append(
  store: RoomStore,
  code: string,
  type: string,
  data: string,
  now: number,
): Promise<StoredRoomEvent> {
  const event = await store.appendEvent(code, type, data, now);
  if (event === undefined) throw new Error(`append to ${code} refused`);
  return event;
}

describe.each(engines)('RoomStore on $name', ({ name: engine }) => {
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

  // Every test gets its own host and room, so tests never see each other's rows.
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
    code = randomUUID().slice(0, 8).toUpperCase();
    const inserted = await store.insertRoom({ code, name: 'Table', hostUserId: hostId, createdAt: T0 });
    expect(inserted.ok).toBe(true);
  });

  function newPlayer(name: string, overrides: Partial<NewPlayer> = {}): NewPlayer {
    return {
      id: randomUUID(),
      roomCode: code,
      name,
      nameKey: name.toLowerCase(),
      joinedAt: T0 + 1,
      ...overrides,
    };
  }

  describe('rooms', () => {
    it('finds an inserted room, open', async () => {
      expect(await store.findRoom(code)).toEqual({
        code,
        name: 'Table',
        hostUserId: hostId,
        state: 'open',
        createdAt: T0,
        closedAt: null,
        lastEventSeq: 0,
        locked: false,
        lastActivityAt: T0,
      });
      expect(await store.findRoom('NOPE2345')).toBeUndefined();
    });

    it('reports a taken code as a value, not an exception', async () => {
      const again = await store.insertRoom({ code, name: 'Other', hostUserId: hostId, createdAt: T0 });
      expect(again).toEqual({ ok: false, reason: 'code_taken' });
      expect((await store.findRoom(code))?.name).toBe('Table');
    });

    it('closes an open room exactly once', async () => {
      expect(await store.closeRoom(code, T0 + 5)).toBe(true);
      expect(await store.closeRoom(code, T0 + 6)).toBe(false);
      expect(await store.closeRoom('NOPE2345', T0 + 6)).toBe(false);
      expect(await store.findRoom(code)).toMatchObject({ state: 'closed', closedAt: T0 + 5 });
    });

    it('closing clears the networks of present players only, not every row the room ever had', async () => {
      // Departed players' rows stay (bans and the log name them) and one join-and-leave adds one:
      // an update over all of them outran the statement timeout, and the room could not be closed.
      const present = newPlayer('stays', { network: '198.51.100.7' });
      await store.insertPlayer(present);
      for (const name of ['left1', 'left2']) {
        const gone = newPlayer(name, { network: '198.51.100.8' });
        await store.insertPlayer(gone);
        expect(await store.markPlayerGone(gone.id, 'left', T0 + 2)).toBe(true);
      }
      const db = testDb.database.db;
      const trigger = `gh_test_departed_${code.toLowerCase()}`;
      if (engine === 'postgres') {
        await sql
          .raw(`create function ${trigger}() returns trigger language plpgsql as $$
          begin raise exception 'departed player row updated'; end $$`)
          .execute(db);
        await sql
          .raw(`create trigger ${trigger} before update on room_players for each row
          when (old.room_code = '${code}' and old.left_at is not null) execute function ${trigger}()`)
          .execute(db);
      } else {
        await sql
          .raw(`create trigger ${trigger} before update on room_players
          when old.room_code = '${code}' and old.left_at is not null
          begin select raise(abort, 'departed player row updated'); end`)
          .execute(db);
      }
      try {
        expect(await store.closeRoom(code, T0 + 5)).toBe(true);
        expect((await store.findPlayer(present.id))?.network).toBeNull();
      } finally {
        await sql
          .raw(`drop trigger ${trigger}${engine === 'postgres' ? ' on room_players' : ''}`)
          .execute(db);
        if (engine === 'postgres') await sql.raw(`drop function ${trigger}()`).execute(db);
      }
    });

    it("counts a host's open rooms only", async () => {
      const second = randomUUID().slice(0, 8).toUpperCase();
      await store.insertRoom({ code: second, name: 'Two', hostUserId: hostId, createdAt: T0 });
      expect(await store.countOpenRooms(hostId)).toBe(2);
      await store.closeRoom(code, T0 + 5);
      expect(await store.countOpenRooms(hostId)).toBe(1);
      expect(await store.countOpenRooms(randomUUID())).toBe(0);
    });

    it('deletes rooms with their host', async () => {
      await store.insertPlayer(newPlayer('Ann'));
      await append(store, code, 'roll', '{}', T0);
      await testDb.database.db.deleteFrom('users').where('id', '=', hostId).execute();
      expect(await store.findRoom(code)).toBeUndefined();
      expect(await store.listPresentPlayers(code)).toEqual([]);
      expect(await store.listEventsAfter(code, 0, 10)).toEqual([]);
    });
  });

  describe('players', () => {
    it('inserts and finds a present player', async () => {
      const player = newPlayer('Ann');
      const result = await store.insertPlayer(player);
      const expected = {
        ...player,
        leftAt: null,
        leftReason: null,
        seatExpiresAt: null,
        seatGeneration: 0,
        firstActiveAt: null,
        network: null,
      };
      expect(result).toEqual({ ok: true, player: expected });
      expect(await store.findPlayer(player.id)).toEqual(expected);
      expect(await store.findPlayer(randomUUID())).toBeUndefined();
    });

    it('rejects a second present player with the same name key', async () => {
      expect((await store.insertPlayer(newPlayer('Ann'))).ok).toBe(true);
      expect(await store.insertPlayer(newPlayer('ANN'))).toEqual({ ok: false, reason: 'name_taken' });
    });

    it('allows the same name in another room', async () => {
      await store.insertPlayer(newPlayer('Ann'));
      const otherCode = randomUUID().slice(0, 8).toUpperCase();
      await store.insertRoom({ code: otherCode, name: 'Other', hostUserId: hostId, createdAt: T0 });
      expect((await store.insertPlayer(newPlayer('Ann', { roomCode: otherCode }))).ok).toBe(true);
    });

    it('refuses players for unknown and closed rooms', async () => {
      const unknown = await store.insertPlayer(newPlayer('Ann', { roomCode: 'NOPE2345' }));
      expect(unknown).toEqual({ ok: false, reason: 'room_not_open' });
      await store.closeRoom(code, T0 + 2);
      expect(await store.insertPlayer(newPlayer('Ann'))).toEqual({ ok: false, reason: 'room_not_open' });
      expect(await store.listPresentPlayers(code)).toEqual([]);
    });

    it('lists present players in join order', async () => {
      const late = newPlayer('Cid', { joinedAt: T0 + 30 });
      const early = newPlayer('Ann', { joinedAt: T0 + 10 });
      const gone = newPlayer('Bob', { joinedAt: T0 + 20 });
      for (const p of [late, early, gone]) await store.insertPlayer(p);
      await store.markPlayerGone(gone.id, 'left', T0 + 40);
      expect((await store.listPresentPlayers(code)).map((p) => p.name)).toEqual(['Ann', 'Cid']);
    });

    it('lists the present players through the (room_code, present_key) index, however many left', async () => {
      // A bearer join and a leave, over and over, as a script can: every departed player's row stays.
      for (let i = 0; i < 30; i++) {
        const gone = newPlayer(`Gone ${i}`, { joinedAt: T0 + i });
        await store.insertPlayer(gone);
        await store.markPlayerGone(
          gone.id,
          i % 3 === 0 ? 'kicked' : i % 3 === 1 ? 'left' : 'expired',
          T0 + 100,
        );
      }
      const stays = newPlayer('Stays', { joinedAt: T0 + 50 });
      await store.insertPlayer(stays);
      expect((await store.listPresentPlayers(code)).map((p) => p.id)).toEqual([stays.id]);
      if (engine !== 'sqlite') return;
      // The statement the store runs, captured as compiled (with its parameters), then explained.
      const nodes: RootOperationNode[] = [];
      const capture: KyselyPlugin = {
        transformQuery: ({ node }) => {
          nodes.push(node);
          return node;
        },
        transformResult: async ({ result }) => result,
      };
      const view = appTables<DiceryTables, Schema>(testDb.database.db);
      await createRoomStore(view.withPlugin(capture)).listPresentPlayers(code);
      const [node] = nodes;
      if (node === undefined) throw new Error('no query captured');
      const query = view.getExecutor().compileQuery(node, createQueryId());
      const plan = await view.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]),
      );
      // Before: `USING INDEX room_players_room_idx (room_code=?)`, every row the room ever had.
      expect(plan.rows.map((row) => row.detail).join('; ')).toMatch(
        /USING INDEX room_players_present_name_idx \(room_code=\? AND present_key>\?\)/,
      );
    });

    it('marks a player gone once, keeping the reason, and frees the name', async () => {
      const ann = newPlayer('Ann');
      await store.insertPlayer(ann);
      expect(await store.markPlayerGone(ann.id, 'kicked', T0 + 9)).toBe(true);
      expect(await store.markPlayerGone(ann.id, 'left', T0 + 10)).toBe(false);
      expect(await store.markPlayerGone(randomUUID(), 'left', T0 + 10)).toBe(false);
      expect(await store.findPlayer(ann.id)).toMatchObject({ leftAt: T0 + 9, leftReason: 'kicked' });
      expect((await store.insertPlayer(newPlayer('ann'))).ok).toBe(true);
    });

    it('lets exactly one of 20 concurrent joins with one name (any case) win', async () => {
      const spellings = Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0 ? 'Zed' : i % 3 === 0 ? 'ZED' : 'zed',
      );
      const results = await Promise.all(spellings.map((name) => store.insertPlayer(newPlayer(name))));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok && r.reason === 'name_taken')).toHaveLength(19);
      expect(await store.listPresentPlayers(code)).toHaveLength(1);
    });
  });

  describe('seats', () => {
    it('finds a player by seat hash within the room only, and slides the expiry of present ones', async () => {
      const ann = newPlayer('Ann', { seatHash: 'a'.repeat(64), seatExpiresAt: T0 + 100 });
      await store.insertPlayer(ann);
      expect((await store.findPlayerBySeat(code, 'a'.repeat(64)))?.id).toBe(ann.id);
      expect(await store.findPlayerBySeat('ZZZZ2222', 'a'.repeat(64))).toBeUndefined();
      expect(await store.findPlayerBySeat(code, 'b'.repeat(64))).toBeUndefined();
      expect(await store.renewSeat(ann.id, T0 + 500)).toBe(true);
      expect((await store.findPlayer(ann.id))?.seatExpiresAt).toBe(T0 + 500);
      await store.markPlayerGone(ann.id, 'left', T0 + 600);
      expect(await store.renewSeat(ann.id, T0 + 900)).toBe(false);
      // Leaving gives the seat up: the hash is gone with it.
      expect(await store.findPlayerBySeat(code, 'a'.repeat(64))).toBeUndefined();
    });

    it('keeps the seat of a kicked player, so that browser stays recognised and refused', async () => {
      const bob = newPlayer('Bob', { seatHash: 'c'.repeat(64), seatExpiresAt: T0 + 100 });
      await store.insertPlayer(bob);
      await store.markPlayerGone(bob.id, 'kicked', T0 + 5);
      expect(await store.findPlayerBySeat(code, 'c'.repeat(64))).toMatchObject({
        id: bob.id,
        leftReason: 'kicked',
      });
    });

    it('spends a claim code once: of two concurrent claims exactly one moves the seat', async () => {
      const cat = newPlayer('Cat', { seatHash: 'd'.repeat(64), seatExpiresAt: T0 + 100 });
      await store.insertPlayer(cat);
      expect(await store.setClaimCode(cat.id, 'e'.repeat(64), T0 + 60)).toBe(true);
      expect(await store.findPlayerByClaim(code, 'e'.repeat(64), T0 + 60)).toBeUndefined(); // expired
      expect((await store.findPlayerByClaim(code, 'e'.repeat(64), T0 + 59))?.id).toBe(cat.id);
      const results = await Promise.all([
        store.moveSeat(cat.id, 'e'.repeat(64), 'f'.repeat(64), T0 + 1000),
        store.moveSeat(cat.id, 'e'.repeat(64), '0'.repeat(64), T0 + 1000),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const moved = await store.findPlayer(cat.id);
      expect(moved?.seatGeneration).toBe(1);
      expect(await store.findPlayerBySeat(code, 'd'.repeat(64))).toBeUndefined();
      expect(await store.findPlayerByClaim(code, 'e'.repeat(64), T0)).toBeUndefined();
    });

    it('refuses claim codes for players who are gone, and drops a pending one when they go', async () => {
      const dan = newPlayer('Dan', { seatHash: '1'.repeat(64), seatExpiresAt: T0 + 100 });
      await store.insertPlayer(dan);
      await store.setClaimCode(dan.id, '2'.repeat(64), T0 + 60);
      await store.markPlayerGone(dan.id, 'expired', T0 + 1);
      expect(await store.findPlayerByClaim(code, '2'.repeat(64), T0)).toBeUndefined();
      expect(await store.setClaimCode(dan.id, '3'.repeat(64), T0 + 60)).toBe(false);
      expect(await store.moveSeat(dan.id, '2'.repeat(64), '4'.repeat(64), T0 + 100)).toBe(false);
      expect((await store.findPlayer(dan.id))?.leftReason).toBe('expired');
    });
  });

  describe('events', () => {
    it('appends events with increasing ids and lists those after an id', async () => {
      const first = await append(store, code, 'player_joined', '{"a":1}', T0 + 1);
      const second = await append(store, code, 'roll', '{"b":2}', T0 + 2);
      const third = await append(store, code, 'roll', '{"c":3}', T0 + 3);
      expect(first).toEqual({
        id: first.id,
        roomCode: code,
        type: 'player_joined',
        data: '{"a":1}',
        createdAt: T0 + 1,
      });
      expect(typeof first.id).toBe('number');
      expect(second.id).toBeGreaterThan(first.id);
      expect(third.id).toBeGreaterThan(second.id);

      expect(await store.listEventsAfter(code, 0, 10)).toEqual([first, second, third]);
      expect(await store.listEventsAfter(code, first.id, 10)).toEqual([second, third]);
      expect(await store.listEventsAfter(code, first.id, 1)).toEqual([second]);
      expect(await store.listEventsAfter(code, third.id, 10)).toEqual([]);
    });

    it('keeps rooms apart', async () => {
      const otherCode = randomUUID().slice(0, 8).toUpperCase();
      await store.insertRoom({ code: otherCode, name: 'Other', hostUserId: hostId, createdAt: T0 });
      const mine = await append(store, code, 'roll', '{}', T0);
      await append(store, otherCode, 'roll', '{}', T0);
      expect(await store.listEventsAfter(code, 0, 10)).toEqual([mine]);
      expect(await store.listRecentEvents(code, 'roll', 10)).toEqual([mine]);
      expect(await store.lastEventId(code)).toBe(mine.id);
    });

    it('lists the newest events of one type, oldest first', async () => {
      const rolls = [];
      for (let i = 0; i < 5; i++) {
        rolls.push(await append(store, code, 'roll', `{"i":${i}}`, T0 + i));
        await append(store, code, 'player_joined', '{}', T0 + i);
      }
      expect(await store.listRecentEvents(code, 'roll', 3)).toEqual(rolls.slice(2));
      expect(await store.listRecentEvents(code, 'room_closed', 3)).toEqual([]);
    });

    it('reports the last event id, 0 for none', async () => {
      expect(await store.lastEventId(code)).toBe(0);
      await append(store, code, 'roll', '{}', T0);
      const last = await append(store, code, 'roll', '{}', T0);
      expect(await store.lastEventId(code)).toBe(last.id);
      expect((await store.findRoom(code))?.lastEventSeq).toBe(last.id);
      expect(await store.lastEventId('NOPE2345')).toBe(0);
    });

    it('numbers each room 1, 2, 3… on its own, so ids say nothing about other rooms', async () => {
      const otherCode = randomUUID().slice(0, 8).toUpperCase();
      await store.insertRoom({ code: otherCode, name: 'Other', hostUserId: hostId, createdAt: T0 });
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) {
        ids.push((await append(store, code, 'roll', '{}', T0)).id);
        await append(store, otherCode, 'roll', '{}', T0);
      }
      expect(ids).toEqual([1, 2, 3]);
      expect((await store.listEventsAfter(otherCode, 0, 10)).map((e) => e.id)).toEqual([1, 2, 3]);
    });

    it('refuses to append to unknown and closed rooms, so nothing follows room_closed', async () => {
      expect(await store.appendEvent('NOPE2345', 'roll', '{}', T0)).toBeUndefined();
      await append(store, code, 'room_closed', '{}', T0);
      expect(await store.closeRoom(code, T0)).toBe(true);
      expect(await store.appendEvent(code, 'roll', '{}', T0)).toBeUndefined();
      expect(await store.lastEventId(code)).toBe(1);
    });

    it('hands 50 concurrent appends, each in its own transaction, exactly 1..50', async () => {
      // On PostgreSQL these run on up to 10 pooled connections at once: the room row lock is what
      // serializes them. On SQLite the single writer does.
      const appended = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          testDb.database.transaction((trx) =>
            append(createRoomStore(appTables<DiceryTables, Schema>(trx)), code, 'roll', `{"i":${i}}`, T0),
          ),
        ),
      );
      const ids = appended.map((event) => event.id).sort((a, b) => a - b);
      expect(ids).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      const log = await store.listEventsAfter(code, 0, 100);
      expect(log.map((event) => event.id)).toEqual(ids);
      // Each number went to exactly the event that was told it.
      for (const event of appended) expect(log[event.id - 1]?.data).toBe(event.data);
      expect(await store.lastEventId(code)).toBe(50);
    });

    it('gives a rolled-back append no number: the next one takes it, leaving no gap', async () => {
      await append(store, code, 'roll', '{}', T0);
      const failed = testDb.database.transaction(async (trx) => {
        await append(
          createRoomStore(appTables<DiceryTables, Schema>(trx)),
          code,
          'roll',
          '{"lost":true}',
          T0,
        );
        throw new Error('the room change failed after its event was appended');
      });
      await expect(failed).rejects.toThrow('the room change failed');
      expect((await append(store, code, 'roll', '{}', T0)).id).toBe(2);
      expect((await store.listEventsAfter(code, 0, 10)).map((event) => event.data)).toEqual(['{}', '{}']);
    });
  });
});

describe.each(engines)('migration 006-room-event-sequence on $name', ({ name: engine }) => {
  it("numbers existing events 1..n per room in their old id order and sets each room's counter", async () => {
    const { url, drop } = await createTestDatabaseUrl(engine);
    const database = openDatabase(url);
    try {
      await migrateToLatest(database);
      const migrator = new Migrator({
        db: database.db,
        provider: { getMigrations: async () => diceryMigrations },
        migrationTableName: 'gatehouse_app_migration_dicery',
      });
      expect((await migrator.migrateTo('005-rooms')).error).toBeUndefined();
      const raw = database.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
      await raw
        .insertInto('users')
        .values({
          id: 'host',
          email: 'h@example.test',
          email_key: 'h@example.test',
          full_name: null,
          password_hash: 'x',
          role: 'user',
          is_active: 1,
          created_at: T0,
          updated_at: T0,
        })
        .execute();
      for (const room of ['AAAA2222', 'BBBB3333', 'CCCC4444']) {
        await raw
          .insertInto('rooms')
          .values({
            code: room,
            name: room,
            host_user_id: 'host',
            state: 'open',
            created_at: T0,
            closed_at: null,
          })
          .execute();
      }
      // Interleaved, as two busy rooms would have written them under global ids.
      for (const [i, room] of ['AAAA2222', 'BBBB3333', 'AAAA2222', 'AAAA2222', 'BBBB3333'].entries()) {
        await raw
          .insertInto('room_events')
          .values({ room_code: room, type: 'roll', data: `{"n":${i}}`, created_at: T0 + i })
          .execute();
      }
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      const store = createRoomStore(appTables<DiceryTables, Schema>(database.db));
      const dataOf = async (room: string) =>
        (await store.listEventsAfter(room, 0, 10)).map((event) => [event.id, event.data]);
      expect(await dataOf('AAAA2222')).toEqual([
        [1, '{"n":0}'],
        [2, '{"n":2}'],
        [3, '{"n":3}'],
      ]);
      expect(await dataOf('BBBB3333')).toEqual([
        [1, '{"n":1}'],
        [2, '{"n":4}'],
      ]);
      expect(await store.lastEventId('AAAA2222')).toBe(3);
      expect(await store.lastEventId('BBBB3333')).toBe(2);
      expect(await store.lastEventId('CCCC4444')).toBe(0);
      // New appends continue each room's sequence.
      expect((await store.appendEvent('AAAA2222', 'roll', '{}', T0))?.id).toBe(4);
      expect((await store.appendEvent('CCCC4444', 'roll', '{}', T0))?.id).toBe(1);
    } finally {
      await database.close();
      await drop();
    }
  });
});
