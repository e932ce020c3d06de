import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { type QueryExecutorProvider, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoggedRoomEvent } from '../../../../src/apps/dicery/core/room-bus.js';
import { PURGE_CHUNK_ROWS } from '../../../../src/apps/dicery/core/room-host-tools.js';
import { gatehouseCore } from '../../../../src/gatehouse-core.js';
import { buildTestServer } from '../../../../src/testing.js';
import { PASSWORD, type SignedIn, signIn } from '../../../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../../../support/databases.js';
import { createRoom } from '../../../support/rooms.js';

describe('deleting a host’s account (issue 12)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ roomsPerHourPerAccount: 1000, roomsPerHourPerIp: 1000 });
  });
  afterAll(async () => app.close());

  /** The two ways an account goes (red-team 2026-12f K1: both run the apps' hooks). */
  const deletions = {
    'DELETE /users/me': (host: SignedIn) => deleteSelf(app, host),
    'DELETE /users/{id} (admin)': async (host: SignedIn) =>
      app.inject({
        method: 'DELETE',
        url: `/users/${host.user.id}`,
        headers: (await signIn(app, 'admin')).headers,
      }),
  };

  it.each(Object.keys(deletions) as (keyof typeof deletions)[])(
    '%s closes the rooms the account hosts and tells open streams',
    async (route) => {
      const host = await signIn(app);
      const other = await signIn(app);
      const rooms = [await createRoom(app, host), await createRoom(app, host)];
      const kept = await createRoom(app, other);
      const seen: LoggedRoomEvent[] = [];
      const unsubscribes = rooms.map((room) =>
        app.dicery.roomBus.subscribe(room.code, (event) => void seen.push(event)),
      );
      const response = await deletions[route](host);
      expect(response.statusCode).toBe(204);
      for (const unsubscribe of unsubscribes) unsubscribe();
      // Each hosted room got its last event, so its open streams ended.
      expect(seen.map((event) => [event.room, event.type]).sort()).toEqual(
        rooms.map((room) => [room.code, 'room_closed']).sort(),
      );
      for (const room of rooms) {
        expect((await app.inject({ url: `/rooms/${room.code}`, headers: other.headers })).statusCode).toBe(
          404,
        );
      }
      expect((await app.inject({ url: `/rooms/${kept.code}`, headers: other.headers })).statusCode).toBe(200);
    },
  );
});

/**
 * The account row's delete cascades to the rooms it hosts and through them to everything they
 * hold: as one statement, a busy room's rows outran PostgreSQL's statement timeout (503 on every
 * try, so the account could never be deleted) and stopped SQLite's event loop while it ran. The
 * deletion now empties them first, in statements of PURGE_CHUNK_ROWS rows.
 */
describe.each(engines)('deleting the account of a host whose rooms hold many rows ($name)', ({ name }) => {
  let app: FastifyInstance;
  let drop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({ databaseUrl: database.url });
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  it('deletes its rooms’ events in bounded statements before their rows go, open and closed rooms alike', async () => {
    const db = gatehouseCore(app.gatehouse).database.db;
    const host = await signIn(app);
    const open = await createRoom(app, host);
    const closed = await createRoom(app, host);
    await fillRoom(db, open.code, PURGE_CHUNK_ROWS + 500);
    await fillRoom(db, closed.code, 2 * PURGE_CHUNK_ROWS + 1);
    expect(
      (await app.inject({ method: 'DELETE', url: `/rooms/${closed.code}`, headers: host.headers }))
        .statusCode,
    ).toBe(204);
    // What the cascade would trip: a room's row may only go once none of its events is left.
    if (name === 'postgres') {
      await sql`create function gh_test_room_emptied() returns trigger language plpgsql as $$
        begin
          if exists (select 1 from room_events where room_code = old.code) then
            raise exception 'room % deleted with its events', old.code;
          end if;
          return old;
        end $$`.execute(db);
      await sql`create trigger gh_test_room_emptied before delete on rooms
        for each row execute function gh_test_room_emptied()`.execute(db);
    } else {
      await sql`create trigger gh_test_room_emptied before delete on rooms
        when exists (select 1 from room_events where room_code = old.code)
        begin select raise(abort, 'room deleted with its events'); end`.execute(db);
    }
    const deleted = await deleteSelf(app, host);
    expect(deleted.statusCode, deleted.body).toBe(204);
    const left = await sql<{
      n: number | string;
    }>`select count(*) as n from room_events where room_code in (${open.code}, ${closed.code})`.execute(db);
    expect(Number(left.rows[0]?.n)).toBe(0);
    const roomsLeft = await sql<{
      n: number | string;
    }>`select count(*) as n from rooms where host_user_id = ${host.user.id}`.execute(db);
    expect(Number(roomsLeft.rows[0]?.n)).toBe(0);
  });

  it('empties them in committed statements before its transaction: reads meanwhile see them partly emptied', async () => {
    const db = gatehouseCore(app.gatehouse).database.db;
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const total = 3 * PURGE_CHUNK_ROWS + 1;
    await fillRoom(db, room.code, total);
    const seen: number[] = [];
    let finished = false;
    const deletion = deleteSelf(app, host).finally(() => {
      finished = true;
    });
    // Inside one transaction (before), SQLite's only connection was the deletion's until it
    // committed, and PostgreSQL showed other connections all rows or none: never a part.
    while (!finished) {
      seen.push(await eventsOf(db, room.code));
      await nextTurn();
    }
    const response = await deletion;
    expect(response.statusCode, response.body).toBe(204);
    expect(
      seen.some((count) => count > 0 && count < total),
      String(seen),
    ).toBe(true);
    expect(await eventsOf(db, room.code)).toBe(0);
  });

  it('deletes the rows of its emptied rooms in bounded statements too, not in the account row’s cascade', async () => {
    const db = gatehouseCore(app.gatehouse).database.db;
    const host = await signIn(app);
    const count = PURGE_CHUNK_ROWS + 5;
    for (let from = 0; from < count; from += 500) {
      const batch = Array.from({ length: Math.min(500, count - from) }, (_, i) => `E${from + i}`);
      await sql`insert into rooms (code, name, host_user_id, state, created_at, closed_at, purged_at) values ${sql.join(
        batch.map(
          (code) => sql`(${`${host.user.id.slice(0, 8)}${code}`}, 'old', ${host.user.id}, 'closed', 1, 2, 3)`,
        ),
      )}`.execute(db);
    }
    // A room row deleted once its account row is gone came from that row's cascade: 200 000 of
    // them in that one statement outran PostgreSQL's statement timeout (a reviewer's measurement).
    if (name === 'postgres') {
      await sql`create function gh_test_no_room_cascade() returns trigger language plpgsql as $$
        begin
          if not exists (select 1 from users where id = old.host_user_id) then
            raise exception 'room % deleted by its host''s cascade', old.code;
          end if;
          return old;
        end $$`.execute(db);
      await sql`create trigger gh_test_no_room_cascade before delete on rooms
        for each row execute function gh_test_no_room_cascade()`.execute(db);
    } else {
      await sql`create trigger gh_test_no_room_cascade before delete on rooms
        when not exists (select 1 from users where id = old.host_user_id)
        begin select raise(abort, 'room deleted by its host''s cascade'); end`.execute(db);
    }
    try {
      const deleted = await deleteSelf(app, host);
      expect(deleted.statusCode, deleted.body).toBe(204);
      const left = await sql<{
        n: number | string;
      }>`select count(*) as n from rooms where host_user_id = ${host.user.id}`.execute(db);
      expect(Number(left.rows[0]?.n)).toBe(0);
    } finally {
      await sql`drop trigger gh_test_no_room_cascade ${sql.raw(name === 'postgres' ? 'on rooms' : '')}`.execute(
        db,
      );
    }
  });

  it('empties nothing when the deletion is refused', async () => {
    const db = gatehouseCore(app.gatehouse).database.db;
    // An administrator may not delete another administrator (only a super admin may).
    const host = await signIn(app, 'admin');
    const room = await createRoom(app, host);
    await fillRoom(db, room.code, PURGE_CHUNK_ROWS + 1);
    const refused = await app.inject({
      method: 'DELETE',
      url: `/users/${host.user.id}`,
      headers: (await signIn(app, 'admin')).headers,
    });
    expect(refused.statusCode, refused.body).toBe(403);
    expect(await eventsOf(db, room.code)).toBe(PURGE_CHUNK_ROWS + 1);
    const state = await sql<{ state: string }>`select state from rooms where code = ${room.code}`.execute(db);
    expect(state.rows).toEqual([{ state: 'open' }]);
  });
});

/** Gives room `code` `count` events numbered from 1000, as appends would have left them. */
async function fillRoom(db: QueryExecutorProvider, code: string, count: number): Promise<void> {
  for (let from = 0; from < count; from += 500) {
    const batch = Array.from({ length: Math.min(500, count - from) }, (_, i) => from + i);
    await sql`insert into room_events (room_code, seq, type, data, created_at) values ${sql.join(
      batch.map((at) => sql`(${code}, ${1000 + at}, 'roll', '{}', ${at})`),
    )}`.execute(db);
  }
  // As appends keep it: the room's counter is its newest event's number.
  await sql`update rooms set last_event_seq = ${1000 + count - 1} where code = ${code}`.execute(db);
}

async function eventsOf(db: QueryExecutorProvider, code: string): Promise<number> {
  const rows = await sql<{
    n: number | string;
  }>`select count(*) as n from room_events where room_code = ${code}`.execute(db);
  return Number(rows.rows[0]?.n);
}

/** `DELETE /users/me` for `host`, with its password. */
function deleteSelf(app: FastifyInstance, host: SignedIn) {
  return app.inject({
    method: 'DELETE',
    url: '/users/me',
    headers: host.headers,
    payload: { current_password: PASSWORD },
  });
}
