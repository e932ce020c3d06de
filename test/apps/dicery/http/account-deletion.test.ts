import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoggedRoomEvent } from '../../../../src/apps/dicery/core/room-bus.js';
import { buildTestServer } from '../../../../src/testing.js';
import { PASSWORD, type SignedIn, signIn } from '../../../support/accounts.js';
import { createRoom } from '../../../support/rooms.js';

describe('deleting a host’s account (issue 12)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ roomsPerHourPerAccount: 1000, roomsPerHourPerIp: 1000 });
  });
  afterAll(async () => app.close());

  /** The two ways an account goes (red-team 2026-12f K1: both run the apps' hooks). */
  const deletions = {
    'DELETE /users/me': (host: SignedIn) =>
      app.inject({
        method: 'DELETE',
        url: '/users/me',
        headers: host.headers,
        payload: { current_password: PASSWORD },
      }),
    'DELETE /users/{id} (admin)': async (host: SignedIn) =>
      app.inject({
        method: 'DELETE',
        url: `/users/${host.user.id}`,
        headers: (await signIn(app, 'admin')).headers,
      }),
  };

  it.each(Object.keys(deletions) as (keyof typeof deletions)[])(
    '%s closes the rooms the account hosts, in the deletion’s transaction, and tells open streams',
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
