/**
 * Red team, sixth round (docs/security/red-team-2026-12f.md). Each finding's proof is an
 * `it.fails(...)`: it passes while the weakness is there and turns into a plain `it` once fixed.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoggedRoomEvent } from '../../src/apps/dicery/core/room-bus.js';
import { buildTestServer } from '../../src/testing.js';
import { PASSWORD, signIn } from '../support/accounts.js';
import { createRoom } from '../support/rooms.js';

describe('K1: an admin deleting an account skips what self-deletion does', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ roomsPerHourPerAccount: 1000, roomsPerHourPerIp: 1000 });
  });
  afterAll(async () => app.close());

  const deleteAsAdmin = async (id: string) => {
    const admin = await signIn(app, 'super_admin');
    const response = await app.inject({ method: 'DELETE', url: `/users/${id}`, headers: admin.headers });
    expect(response.statusCode, response.body).toBe(204);
    return admin;
  };

  it('control: self-deletion closes the hosted rooms with a room_closed event', async () => {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const seen: LoggedRoomEvent[] = [];
    const unsubscribe = app.dicery.roomBus.subscribe(room.code, (event) => void seen.push(event));
    const response = await app.inject({
      method: 'DELETE',
      url: '/users/me',
      headers: host.headers,
      payload: { current_password: PASSWORD },
    });
    unsubscribe();
    expect(response.statusCode).toBe(204);
    expect(seen.map((event) => event.type)).toEqual(['room_closed']);
  });

  it.fails('K1: DELETE /users/{id} tells the hosted rooms’ open streams that the room closed', async () => {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const seen: LoggedRoomEvent[] = [];
    const unsubscribe = app.dicery.roomBus.subscribe(room.code, (event) => void seen.push(event));
    await deleteAsAdmin(host.user.id);
    unsubscribe();
    // The row went by ON DELETE CASCADE; the hooks of gatehouse.onAccountDeleting never ran.
    expect(seen.map((event) => event.type)).toEqual(['room_closed']);
  });

  it('control: self-deletion erases the account’s IP addresses and user agents from the audit log', async () => {
    const user = await signIn(app);
    const admin = await signIn(app, 'super_admin');
    await app.inject({
      method: 'DELETE',
      url: '/users/me',
      headers: user.headers,
      payload: { current_password: PASSWORD },
    });
    const page = await app.inject({ url: `/audit?actor_id=${user.user.id}`, headers: admin.headers });
    const items = page.json().items as { event: string; ip: string | null; user_agent: string | null }[];
    expect(items.map((item) => item.event)).toContain('login_succeeded');
    expect(items.filter((item) => item.ip !== null || item.user_agent !== null)).toEqual([]);
  });

  it.fails('K1: DELETE /users/{id} erases the account’s IP addresses and user agents from the audit log', async () => {
    const user = await signIn(app);
    const admin = await deleteAsAdmin(user.user.id);
    const page = await app.inject({ url: `/audit?actor_id=${user.user.id}`, headers: admin.headers });
    const items = page.json().items as { event: string; ip: string | null; user_agent: string | null }[];
    expect(items.map((item) => item.event)).toContain('login_succeeded');
    expect(items.filter((item) => item.ip !== null || item.user_agent !== null)).toEqual([]);
  });
});
