import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DiceryTables } from '../../../../src/apps/dicery/storage/tables.js';
import { gatehouseCore } from '../../../../src/gatehouse-core.js';
import { buildTestServer } from '../../../../src/testing.js';
import { PASSWORD, signIn } from '../../../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../../../support/databases.js';
import { someoneWaitsOnALock } from '../../../support/lock-waits.js';
import { createRoom, joinAsBot } from '../../../support/rooms.js';

/**
 * A room change decides under the room's row lock (`lockOpenRoom`): who may act is read after the
 * lock, so it is what the change commits over. Each test holds, on a second raw connection, a change
 * that has taken the room's row and not committed (the statements that change runs, in its order),
 * sends the racing request, waits until PostgreSQL reports it blocked on a lock (`pg_stat_activity`,
 * never a sleep), then commits. Before the fix the request read "present" / "host" before waiting
 * (at its event append) and went on once the other change committed.
 *
 * PostgreSQL only: SQLite's write transactions (`BEGIN IMMEDIATE`) run one at a time, so nothing
 * interleaves there.
 */
describe.runIf(engines.some((engine) => engine.name === 'postgres'))(
  'room changes decide under the room lock on PostgreSQL',
  { timeout: 30_000 },
  () => {
    let app: FastifyInstance;
    let url: string;
    let drop: () => Promise<void> = async () => {};
    let raw: pg.Client | undefined;

    beforeAll(async () => {
      const database = await createTestDatabaseUrl('postgres');
      url = database.url;
      drop = database.drop;
      app = await buildTestServer({ databaseUrl: url, roomJoinsPerMinute: 10_000 });
    });
    afterEach(async () => {
      // A failed test may leave its transaction open: ending the connection rolls it back.
      await raw?.end();
      raw = undefined;
    });
    afterAll(async () => {
      await app?.close();
      await drop();
    });

    /** A second connection to the server's database, in a transaction of its own. */
    const rawTransaction = async (): Promise<pg.Client> => {
      raw = new pg.Client({ connectionString: url });
      await raw.connect();
      await raw.query('begin');
      return raw;
    };

    const waitsOnALock = (request: Promise<unknown>) =>
      someoneWaitsOnALock(gatehouseCore(app.gatehouse).database, request);

    /** The room's row lock, then its next event, as `lockOpenRoom` and `emit` take them. */
    const lockRoom = (client: pg.Client, code: string) =>
      client.query('select code from rooms where code = $1 for no key update', [code]);
    const appendEvent = async (client: pg.Client, code: string, type: string, data: unknown) => {
      const now = Date.now();
      const { rows } = await client.query<{ last_event_seq: string }>(
        `update rooms set last_event_seq = last_event_seq + 1, last_activity_at = $2
         where code = $1 and state = 'open' returning last_event_seq`,
        [code, now],
      );
      await client.query(
        'insert into room_events (room_code, seq, type, data, created_at) values ($1, $2, $3, $4, $5)',
        [code, Number(rows[0]?.last_event_seq), type, JSON.stringify(data), now],
      );
    };

    const db = () => app.gatehouse.appDatabase<DiceryTables>();

    it("refuses a kicked player's roll that waited for the kick's lock, and stores no roll", async () => {
      const host = await signIn(app);
      const room = await createRoom(app, host);
      const pat = await joinAsBot(app, room.code, 'Pat');
      // The host's kick (`removePlayer`), up to its commit: the room, the player gone, the ban, the event.
      const kick = await rawTransaction();
      await lockRoom(kick, room.code);
      const now = Date.now();
      await kick.query(
        `update room_players set left_at = $2, left_reason = 'kicked', present_key = null,
           claim_hash = null, claim_expires_at = null
         where id = $1 and left_at is null`,
        [pat.id, now],
      );
      await kick.query(
        'insert into room_bans (id, room_code, name, name_key, player_id, created_at) values ($1, $2, $3, $4, $5, $6)',
        [randomUUID(), room.code, 'Pat', 'pat', pat.id, now],
      );
      await appendEvent(kick, room.code, 'player_left', {
        player: { id: pat.id, name: 'Pat' },
        reason: 'kicked',
      });
      const rolled = app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/rolls`,
        headers: pat.headers,
        payload: { notation: '1d20' },
      });
      // The room guard read Pat as present (the kick is not committed); the roll now waits.
      await waitsOnALock(rolled);
      await kick.query('commit');
      const answer = await rolled;
      // Before: 201, a roll committed and broadcast after Pat's `player_left`.
      expect(answer.statusCode, answer.body).toBe(403);
      expect(answer.json().code).toBe('PLAYER_REMOVED');
      const rolls = await db()
        .selectFrom('room_events')
        .select('seq')
        .where('room_code', '=', room.code)
        .where('type', '=', 'roll')
        .execute();
      expect(rolls).toEqual([]);
      expect(
        await db().selectFrom('room_log_entries').select('seq').where('room_code', '=', room.code).execute(),
      ).toEqual([]);
    });

    it('refuses the previous host a close that waited for the hand-over, and the room stays open', async () => {
      const previous = await signIn(app);
      const next = await signIn(app);
      const room = await createRoom(app, previous);
      // The new host's `acceptTransfer`, up to its commit (its account lock first, then the room).
      const handOver = await rawTransaction();
      await handOver.query('select id from users where id = $1 for no key update', [next.user.id]);
      await lockRoom(handOver, room.code);
      await handOver.query(
        'update rooms set host_user_id = $2, transfer_hash = null, transfer_expires_at = null where code = $1',
        [room.code, next.user.id],
      );
      await appendEvent(handOver, room.code, 'host_changed', {});
      const closed = app.inject({ method: 'DELETE', url: `/rooms/${room.code}`, headers: previous.headers });
      await waitsOnALock(closed);
      await handOver.query('commit');
      const answer = await closed;
      // Before: 204, the room closed by an account that no longer hosted it.
      expect(answer.statusCode, answer.body).toBe(404);
      expect(answer.json().code).toBe('ROOM_NOT_FOUND');
      expect(await app.dicery.roomStore.findRoom(room.code)).toMatchObject({
        state: 'open',
        hostUserId: next.user.id,
      });
    });

    it("skips a room handed over while its previous host's account is deleted: it stays open, the new host's", async () => {
      const previous = await signIn(app);
      const next = await signIn(app);
      const room = await createRoom(app, previous);
      // The new host's `acceptTransfer`, up to its commit (its account lock first, then the room).
      const handOver = await rawTransaction();
      await handOver.query('select id from users where id = $1 for no key update', [next.user.id]);
      await lockRoom(handOver, room.code);
      await handOver.query(
        'update rooms set host_user_id = $2, transfer_hash = null, transfer_expires_at = null where code = $1',
        [room.code, next.user.id],
      );
      await appendEvent(handOver, room.code, 'host_changed', {});
      // The deletion's preparing phase lists the previous host's open rooms (this one, as committed).
      const deleted = app.inject({
        method: 'DELETE',
        url: '/users/me',
        headers: previous.headers,
        payload: { current_password: PASSWORD },
      });
      await waitsOnALock(deleted);
      await handOver.query('commit');
      expect((await deleted).statusCode, (await deleted).body).toBe(204);
      // Before: the room closed under the new host's name, who had been told the hand-over worked.
      expect(await app.dicery.roomStore.findRoom(room.code)).toMatchObject({
        state: 'open',
        hostUserId: next.user.id,
      });
      const seen = await app.inject({ method: 'GET', url: `/rooms/${room.code}`, headers: next.headers });
      expect(seen.statusCode, seen.body).toBe(200);
    });
  },
);
