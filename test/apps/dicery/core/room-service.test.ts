import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createMemoryRoomBus,
  type LoggedRoomEvent,
  type RoomBus,
  type RoomEvent,
} from '../../../../src/apps/dicery/core/room-bus.js';
import {
  createRoomService,
  type RoomService,
  type RoomServiceOptions,
} from '../../../../src/apps/dicery/core/room-service.js';
import { diceryMigrations } from '../../../../src/apps/dicery/index.js';
import {
  createRoomStore,
  type RoomRecord,
  type RoomStore,
} from '../../../../src/apps/dicery/storage/room-store.js';
import type { DiceryTables } from '../../../../src/apps/dicery/storage/tables.js';
import { GatehouseError } from '../../../../src/errors.js';
import { appTables } from '../../../../src/storage/app-tables.js';
import { lockUserRow } from '../../../../src/storage/lock-user-row.js';
import type { Schema } from '../../../../src/storage/schema.js';
import { createTestDatabase, type TestDatabase } from '../../../support/databases.js';

/** Dicery's view of a core handle, as `gatehouse.appDatabase` gives it. */
const diceryView = (db: Kysely<Schema>) => appTables<DiceryTables, Schema>(db);
/** The account lock of a unit of work, as `tx.lockAccount` gives it (these suites run on SQLite). */
const unitOf = (trx: Kysely<Schema>) => ({
  lockAccount: (userId: string) => lockUserRow(trx, userId, async () => {}),
});

const T0 = Date.UTC(2024, 0, 1);

/** Asserts that `promise` rejects with a GatehouseError of `code`; returns it for more checks. */
async function expectError(promise: Promise<unknown>, code: string): Promise<GatehouseError<string>> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatehouseError);
  expect((error as GatehouseError<string>).code).toBe(code);
  return error as GatehouseError<string>;
}

describe('RoomService', () => {
  let testDb: TestDatabase;
  let store: RoomStore;
  let bus: RoomBus;
  let now: number;
  let dice: number[];
  let published: LoggedRoomEvent[];
  let service: RoomService;
  let host: string;
  let room: RoomRecord;

  async function insertUser(): Promise<string> {
    const id = randomUUID();
    await testDb.database.db
      .insertInto('users')
      .values({
        id,
        email: `${id}@example.test`,
        email_key: `${id}@example.test`,
        full_name: null,
        password_hash: 'x',
        role: 'user',
        is_active: 1,
        created_at: T0,
        updated_at: T0,
      })
      .execute();
    return id;
  }

  function makeService(overrides: Partial<RoomServiceOptions> = {}): RoomService {
    return createRoomService({
      rooms: store,
      transaction: (work) =>
        testDb.database.transaction((trx) => work(createRoomStore(diceryView(trx)), unitOf(trx))),
      bus,
      clock: () => now,
      // Replays queued dice values; crypto.randomInt semantics: [min, maxExclusive).
      randomInt: (min, maxExclusive) => {
        const value = dice.shift();
        if (value === undefined || value < min || value >= maxExclusive) throw new Error('no dice queued');
        return value;
      },
      ...overrides,
    });
  }

  beforeEach(async () => {
    testDb = await createTestDatabase('sqlite', { dicery: diceryMigrations });
    store = createRoomStore(diceryView(testDb.database.db));
    bus = createMemoryRoomBus();
    now = T0;
    dice = [];
    published = [];
    service = makeService();
    host = await insertUser();
    room = await service.createRoom(host, '  Friday   Night ');
    bus.subscribe(room.code, (event) => published.push(event));
  });

  afterEach(async () => {
    await bus.close();
    await testDb.dispose();
  });

  describe('createRoom', () => {
    it('creates an open room with a fresh code and a normalized name', async () => {
      expect(room).toEqual({
        code: expect.stringMatching(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/),
        name: 'Friday Night',
        hostUserId: host,
        state: 'open',
        createdAt: T0,
        closedAt: null,
        lastEventSeq: 0,
        locked: false,
        lastActivityAt: T0,
      });
    });

    it('draws another code when one is taken', async () => {
      const codes = [room.code, room.code, 'ZZZZ9999'];
      const retrying = makeService({ generateCode: () => codes.shift() ?? 'never' });
      expect((await retrying.createRoom(host, 'Second')).code).toBe('ZZZZ9999');
    });

    it('gives up on a generator that only yields taken codes', async () => {
      const stuck = makeService({ generateCode: () => room.code });
      await expect(stuck.createRoom(host, 'Second')).rejects.toThrow(/No free room code/);
    });

    it.each([
      ['', 'must not be empty'],
      ['x'.repeat(81), 'at most 80'],
      ['Night\u202E', 'not allowed'],
    ])('rejects the name %j', async (name, message) => {
      const error = await expectError(service.createRoom(host, name), 'VALIDATION_FAILED');
      expect(error.errors).toEqual([{ field: 'name', message: expect.stringContaining(message) }]);
    });
  });

  describe('getRoom', () => {
    it('finds an open room by code in any case', async () => {
      expect(await service.getRoom(` ${room.code.toLowerCase()} `)).toEqual(room);
    });

    it('answers the same for unknown, malformed and closed rooms', async () => {
      const other = await service.createRoom(host, 'Closed');
      await service.close(other.code, host);
      const errors = await Promise.all(
        ['ZZZZ9999', 'nope', other.code].map((code) => expectError(service.getRoom(code), 'ROOM_NOT_FOUND')),
      );
      expect(new Set(errors.map((e) => e.message)).size).toBe(1);
    });
  });

  describe('join', () => {
    it('adds a present player and announces them with the stored event id', async () => {
      now = T0 + 1000;
      const player = await service.join(room.code.toLowerCase(), '  Ａnn ');
      expect(player).toEqual({
        id: expect.any(String),
        roomCode: room.code,
        name: 'Ａnn',
        nameKey: 'ann',
        joinedAt: T0 + 1000,
        leftAt: null,
        leftReason: null,
        seatExpiresAt: null,
        seatGeneration: 0,
        firstActiveAt: null,
        network: null,
      });
      const [stored] = await service.eventsAfter(room.code, 0);
      expect(published).toEqual([
        {
          id: stored?.id,
          room: room.code,
          type: 'player_joined',
          data: { player: { id: player.id, name: 'Ａnn' } },
          at: new Date(T0 + 1000).toISOString(),
        },
      ]);
      expect(stored).toEqual(published[0]);
      expect(await service.isPresent(room.code, player.id)).toBe(true);
    });

    it('refuses a name a present player has, ignoring case, until they leave', async () => {
      const ann = await service.join(room.code, 'Ann');
      await expectError(service.join(room.code, 'ANN'), 'PLAYER_NAME_TAKEN');
      await service.leave(room.code, ann.id);
      expect((await service.join(room.code, 'aNN')).name).toBe('aNN');
    });

    it('lets exactly one of 20 concurrent joins with one name win', async () => {
      const names = Array.from({ length: 20 }, (_, i) => (i % 2 ? 'Zed' : 'ZED'));
      const results = await Promise.allSettled(names.map((name) => service.join(room.code, name)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(rejected.map((r) => (r.reason as GatehouseError).code)).toEqual(
        Array(19).fill('PLAYER_NAME_TAKEN'),
      );
      expect(published.filter((e) => e.type === 'player_joined')).toHaveLength(1);
    });

    it('rejects invalid names with the field `player`', async () => {
      for (const name of ['', ' ', 'a'.repeat(33), 'Al\u200Bice', 'Al\nice']) {
        const error = await expectError(service.join(room.code, name), 'VALIDATION_FAILED');
        expect(error.errors?.[0]?.field).toBe('player');
      }
      expect(published).toEqual([]);
    });

    it('refuses unknown and closed rooms', async () => {
      await expectError(service.join('ZZZZ9999', 'Ann'), 'ROOM_NOT_FOUND');
      await service.close(room.code, host);
      await expectError(service.join(room.code, 'Ann'), 'ROOM_NOT_FOUND');
    });
  });

  describe('leave and kick', () => {
    it('lets a player leave once and announces it', async () => {
      const ann = await service.join(room.code, 'Ann');
      now = T0 + 5000;
      await service.leave(room.code, ann.id);
      expect(published.at(-1)).toMatchObject({
        type: 'player_left',
        data: { player: { id: ann.id, name: 'Ann' }, reason: 'left' },
        at: new Date(T0 + 5000).toISOString(),
      });
      expect(await service.isPresent(room.code, ann.id)).toBe(false);
      await expectError(service.leave(room.code, ann.id), 'PLAYER_NOT_FOUND');
    });

    it('does not let a player of one room leave through another room', async () => {
      const other = await service.createRoom(host, 'Other');
      const ann = await service.join(room.code, 'Ann');
      await expectError(service.leave(other.code, ann.id), 'PLAYER_NOT_FOUND');
      await expectError(service.kick(other.code, host, ann.id), 'PLAYER_NOT_FOUND');
      expect(await service.isPresent(room.code, ann.id)).toBe(true);
    });

    it('lets only the host kick, and announces the kick with the player id', async () => {
      const ann = await service.join(room.code, 'Ann');
      const stranger = await insertUser();
      await expectError(service.kick(room.code, stranger, ann.id), 'ROOM_NOT_FOUND');
      expect(await service.isPresent(room.code, ann.id)).toBe(true);

      await service.kick(room.code, host, ann.id);
      expect(published.at(-1)).toMatchObject({
        type: 'player_left',
        data: { player: { id: ann.id }, reason: 'kicked' },
      });
      expect(await service.isPresent(room.code, ann.id)).toBe(false);
      await expectError(service.kick(room.code, host, ann.id), 'PLAYER_NOT_FOUND');
      await expectError(service.kick(room.code, host, randomUUID()), 'PLAYER_NOT_FOUND');
    });
  });

  describe('close', () => {
    it('lets only the host close, once, and ends presence', async () => {
      const ann = await service.join(room.code, 'Ann');
      await expectError(service.close(room.code, await insertUser()), 'ROOM_NOT_FOUND');
      now = T0 + 9000;
      await service.close(room.code, host);
      expect(published.at(-1)).toMatchObject({ type: 'room_closed', data: {}, room: room.code });
      expect(await store.findRoom(room.code)).toMatchObject({ state: 'closed', closedAt: T0 + 9000 });
      expect(await service.isPresent(room.code, ann.id)).toBe(false);
      await expectError(service.close(room.code, host), 'ROOM_NOT_FOUND');
      await expectError(service.snapshot(room.code), 'ROOM_NOT_FOUND');
      await expectError(service.eventsAfter(room.code, 0), 'ROOM_NOT_FOUND');
      await expectError(service.roll(room.code, ann.id, '1d20'), 'ROOM_NOT_FOUND');
    });
  });

  describe('roll', () => {
    it('rolls on the server, stores and publishes the details', async () => {
      const ann = await service.join(room.code, 'Ann');
      dice = [3, 17, 5];
      now = T0 + 60_000;
      const event = await service.roll(room.code, ann.id, ' 2d20kh1 + 1d6 - 2 ', '  Stealth   check ');
      expect(event).toEqual({
        id: expect.any(Number),
        room: room.code,
        type: 'roll',
        at: new Date(T0 + 60_000).toISOString(),
        data: {
          player: { id: ann.id, name: 'Ann' },
          notation: '2d20kh1 + 1d6 - 2',
          label: 'Stealth check',
          terms: [
            {
              kind: 'dice',
              sign: 1,
              count: 2,
              sides: 20,
              keep: { mode: 'kh', n: 1 },
              dice: [
                { value: 3, kept: false },
                { value: 17, kept: true },
              ],
              subtotal: 17,
            },
            {
              kind: 'dice',
              sign: 1,
              count: 1,
              sides: 6,
              keep: null,
              dice: [{ value: 5, kept: true }],
              subtotal: 5,
            },
            { kind: 'constant', sign: -1, value: 2 },
          ],
          modifier: -2,
          total: 20,
          rolled_at: new Date(T0 + 60_000).toISOString(),
          visibility: 'room',
          hidden: false,
          hash: null, // no signed log in this service (tested in room-log-routes)
        },
      });
      expect(published.at(-1)).toEqual(event);
      expect((await service.eventsAfter(room.code, event.id - 1)).at(0)).toEqual(event);
    });

    it('treats a blank or missing label as none', async () => {
      const ann = await service.join(room.code, 'Ann');
      dice = [4, 4];
      expect((await service.roll(room.code, ann.id, '1d6', '   ')).data.label).toBeNull();
      expect((await service.roll(room.code, ann.id, '1d6')).data.label).toBeNull();
    });

    it('reports the position of a notation error', async () => {
      const ann = await service.join(room.code, 'Ann');
      const error = await expectError(service.roll(room.code, ann.id, '  2d20x'), 'INVALID_DICE_NOTATION');
      expect(error.extra).toEqual({ position: 6 });
      await expectError(service.roll(room.code, ann.id, '1000d6'), 'INVALID_DICE_NOTATION');
      expect(published.filter((e) => e.type === 'roll')).toEqual([]);
    });

    it('rejects bad labels', async () => {
      const ann = await service.join(room.code, 'Ann');
      for (const label of ['x'.repeat(65), 'a\u0000b']) {
        const error = await expectError(service.roll(room.code, ann.id, '1d6', label), 'VALIDATION_FAILED');
        expect(error.errors?.[0]?.field).toBe('label');
      }
    });

    it('lets only present players of the room roll', async () => {
      const ann = await service.join(room.code, 'Ann');
      const other = await service.createRoom(host, 'Other');
      await expectError(service.roll(other.code, ann.id, '1d6'), 'FORBIDDEN');
      await expectError(service.roll(room.code, randomUUID(), '1d6'), 'FORBIDDEN');
      const bob = await service.join(room.code, 'Bob');
      await service.leave(room.code, bob.id);
      await expectError(service.roll(room.code, bob.id, '1d6'), 'FORBIDDEN');
      // A kicked player hears what the room guard tells them on every other request.
      await service.kick(room.code, host, ann.id);
      await expectError(service.roll(room.code, ann.id, '1d6'), 'PLAYER_REMOVED');
    });
  });

  describe('isPresent', () => {
    it('is false for malformed codes and unknown players', async () => {
      const ann = await service.join(room.code, 'Ann');
      expect(await service.isPresent('bad', ann.id)).toBe(false);
      expect(await service.isPresent(room.code, randomUUID())).toBe(false);
      expect(await service.isPresent(room.code.toLowerCase(), ann.id)).toBe(true);
    });
  });

  describe('snapshot and eventsAfter', () => {
    it('returns present players, recent rolls and the id to stream from', async () => {
      const ann = await service.join(room.code, 'Ann');
      const bob = await service.join(room.code, 'Bob');
      await service.leave(room.code, bob.id);
      dice = [1, 2, 3];
      const rolls = [];
      for (let i = 0; i < 3; i++) rolls.push(await service.roll(room.code, ann.id, '1d6'));
      const limited = makeService({ recentRollLimit: 2 });
      const snapshot = await limited.snapshot(room.code);
      expect(snapshot.room).toEqual({ ...room, lastEventSeq: 6 });
      expect(snapshot.players.map((p) => p.name)).toEqual(['Ann']);
      expect(snapshot.recentRolls).toEqual(rolls.slice(1));
      // Per-room sequence: 2 joins, 1 leave, 3 rolls.
      expect(rolls.map((roll) => roll.id)).toEqual([4, 5, 6]);
      expect(snapshot.lastEventId).toBe(6);
      expect(await service.eventsAfter(room.code, snapshot.lastEventId)).toEqual([]);
    });

    it('stores exactly what it publishes, for every kind of change', async () => {
      const ann = await service.join(room.code, 'Ann');
      const bob = await service.join(room.code, 'Bob');
      dice = [6];
      await service.roll(room.code, ann.id, '1d6');
      await service.kick(room.code, host, bob.id);
      await service.leave(room.code, ann.id);
      const replayed = await service.eventsAfter(room.code, 0);
      await service.close(room.code, host);
      expect(published.map((e) => e.type)).toEqual([
        'player_joined',
        'player_joined',
        'roll',
        'player_left',
        'player_left',
        'room_closed',
      ]);
      expect(replayed).toEqual(published.slice(0, -1));
      const ids = published.map((e) => e.id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
    });

    it('pages events after an id', async () => {
      const ann = await service.join(room.code, 'Ann');
      dice = [1, 2, 3, 4];
      for (let i = 0; i < 4; i++) await service.roll(room.code, ann.id, '1d6');
      const all = await service.eventsAfter(room.code, 0);
      expect(all).toEqual(published);
      const firstTwo = await service.eventsAfter(room.code, 0, 2);
      expect(firstTwo).toEqual(all.slice(0, 2));
      expect(await service.eventsAfter(room.code, firstTwo[1]?.id ?? -1)).toEqual(all.slice(2));
      expect(await service.eventsAfter(room.code, 0, 0)).toEqual(all.slice(0, 1));
    });

    it('rejects an invalid last event id', async () => {
      for (const id of [-1, 1.5, Number.NaN]) {
        const error = await expectError(service.eventsAfter(room.code, id), 'VALIDATION_FAILED');
        expect(error.errors?.[0]?.field).toBe('lastEventId');
      }
    });
  });

  describe('publishing', () => {
    it('keeps a stored state change when publishing fails, and reports it', async () => {
      const failures: RoomEvent[] = [];
      const failing = makeService({
        bus: { ...bus, publish: () => Promise.reject(new Error('redis down')) },
        onPublishError: (_error, event) => failures.push(event),
      });
      const ann = await failing.join(room.code, 'Ann');
      expect(failures.map((e) => e.type)).toEqual(['player_joined']);
      expect(await failing.isPresent(room.code, ann.id)).toBe(true);
      expect(await failing.eventsAfter(room.code, 0)).toEqual(failures);
    });

    it('publishes only after the change has committed', async () => {
      let inTransaction = false;
      const publishedInside: boolean[] = [];
      const watched = makeService({
        transaction: (work) =>
          testDb.database.transaction(async (trx) => {
            inTransaction = true;
            try {
              return await work(createRoomStore(diceryView(trx)), unitOf(trx));
            } finally {
              inTransaction = false;
            }
          }),
        bus: {
          ...bus,
          publish: async (event) => {
            publishedInside.push(inTransaction);
            await bus.publish(event);
          },
        },
      });
      const ann = await watched.join(room.code, 'Ann');
      dice = [4];
      await watched.roll(room.code, ann.id, '1d6');
      await watched.leave(room.code, ann.id);
      await watched.close(room.code, host);
      expect(publishedInside).toEqual([false, false, false, false]);
      expect(published.map((event) => event.id)).toEqual([1, 2, 3, 4]);
    });
  });

  describe('unit of work: a change and its event commit together', () => {
    /** A service whose event appends fail, as a full disk or a lost connection would make them. */
    function failingAppends(): RoomService {
      return makeService({
        transaction: (work) =>
          testDb.database.transaction((trx) =>
            work(
              {
                ...createRoomStore(diceryView(trx)),
                appendEvent: () => Promise.reject(new Error('append failed')),
              },
              unitOf(trx),
            ),
          ),
      });
    }

    it('leaves no player behind when the join event cannot be stored', async () => {
      await expect(failingAppends().join(room.code, 'Ann')).rejects.toThrow('append failed');
      expect(await store.listPresentPlayers(room.code)).toEqual([]);
      // The name is still free: the insert rolled back with the event.
      expect((await service.join(room.code, 'Ann')).name).toBe('Ann');
      expect(published.map((event) => event.type)).toEqual(['player_joined']);
    });

    it('keeps the player present when the leave or kick event cannot be stored', async () => {
      const ann = await service.join(room.code, 'Ann');
      await expect(failingAppends().leave(room.code, ann.id)).rejects.toThrow('append failed');
      await expect(failingAppends().kick(room.code, host, ann.id)).rejects.toThrow('append failed');
      expect(await service.isPresent(room.code, ann.id)).toBe(true);
      expect(published.map((event) => event.type)).toEqual(['player_joined']);
    });

    it('keeps the room open when the close event cannot be stored', async () => {
      await expect(failingAppends().close(room.code, host)).rejects.toThrow('append failed');
      expect((await store.findRoom(room.code))?.state).toBe('open');
      expect(await store.lastEventId(room.code)).toBe(0);
      expect(published).toEqual([]);
    });

    it('stores and publishes nothing for a roll whose event cannot be stored', async () => {
      const ann = await service.join(room.code, 'Ann');
      dice = [3];
      await expect(failingAppends().roll(room.code, ann.id, '1d6')).rejects.toThrow('append failed');
      expect(await store.lastEventId(room.code)).toBe(1);
      expect(published.map((event) => event.type)).toEqual(['player_joined']);
    });

    it('numbers the events of concurrent changes 1..n with no gap', async () => {
      const players = await Promise.all(
        ['Ann', 'Bob', 'Cy', 'Di'].map((name) => service.join(room.code, name)),
      );
      dice = Array.from({ length: 20 }, () => 2);
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => service.roll(room.code, players[i % 4]?.id ?? '', '1d6')),
      );
      const ids = (await service.eventsAfter(room.code, 0)).map((event) => event.id);
      expect(ids).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
      expect(published.map((event) => event.id).sort((a, b) => a - b)).toEqual(ids);
    });
  });

  describe('catchUp', () => {
    it("still reads a closed room's log (streams must get its room_closed), not an unknown room's", async () => {
      await service.join(room.code, 'Ann');
      await service.close(room.code, host);
      await expectError(service.eventsAfter(room.code, 0), 'ROOM_NOT_FOUND');
      expect((await service.catchUp(room.code, 1)).map((event) => [event.id, event.type])).toEqual([
        [2, 'room_closed'],
      ]);
      await expectError(service.catchUp('NOPE2345', 0), 'ROOM_NOT_FOUND');
      await expectError(service.catchUp(room.code, -1), 'VALIDATION_FAILED');
    });
  });
});
