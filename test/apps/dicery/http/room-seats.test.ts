import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer, createTestClock } from '../../../../src/testing.js';
import { signIn } from '../../../support/accounts.js';
import { Browser } from '../../../support/room-browser.js';
import { createRoom } from '../../../support/rooms.js';

const TOKEN_TTL = 600;
const SEAT_TTL = 86_400;
const SEAT = '__Secure-dicery_seat_';
const ROOM = '__Secure-dicery_room_';
const WATCH = '__Secure-dicery_watch_';

/**
 * Seats (issue 14, item 1): one browser is one player, across expired room tokens, reloads and
 * repeated joins; a player moves to a new device with a single-use claim code; a kick, a leave, an
 * expired token and an expired seat each answer with their own code.
 */
describe('Dicery seats', () => {
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
        roomTokenTtl: TOKEN_TTL,
        roomSeatTtl: SEAT_TTL,
      },
      { clock },
    );
  });
  afterAll(async () => app.close());

  /** A fresh host (its access token is minted now, whatever the clock did before) and room. */
  async function table() {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    return { host, room, code: room.code };
  }

  async function players(code: string, headers: Record<string, string>) {
    const response = await app.inject({ method: 'GET', url: `/rooms/${code}`, headers });
    expect(response.statusCode).toBe(200);
    return (response.json().players as { id: string; name: string }[]).map((p) => p.name);
  }

  it('sets an HttpOnly seat cookie beside the room cookie, and keeps only its hash', async () => {
    const { code } = await table();
    const pat = new Browser(app);
    const joined = await pat.join(code, 'Pat');
    expect(joined.statusCode).toBe(201);
    const line = ([] as string[]).concat(joined.headers['set-cookie'] ?? []).find((l) => l.startsWith(SEAT));
    expect(line).toMatch(/HttpOnly/i);
    expect(line).toMatch(/Secure/i);
    expect(line).toMatch(/SameSite=Lax/i);
    expect(line).toContain(`Path=/rooms/${code}`);
    const seat = pat.cookies.get(`${SEAT}${code}`)?.value ?? '';
    expect(seat).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // Never in the body: the page's script cannot read the seat.
    expect(joined.body).not.toContain(seat);
  });

  it('resumes, never duplicates, when the same browser joins again (whatever name it types)', async () => {
    const { host, code } = await table();
    const pat = new Browser(app);
    const first = await pat.join(code, 'Pat');
    const again = await pat.join(code, 'Pat');
    const otherName = await pat.join(code, 'Someone else');
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ resumed: true, player: first.json().player });
    expect(otherName.json()).toMatchObject({ resumed: true, player: first.json().player });
    expect(await players(code, host.headers)).toEqual(['Pat']);
  });

  it('renews an expired room token from the seat: same player, token TTL unchanged', async () => {
    const { code } = await table();
    const pat = new Browser(app);
    const joined = (await pat.join(code, 'Pat')).json();
    clock.advance((TOKEN_TTL + 1) * 1000);
    const expired = await pat.request('GET', `/rooms/${code}`);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().code).toBe('ROOM_TOKEN_EXPIRED');
    const resumed = await pat.request('POST', `/rooms/${code}/seat`);
    expect(resumed.statusCode).toBe(200);
    expect(resumed.json()).toMatchObject({ resumed: true, player: joined.player });
    expect(Date.parse(resumed.json().expires_at) - clock()).toBeLessThanOrEqual(TOKEN_TTL * 1000);
    const state = await pat.request('GET', `/rooms/${code}`);
    expect(state.statusCode).toBe(200);
    expect(state.json().you.player_id).toBe(joined.player.id);
  });

  it('answers SEAT_INVALID without a seat, and after leaving (the seat is given up)', async () => {
    const { code } = await table();
    const stranger = new Browser(app);
    const none = await stranger.request('POST', `/rooms/${code}/seat`);
    expect(none.statusCode).toBe(401);
    expect(none.json().code).toBe('SEAT_INVALID');

    const pat = new Browser(app);
    await pat.join(code, 'Pat');
    const seat = pat.cookies.get(`${SEAT}${code}`)?.value ?? '';
    const csrf = await pat.csrf();
    const left = await pat.request('DELETE', `/rooms/${code}/players/me`, {
      headers: { 'x-csrf-token': csrf },
    });
    expect(left.statusCode).toBe(204);
    expect(pat.cookies.has(`${SEAT}${code}`)).toBe(false);
    expect(pat.cookies.has(`${ROOM}${code}`)).toBe(false);
    const replay = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/seat`,
      headers: { cookie: `${SEAT}${code}=${seat}` },
    });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().code).toBe('SEAT_INVALID');
  });

  it('tells a kick apart: PLAYER_REMOVED on requests, on resume and on joining again from that browser', async () => {
    const { host, code } = await table();
    const pat = new Browser(app);
    const id = (await pat.join(code, 'Pat')).json().player.id;
    const kick = await app.inject({
      method: 'DELETE',
      url: `/rooms/${code}/players/${id}`,
      headers: host.headers,
    });
    expect(kick.statusCode).toBe(204);
    for (const response of [
      await pat.request('GET', `/rooms/${code}`),
      await pat.request('POST', `/rooms/${code}/seat`),
      await pat.join(code, 'Pat'),
      await pat.join(code, 'Another name'),
    ]) {
      expect(response.statusCode).toBe(403);
      expect(response.json().code).toBe('PLAYER_REMOVED');
    }
  });

  it('expires an unused seat: SEAT_EXPIRED, the player leaves with reason expired, the name is free', async () => {
    const { code } = await table();
    const pat = new Browser(app);
    const id = (await pat.join(code, 'Pat')).json().player.id;
    clock.advance((SEAT_TTL + 1) * 1000);
    const late = await pat.request('POST', `/rooms/${code}/seat`);
    expect(late.statusCode).toBe(401);
    expect(late.json().code).toBe('SEAT_EXPIRED');
    const events = await app.dicery.rooms.eventsAfter(code, 0);
    expect(events.at(-1)).toMatchObject({
      type: 'player_left',
      data: { player: { id, name: 'Pat' }, reason: 'expired' },
    });
    expect((await app.dicery.rooms.snapshot(code)).players).toEqual([]);
    const newcomer = new Browser(app);
    const taken = await newcomer.join(code, 'Pat');
    expect(taken.statusCode).toBe(201);
    expect(taken.json().player.id).not.toBe(id);
  });

  it('frees the name of a player whose seat expired when someone joins under it', async () => {
    const { code } = await table();
    const pat = new Browser(app);
    const id = (await pat.join(code, 'Pat')).json().player.id;
    clock.advance((SEAT_TTL + 1) * 1000);
    const newcomer = new Browser(app);
    const joined = await newcomer.join(code, 'pat');
    expect(joined.statusCode).toBe(201);
    expect(joined.json().player.id).not.toBe(id);
    const back = await pat.request('POST', `/rooms/${code}/seat`);
    expect(back.json().code).toBe('SEAT_INVALID');
  });

  describe('claim codes', () => {
    it('moves a seat to a new device: same player, the old device is signed out, the code is single-use', async () => {
      const { host, code } = await table();
      const phone = new Browser(app);
      const joined = (await phone.join(code, 'Pat')).json();
      const csrf = await phone.csrf();
      const issued = await phone.request('POST', `/rooms/${code}/players/me/claim-code`, {
        headers: { 'x-csrf-token': csrf },
      });
      expect(issued.statusCode).toBe(201);
      expect(issued.headers['cache-control']).toBe('no-store');
      const claimCode: string = issued.json().claim_code;
      expect(claimCode).toMatch(/^[23456789A-HJKMNP-Z]{4}-[23456789A-HJKMNP-Z]{4}-[23456789A-HJKMNP-Z]{4}$/);

      const laptop = new Browser(app);
      const taken = await laptop.join(code, 'Pat');
      expect(taken.statusCode).toBe(409);
      expect(taken.json().code).toBe('PLAYER_NAME_TAKEN');
      // Typed by a person: lower case, without dashes.
      const claimed = await laptop.request('POST', `/rooms/${code}/claim`, {
        payload: { claim_code: claimCode.replaceAll('-', ' ').toLowerCase() },
      });
      expect(claimed.statusCode).toBe(200);
      expect(claimed.json()).toMatchObject({ resumed: true, player: joined.player });
      expect((await laptop.request('GET', `/rooms/${code}`)).json().you.player_id).toBe(joined.player.id);
      expect(await players(code, host.headers)).toEqual(['Pat']);

      const old = await phone.request('GET', `/rooms/${code}`);
      expect(old.statusCode).toBe(401);
      expect(old.json().code).toBe('SEAT_REPLACED');
      expect((await phone.request('POST', `/rooms/${code}/seat`)).json().code).toBe('SEAT_INVALID');

      const third = new Browser(app);
      const reused = await third.request('POST', `/rooms/${code}/claim`, {
        payload: { claim_code: claimCode },
      });
      expect(reused.statusCode).toBe(400);
      expect(reused.json().code).toBe('CLAIM_CODE_INVALID');
    });

    it('lets the host hand a name over, and nobody else', async () => {
      const { host, code } = await table();
      const pat = new Browser(app);
      const id = (await pat.join(code, 'Pat')).json().player.id;
      const stranger = await signIn(app);
      const refused = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/players/${id}/claim-code`,
        headers: stranger.headers,
      });
      expect(refused.statusCode).toBe(404);
      const handed = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/players/${id}/claim-code`,
        headers: host.headers,
      });
      expect(handed.statusCode).toBe(201);
      const newDevice = new Browser(app);
      const claimed = await newDevice.request('POST', `/rooms/${code}/claim`, {
        payload: { claim_code: handed.json().claim_code },
      });
      expect(claimed.json().player.id).toBe(id);
    });

    it('expires claim codes, and refuses malformed and unknown ones with the same answer', async () => {
      const { host, code } = await table();
      const pat = new Browser(app);
      const id = (await pat.join(code, 'Pat')).json().player.id;
      const handed = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/players/${id}/claim-code`,
        headers: host.headers,
      });
      clock.advance(601_000);
      const device = new Browser(app);
      for (const claim_code of [handed.json().claim_code, 'nope', 'AAAA-AAAA-AAAA', '']) {
        const response = await device.request('POST', `/rooms/${code}/claim`, { payload: { claim_code } });
        expect(response.statusCode).toBe(400);
        expect(response.json().code).toBe('CLAIM_CODE_INVALID');
      }
    });
  });
});

describe('Dicery seats: claim attempts are throttled per client address', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ roomJoinsPerMinute: 3, maxOpenRoomsPerHost: 10_000 });
  });
  afterAll(async () => app.close());

  it('answers 429 with Retry-After once the address has spent its join allowance', async () => {
    const host = await signIn(app);
    const { code } = await createRoom(app, host);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/claim`,
        payload: { claim_code: 'AAAA-AAAA-AAAA' },
      });
      statuses.push(response.statusCode);
      if (response.statusCode === 429) expect(response.headers['retry-after']).toBeDefined();
    }
    expect(statuses).toEqual([400, 400, 400, 429]);
  });
});

describe('red team 2026-12b: cookie tossing', () => {
  // G2: room, seat and watch cookies are `__Secure-` with `Path=/rooms/<CODE>` (`__Host-` demands
  // Path=/), so a sibling subdomain may set one with `Domain=<parent>` and a longer path; the
  // browser then sends it first (RFC 6265 §5.4: longer paths first), and the first one wins.
  it('G2: a second room or seat cookie of the same name does not pick the player', async () => {
    const app = await buildTestServer({ roomJoinsPerMinute: 10_000 });
    try {
      const host = await signIn(app);
      const { code } = await createRoom(app, host);
      const victim = new Browser(app);
      const attacker = new Browser(app);
      expect((await victim.join(code, 'Victim')).statusCode).toBe(201);
      const planted = await attacker.join(code, 'Mallory');
      const malloryId = String(planted.json().player.id);
      // And a watch cookie: two links of the room, one exchanged by each browser.
      const links = await Promise.all(
        [0, 1].map(() =>
          app.inject({ method: 'POST', url: `/rooms/${code}/spectator-links`, headers: host.headers }),
        ),
      );
      for (const [index, link] of links.entries()) {
        const browser = index === 0 ? victim : attacker;
        const exchanged = await browser.request('POST', `/rooms/${code}/watch`, {
          payload: { token: link.json().token },
        });
        expect(exchanged.statusCode, exchanged.body).toBe(200);
      }
      for (const [name, method, url] of [
        [`${WATCH}${code}`, 'GET', `/rooms/${code}/rolls`],
        [`${ROOM}${code}`, 'GET', `/rooms/${code}`],
        [`${SEAT}${code}`, 'POST', `/rooms/${code}/seat`],
      ] as const) {
        const own = victim.cookies.get(name)?.value;
        const tossed = attacker.cookies.get(name)?.value;
        // What the victim's browser sends once the sibling's cookie is planted: the tossed one first.
        const response = await app.inject({
          method,
          url,
          headers: { cookie: `${name}=${tossed}; ${name}=${own}` },
        });
        expect(response.statusCode, name).toBe(400);
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(response.json()).toMatchObject({ code: 'AMBIGUOUS_COOKIE' });
        expect(response.body).not.toContain(malloryId);
        // The same cookie twice (a duplicated header) is not ambiguous.
        const twice = await app.inject({
          method,
          url,
          headers: { cookie: `${name}=${own}; ${name}=${own}` },
        });
        expect(twice.statusCode).toBe(200);
      }
    } finally {
      await app.close();
    }
  });

  it('G2: a planted value that cannot be ours is set aside, and one that could be is refused without a lockout', async () => {
    const app = await buildTestServer({ roomJoinsPerMinute: 10_000 });
    try {
      const host = await signIn(app);
      const { code } = await createRoom(app, host);
      const other = await createRoom(app, host);
      const victim = new Browser(app);
      const attacker = new Browser(app);
      const stranger = new Browser(app);
      const victimId = String((await victim.join(code, 'Victim')).json().player.id);
      await attacker.join(code, 'Mallory');
      await stranger.join(other.code, 'Elsewhere');
      const link = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/spectator-links`,
        headers: host.headers,
      });
      const watched = await victim.request('POST', `/rooms/${code}/watch`, {
        payload: { token: link.json().token },
      });
      expect(watched.statusCode).toBe(200);
      const own = (name: string) => victim.cookies.get(name)?.value ?? '';
      const roomName = `${ROOM}${code}`;
      const snapshot = (cookie: string, host = 'app.example.com') =>
        app.inject({ method: 'GET', url: `/rooms/${code}`, headers: { cookie, host } });

      // Values this server cannot have issued for this room go first (as a longer path would):
      // junk, another room's token, a token with a broken signature. The caller's own is used.
      const ownToken = own(roomName);
      const forged = `${ownToken.slice(0, -4)}${ownToken.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
      for (const planted of ['junk', stranger.cookies.get(`${ROOM}${other.code}`)?.value, forged]) {
        const answer = await snapshot(`${roomName}=${planted}; ${roomName}=${ownToken}`);
        expect(answer.statusCode, String(planted)).toBe(200);
        expect(answer.json().you.player_id).toBe(victimId);
      }
      // A Host no browser could hold a cookie for has no copies to clear. Before: a 500 (the
      // serializer refused it as a Domain attribute).
      for (const badHost of ['a_b.example.com', 'a..example.com', 'app.example.com.']) {
        const answer = await snapshot(`${roomName}=junk; ${roomName}=${ownToken}`, badHost);
        expect(answer.statusCode, badHost).toBe(200);
        expect(answer.json().you.player_id).toBe(victimId);
      }
      // Seat and watch cookies are opaque secrets: a value of the wrong shape is set aside.
      const seat = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/seat`,
        headers: { cookie: `${SEAT}${code}=junk; ${SEAT}${code}=${own(`${SEAT}${code}`)}` },
      });
      expect(seat.statusCode, seat.body).toBe(200);
      expect(seat.json().player.id).toBe(victimId);
      const watch = await app.inject({
        method: 'GET',
        url: `/rooms/${code}/rolls`,
        headers: { cookie: `${WATCH}${code}=junk; ${WATCH}${code}=${own(`${WATCH}${code}`)}` },
      });
      expect(watch.statusCode, watch.body).toBe(200);

      // Two tokens this server issued for this room: neither is picked, even when only the planted
      // one still works (the victim was removed): whoever planted it must not choose who we are.
      const kicked = await app.inject({
        method: 'DELETE',
        url: `/rooms/${code}/players/${victimId}`,
        headers: host.headers,
      });
      expect(kicked.statusCode).toBe(204);
      const refused = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/rolls`,
        headers: {
          host: 'app.example.com',
          cookie: `${roomName}=${attacker.cookies.get(roomName)?.value}; ${roomName}=${ownToken}`,
        },
        payload: { notation: '1d6' },
      });
      expect(refused.statusCode).toBe(400);
      expect(refused.json()).toMatchObject({ code: 'AMBIGUOUS_COOKIE' });
      expect(refused.json().detail).toMatch(/try(ing)? again/);

      // The refusal asks the browser to drop every copy the server never sets: Domain= copies for
      // this host and its parent, at each path that matched the request; never the host-only one
      // at /rooms/<code> (ours), and nothing for another cookie.
      const cleared = ([] as string[]).concat(refused.headers['set-cookie'] ?? []);
      const paths = ['/', '/rooms', '/rooms/', `/rooms/${code}`, `/rooms/${code}/`, `/rooms/${code}/rolls`];
      const expected = ['app.example.com', 'example.com'].flatMap((domain) =>
        paths
          .filter((path) => !(domain === 'app.example.com' && path === `/rooms/${code}`))
          .map((path) => `${domain} ${path}`),
      );
      const seen = cleared.map((line) => {
        expect(line.startsWith(`${roomName}=;`), line).toBe(true);
        expect(line).toMatch(/; Max-Age=0(;|$)/);
        expect(line).toMatch(/; Secure(;|$)/);
        return `${/; Domain=([^;]+)/.exec(line)?.[1]} ${/; Path=([^;]+)/.exec(line)?.[1]}`;
      });
      expect(seen.sort()).toEqual(expected.sort());
      // An IP address has no sibling domains: nothing to clear there.
      const byAddress = await snapshot(
        `${roomName}=${attacker.cookies.get(roomName)?.value}; ${roomName}=${ownToken}`,
        '127.0.0.1',
      );
      expect(byAddress.statusCode).toBe(400);
      expect(byAddress.headers['set-cookie']).toBeUndefined();
    } finally {
      await app.close();
    }
  });
});
