import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer, createTestClock } from '../../../../src/testing.js';
import { type SignedIn, signIn } from '../../../support/accounts.js';
import { Browser } from '../../../support/room-browser.js';
import { createRoom, joinAsBot } from '../../../support/rooms.js';

const IDLE_TTL = 3600;
const CLOSED_RETENTION = 7200;

/**
 * Host tools (issue 14, item 3): the host's room list, kick = ban (by name and by seat) with
 * lifting, locking, renaming, handing the room over, and idle rooms closing on their own.
 */
describe('Dicery host tools', () => {
  const clock = createTestClock();
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildTestServer(
      {
        roomJoinsPerMinute: 10_000,
        roomRollsPerMinutePerIp: 10_000,
        roomsPerHourPerAccount: 10_000,
        roomsPerHourPerIp: 10_000,
        maxOpenRoomsPerHost: 10_000,
        roomIdleTtl: IDLE_TTL,
        roomClosedRetention: CLOSED_RETENTION,
      },
      { clock, scheduler: clock },
    );
  });
  afterAll(async () => app.close());

  async function table() {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    return { host, code: room.code };
  }

  const as = (who: SignedIn | { headers: Record<string, string> }) => who.headers;

  async function eventTypes(code: string) {
    return (await app.dicery.rooms.eventsAfter(code, 0)).map((event) => event.type);
  }

  describe('GET /rooms', () => {
    it("lists the caller's rooms only, newest first, open and closed, as a page", async () => {
      const host = await signIn(app);
      const other = await signIn(app);
      const first = await createRoom(app, host, 'First');
      clock.advance(1000);
      const second = await createRoom(app, host, 'Second');
      clock.advance(1000);
      const third = await createRoom(app, host, 'Third');
      await createRoom(app, other, 'Not yours');
      await app.inject({ method: 'DELETE', url: `/rooms/${first.code}`, headers: as(host) });

      const all = await app.inject({ method: 'GET', url: '/rooms', headers: as(host) });
      expect(all.statusCode).toBe(200);
      const body = all.json();
      expect(body).toMatchObject({ total: 3, limit: 20, offset: 0 });
      expect(body.items.map((room: { code: string }) => room.code)).toEqual([
        third.code,
        second.code,
        first.code,
      ]);
      expect(body.items[2]).toMatchObject({ name: 'First', state: 'closed', locked: false });
      expect(body.items[2].closed_at).toEqual(expect.any(String));

      const page = await app.inject({ method: 'GET', url: '/rooms?limit=1&offset=1', headers: as(host) });
      expect(page.json()).toMatchObject({ total: 3, limit: 1, offset: 1, items: [{ code: second.code }] });

      expect((await app.inject({ method: 'GET', url: '/rooms' })).statusCode).toBe(401);
      const bad = await app.inject({ method: 'GET', url: '/rooms?limit=1000', headers: as(host) });
      expect(bad.statusCode).toBe(400);
    });
  });

  describe('kick = ban', () => {
    it('refuses the name (any case) and the browser, lists the ban, and lifts it', async () => {
      const { host, code } = await table();
      const pat = new Browser(app);
      const joined = await pat.join(code, 'Pat');
      const patId = joined.json().player.id as string;
      const bot = await joinAsBot(app, code, 'Robo');
      for (const id of [patId, bot.id]) {
        const kick = await app.inject({
          method: 'DELETE',
          url: `/rooms/${code}/players/${id}`,
          headers: as(host),
        });
        expect(kick.statusCode).toBe(204);
      }

      // The name, from another browser or a script, in any case.
      const stranger = new Browser(app);
      for (const response of [
        await stranger.join(code, 'PAT'),
        await app.inject({
          method: 'POST',
          url: `/rooms/${code}/join`,
          payload: { player: 'robo', transport: 'bearer' },
        }),
        // Red-team F8: a look-alike of the banned name (Cyrillic о, spaced out) is the same name.
        ...(await Promise.all(
          ['R\u043Eb\u043E', 'R o b o'].map((player) =>
            app.inject({
              method: 'POST',
              url: `/rooms/${code}/join`,
              payload: { player, transport: 'bearer' },
            }),
          ),
        )),
      ]) {
        expect(response.statusCode).toBe(403);
        expect(response.json().code).toBe('PLAYER_BANNED');
      }
      // The kicked browser, whatever name it types.
      const again = await pat.join(code, 'Patricia');
      expect(again.statusCode).toBe(403);
      expect(again.json().code).toBe('PLAYER_REMOVED');

      const bans = await app.inject({ method: 'GET', url: `/rooms/${code}/bans`, headers: as(host) });
      expect(bans.statusCode).toBe(200);
      expect(bans.json()).toMatchObject({ total: 2, limit: 20, offset: 0 });
      const items = bans.json().items as { id: string; name: string; seat: boolean }[];
      expect(items.map((ban) => [ban.name, ban.seat]).sort()).toEqual([
        ['Pat', true],
        ['Robo', true],
      ]);

      // Only the host sees or lifts bans; to anyone else the room does not exist.
      const intruder = await signIn(app);
      const patBan = items.find((ban) => ban.name === 'Pat')?.id ?? '';
      for (const response of [
        await app.inject({ method: 'GET', url: `/rooms/${code}/bans`, headers: as(intruder) }),
        await app.inject({ method: 'DELETE', url: `/rooms/${code}/bans/${patBan}`, headers: as(intruder) }),
      ]) {
        expect(response.statusCode).toBe(404);
        expect(response.json().code).toBe('ROOM_NOT_FOUND');
      }

      const lift = await app.inject({
        method: 'DELETE',
        url: `/rooms/${code}/bans/${patBan}`,
        headers: as(host),
      });
      expect(lift.statusCode).toBe(204);
      const twice = await app.inject({
        method: 'DELETE',
        url: `/rooms/${code}/bans/${patBan}`,
        headers: as(host),
      });
      expect(twice.statusCode).toBe(404);
      expect(twice.json().code).toBe('BAN_NOT_FOUND');

      // Lifted: the same browser joins again, as a new player; Robo stays banned.
      const back = await pat.join(code, 'Pat');
      expect(back.statusCode).toBe(201);
      expect(back.json().player.id).not.toBe(patId);
      const robo = await new Browser(app).join(code, 'Robo');
      expect(robo.json().code).toBe('PLAYER_BANNED');
    });

    it('a player who left is not banned', async () => {
      const { code } = await table();
      const bot = await joinAsBot(app, code, 'Leaver');
      const left = await app.inject({
        method: 'DELETE',
        url: `/rooms/${code}/players/me`,
        headers: bot.headers,
      });
      expect(left.statusCode).toBe(204);
      expect((await joinAsBot(app, code, 'Leaver')).name).toBe('Leaver');
    });
  });

  describe('lock and rename', () => {
    it('a locked room refuses new players but keeps its table playing; unlocking lets them in', async () => {
      const { host, code } = await table();
      const pat = new Browser(app);
      await pat.join(code, 'Pat');
      const bot = await joinAsBot(app, code, 'Robo');

      const lock = await app.inject({
        method: 'PATCH',
        url: `/rooms/${code}`,
        headers: as(host),
        payload: { locked: true },
      });
      expect(lock.statusCode).toBe(200);
      expect(lock.json()).toMatchObject({ code, locked: true });

      const refused = await new Browser(app).join(code, 'Newcomer');
      expect(refused.statusCode).toBe(403);
      expect(refused.json().code).toBe('ROOM_LOCKED');
      // The seat still resumes, and present players still roll.
      expect((await pat.request('POST', `/rooms/${code}/seat`)).statusCode).toBe(200);
      expect((await pat.join(code, 'Pat')).statusCode).toBe(200);
      const roll = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/rolls`,
        headers: bot.headers,
        payload: { notation: '1d6' },
      });
      expect(roll.statusCode).toBe(201);

      const snapshot = await app.inject({ method: 'GET', url: `/rooms/${code}`, headers: bot.headers });
      expect(snapshot.json().room.locked).toBe(true);

      await app.inject({
        method: 'PATCH',
        url: `/rooms/${code}`,
        headers: as(host),
        payload: { locked: false },
      });
      expect((await new Browser(app).join(code, 'Newcomer')).statusCode).toBe(201);
      const types = await eventTypes(code);
      expect(types.filter((type) => type === 'room_updated')).toHaveLength(2);
    });

    it('renames with the room-name rules and tells the streams; only the host may', async () => {
      const { host, code } = await table();
      const bot = await joinAsBot(app, code, 'Robo');
      const renamed = await app.inject({
        method: 'PATCH',
        url: `/rooms/${code}`,
        headers: as(host),
        payload: { name: '  Dragon  den ' },
      });
      expect(renamed.statusCode).toBe(200);
      expect(renamed.json().name).toBe('Dragon den');
      const events = await app.dicery.rooms.eventsAfter(code, 0);
      expect(events.at(-1)).toMatchObject({
        type: 'room_updated',
        data: { name: 'Dragon den', locked: false },
      });
      const snapshot = await app.inject({ method: 'GET', url: `/rooms/${code}`, headers: bot.headers });
      expect(snapshot.json().room.name).toBe('Dragon den');

      const blank = await app.inject({
        method: 'PATCH',
        url: `/rooms/${code}`,
        headers: as(host),
        payload: { name: ' ' },
      });
      expect(blank.statusCode).toBe(400);
      expect(blank.json().errors).toEqual([{ field: 'name', message: expect.any(String) }]);
      const other = await signIn(app);
      const foreign = await app.inject({
        method: 'PATCH',
        url: `/rooms/${code}`,
        headers: as(other),
        payload: { name: 'Mine' },
      });
      expect(foreign.statusCode).toBe(404);
      // A player's room token is not a host credential.
      const player = await app.inject({
        method: 'PATCH',
        url: `/rooms/${code}`,
        headers: bot.headers,
        payload: { locked: true },
      });
      expect(player.statusCode).toBe(401);
      // Nothing changed: no event.
      const unchanged = (await app.dicery.rooms.eventsAfter(code, 0)).length;
      await app.inject({
        method: 'PATCH',
        url: `/rooms/${code}`,
        headers: as(host),
        payload: { name: 'Dragon den' },
      });
      expect((await app.dicery.rooms.eventsAfter(code, 0)).length).toBe(unchanged);
    });
  });

  describe('host hand-over', () => {
    it('moves the room to the account that accepts the single-use code', async () => {
      const { host, code } = await table();
      const next = await signIn(app);
      const issued = await app.inject({ method: 'POST', url: `/rooms/${code}/host`, headers: as(host) });
      expect(issued.statusCode).toBe(201);
      const transferCode = issued.json().transfer_code as string;
      expect(transferCode).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
      // Someone who is not the host cannot issue one.
      expect(
        (await app.inject({ method: 'POST', url: `/rooms/${code}/host`, headers: as(next) })).statusCode,
      ).toBe(404);

      const wrong = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/host/accept`,
        headers: as(next),
        payload: { transfer_code: 'AAAA-BBBB-CCCC' },
      });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json().code).toBe('TRANSFER_CODE_INVALID');

      const accepted = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/host/accept`,
        headers: as(next),
        payload: { transfer_code: transferCode.toLowerCase() },
      });
      expect(accepted.statusCode).toBe(200);
      expect(accepted.json().code).toBe(code);
      expect((await eventTypes(code)).at(-1)).toBe('host_changed');

      const reused = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/host/accept`,
        headers: as(await signIn(app)),
        payload: { transfer_code: transferCode },
      });
      expect(reused.json().code).toBe('TRANSFER_CODE_INVALID');

      // The old host lost the room, the new one has it.
      const oldHost = await app.inject({ method: 'GET', url: `/rooms/${code}`, headers: as(host) });
      expect(oldHost.statusCode).toBe(404);
      const newHost = await app.inject({ method: 'GET', url: `/rooms/${code}`, headers: as(next) });
      expect(newHost.json().you.host).toBe(true);
      const list = await app.inject({ method: 'GET', url: '/rooms', headers: as(next) });
      expect(list.json().items.map((room: { code: string }) => room.code)).toEqual([code]);
    });

    it('a code expires after 10 minutes, and a new one replaces the old', async () => {
      const { host, code } = await table();
      const next = await signIn(app);
      const first = (
        await app.inject({ method: 'POST', url: `/rooms/${code}/host`, headers: as(host) })
      ).json();
      const second = (
        await app.inject({ method: 'POST', url: `/rooms/${code}/host`, headers: as(host) })
      ).json();
      const accept = (transferCode: string) =>
        app.inject({
          method: 'POST',
          url: `/rooms/${code}/host/accept`,
          headers: as(next),
          payload: { transfer_code: transferCode },
        });
      expect((await accept(first.transfer_code)).json().code).toBe('TRANSFER_CODE_INVALID');
      clock.advance(601_000);
      expect((await accept(second.transfer_code)).json().code).toBe('TRANSFER_CODE_INVALID');
    });
  });

  describe('idle expiry', () => {
    it('closes rooms with no event for ROOM_IDLE_TTL, and keeps busy ones', async () => {
      const idle = await table();
      const busy = await table();
      const bot = await joinAsBot(app, busy.code, 'Robo');
      clock.advance((IDLE_TTL - 600) * 1000);
      // An event moves the busy room's activity forward.
      const roll = await app.inject({
        method: 'POST',
        url: `/rooms/${busy.code}/rolls`,
        headers: bot.headers,
        payload: { notation: '1d4' },
      });
      expect(roll.statusCode).toBe(201);
      // Past the idle room's TTL plus one sweep interval (a quarter of the TTL at most).
      clock.advance((600 + IDLE_TTL / 4 + 1) * 1000);
      // The sweep runs on the scheduler the test clock drives; its database work ends a moment later.
      await expect.poll(async () => (await app.dicery.roomStore.findRoom(idle.code))?.state).toBe('closed');
      expect((await eventTypes(busy.code)).includes('room_closed')).toBe(false);
      expect((await app.dicery.roomStore.findRoom(busy.code))?.state).toBe('open');
      const listed = await app.dicery.hostTools.listHostedRooms(idle.host.user.id, 10, 0);
      expect(listed.items[0]).toMatchObject({ code: idle.code, state: 'closed' });
      const snapshot = await app.inject({ method: 'GET', url: `/rooms/${busy.code}`, headers: bot.headers });
      expect(snapshot.statusCode).toBe(200);
    });

    it('deletes rooms closed more than ROOM_CLOSED_RETENTION ago, with all they hold, and keeps the rest', async () => {
      // Red-team 2026-12g D6: closed rooms kept their events, log, players and watch links for
      // ever, so anonymous players grew the database without bound.
      const old = await table();
      const bot = await joinAsBot(app, old.code, 'Roller');
      for (let i = 0; i < 3; i += 1) {
        const roll = await app.inject({
          method: 'POST',
          url: `/rooms/${old.code}/rolls`,
          headers: bot.headers,
          payload: { notation: '2d6' },
        });
        expect(roll.statusCode).toBe(201);
      }
      const close = (code: string, host: SignedIn) =>
        app.inject({ method: 'DELETE', url: `/rooms/${code}`, headers: host.headers });
      expect((await close(old.code, old.host)).statusCode).toBe(204);
      const rowsOf = async (code: string) => {
        const db = app.dicery.roomStore;
        return {
          events: (await db.listEventsAfter(code, 0, 1000)).length,
          log: (await db.log.listEntries(code, 0, 200, 1 << 30)).rows.length,
        };
      };
      expect(await rowsOf(old.code)).toEqual({ events: 5, log: 3 });
      clock.advance((CLOSED_RETENTION / 2) * 1000);
      const recent = await table();
      expect((await close(recent.code, recent.host)).statusCode).toBe(204);
      // Closed by the idle sweep meanwhile, but only just: kept with its rows.
      const idle = await table();
      // Past the first room's retention plus a sweep interval, not the second's.
      clock.advance((CLOSED_RETENTION / 2 + IDLE_TTL / 4 + 1) * 1000);
      await expect.poll(async () => rowsOf(old.code)).toEqual({ events: 0, log: 0 });
      await expect.poll(async () => app.dicery.roomStore.findPlayer(bot.id)).toBeUndefined();
      // The room's own row stays, closed: its code is never drawn for another room.
      expect((await app.dicery.roomStore.findRoom(old.code))?.state).toBe('closed');
      expect(await rowsOf(recent.code)).toEqual({ events: 1, log: 0 });
      expect((await app.dicery.roomStore.findRoom(idle.code))?.state).toBe('closed');
      expect(await rowsOf(idle.code)).toEqual({ events: 1, log: 0 });
    });
  });
});
