import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer, createTestClock } from '../../../../src/testing.js';
import { cookiesOf, type SignedIn, signIn } from '../../../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../../../support/databases.js';
import { Browser } from '../../../support/room-browser.js';
import { type CreatedRoom, createRoom, type JoinedPlayer, joinAsBot } from '../../../support/rooms.js';

const PREFIX = '__Secure-dicery_room_';
const CODE_PATTERN = /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/;

describe('Dicery room routes', () => {
  let app: FastifyInstance;
  let host: SignedIn;
  let stranger: SignedIn;

  beforeAll(async () => {
    // inject() calls all come from 127.0.0.1 and one host makes every room: lift the join and room
    // limits here, and test them on their own apps.
    app = await buildTestServer({
      roomJoinsPerMinute: 10_000,
      roomRollsPerMinutePerIp: 10_000,
      roomsPerHourPerAccount: 10_000,
      roomsPerHourPerIp: 10_000,
      maxOpenRoomsPerHost: 10_000,
    });
    host = await signIn(app);
    stranger = await signIn(app);
  });
  afterAll(async () => app.close());

  const roll = (code: string, headers: Record<string, string>, notation = '2d20kh1+5', label?: string) =>
    app.inject({ method: 'POST', url: `/rooms/${code}/rolls`, headers, payload: { notation, label } });

  describe('POST /rooms', () => {
    it('creates an open room for a signed-in user with rooms:host', async () => {
      const response = await app.inject({
        method: 'POST',
        url: '/rooms',
        headers: host.headers,
        payload: { name: '  Cafe\u0301   night ' },
      });
      expect(response.statusCode).toBe(201);
      const room = response.json();
      expect(room).toEqual({
        code: expect.stringMatching(CODE_PATTERN),
        name: 'Caf\u00E9 night',
        state: 'open',
        created_at: expect.any(String),
        locked: false,
      });
      expect(Number.isNaN(Date.parse(room.created_at))).toBe(false);
      // RFC 9110 §15.3.2: a 201 names the created resource in Location; its host reads it there.
      expect(response.headers.location).toBe(`/rooms/${room.code}`);
      const shown = await app.inject({
        method: 'GET',
        url: String(response.headers.location),
        headers: host.headers,
      });
      expect(shown.statusCode).toBe(200);
      expect(shown.json()).toMatchObject({ room: { code: room.code, name: room.name } });
    });

    it('needs a signed-in user with the rooms:host scope and a valid name', async () => {
      expect((await app.inject({ method: 'POST', url: '/rooms', payload: { name: 'x' } })).statusCode).toBe(
        401,
      );
      const meOnly = await signIn(app, 'user', 'me');
      const scoped = await app.inject({
        method: 'POST',
        url: '/rooms',
        headers: meOnly.headers,
        payload: { name: 'x' },
      });
      expect(scoped.statusCode).toBe(403);
      expect(scoped.json().code).toBe('INSUFFICIENT_SCOPE');
      const blank = await app.inject({
        method: 'POST',
        url: '/rooms',
        headers: host.headers,
        payload: { name: '   ' },
      });
      expect(blank.statusCode).toBe(400);
      expect(blank.json().errors).toEqual([{ field: 'name', message: expect.any(String) }]);
    });
  });

  describe('POST /rooms/{code}/join', () => {
    let room: CreatedRoom;
    beforeAll(async () => {
      room = await createRoom(app, host);
    });

    it('sets a room cookie scoped to the room, with a room token and no token in the body', async () => {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player: 'Alice' },
      });
      expect(response.statusCode).toBe(201);
      const body = response.json();
      expect(body).toEqual({
        room: { code: room.code, name: room.name },
        player: { id: expect.any(String), name: 'Alice' },
        expires_at: expect.any(String),
        resumed: false,
        seat_expires_at: expect.any(String),
      });
      expect(response.headers['cache-control']).toBe('no-store');
      const cookie = cookiesOf(response).get(`${PREFIX}${room.code}`);
      expect(cookie).toBeDefined();
      expect(cookie?.attributes).toEqual(
        expect.arrayContaining([
          'httponly',
          'secure',
          'samesite=lax',
          `path=/rooms/${room.code}`.toLowerCase(),
        ]),
      );
      expect(cookie?.attributes.some((a) => a.startsWith('domain'))).toBe(false);
      const maxAge = Number(cookie?.attributes.find((a) => a.startsWith('max-age='))?.slice(8));
      expect(maxAge).toBeGreaterThan(12 * 3600 - 5);
      expect(maxAge).toBeLessThanOrEqual(12 * 3600);

      const token = cookie?.value ?? '';
      expect(decodeProtectedHeader(token).typ).toBe('dicery-room+jwt');
      const claims = decodeJwt(token);
      expect(claims).toMatchObject({ sub: body.player.id, dicery_room: room.code, aud: 'dicery' });
      expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBeLessThanOrEqual(12 * 3600);
      expect(Date.parse(body.expires_at)).toBe((claims.exp ?? 0) * 1000);
    });

    it('accepts the code in any case and with surrounding spaces', async () => {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${encodeURIComponent(` ${room.code.toLowerCase()} `)}/join`,
        payload: { player: 'Lowercase' },
      });
      expect(response.statusCode).toBe(201);
      expect(response.json().room.code).toBe(room.code);
      expect(cookiesOf(response).has(`${PREFIX}${room.code}`)).toBe(true);
    });

    it('returns the token in the body, and sets no cookie, only with bearer transport', async () => {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player: 'Robot', transport: 'bearer' },
      });
      expect(response.statusCode).toBe(201);
      const body = response.json();
      expect(body.token_type).toBe('bearer');
      expect(decodeJwt(body.access_token)).toMatchObject({ sub: body.player.id, dicery_room: room.code });
      expect(response.headers['set-cookie']).toBeUndefined();
      const cookie = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player: 'Human' },
      });
      expect(cookie.json().access_token).toBeUndefined();
      expect(cookie.json().token_type).toBeUndefined();
    });

    it('keeps one browser in several rooms at once', async () => {
      const other = await createRoom(app, host, 'Second table');
      const browser = new Browser(app);
      expect((await browser.join(room.code, 'Juggler')).statusCode).toBe(201);
      expect((await browser.join(other.code, 'Juggler')).statusCode).toBe(201);
      // A room cookie and a seat cookie per room.
      expect(browser.cookies.size).toBe(4);
      const a = await browser.request('GET', `/rooms/${room.code}`);
      const b = await browser.request('GET', `/rooms/${other.code}`);
      expect(a.statusCode).toBe(200);
      expect(b.statusCode).toBe(200);
      expect(a.json().you.player_id).not.toBe(b.json().you.player_id);
      expect(a.json().room.code).toBe(room.code);
      expect(b.json().room.code).toBe(other.code);
    });

    it('answers unknown and closed rooms with the same 404, and a malformed code 400 by schema', async () => {
      const closed = await createRoom(app, host);
      const close = await app.inject({
        method: 'DELETE',
        url: `/rooms/${closed.code}`,
        headers: host.headers,
      });
      expect(close.statusCode).toBe(204);
      const answers = await Promise.all(
        [closed.code, 'ZZZZZZZZ'].map((code) =>
          app.inject({ method: 'POST', url: `/rooms/${code}/join`, payload: { player: 'Eve' } }),
        ),
      );
      for (const answer of answers) {
        expect(answer.statusCode).toBe(404);
        expect(answer.json().code).toBe('ROOM_NOT_FOUND');
      }
      expect(new Set(answers.map((answer) => answer.body)).size).toBe(1);
      // The code alphabet is public, so refusing a malformed code by schema tells nothing about rooms.
      const malformed = await app.inject({
        method: 'POST',
        url: '/rooms/not-a-code/join',
        payload: { player: 'Eve' },
      });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'code' }] });
      // Newcomer review 2026-12-06: the detail quoted the code's regular expression.
      expect(malformed.json().detail).toBe('code is not in the expected form (see its description at /docs)');
    });

    it('refuses a name already present in the room, ignoring case and compatibility forms', async () => {
      const fresh = await createRoom(app, host);
      expect((await joinAsBot(app, fresh.code, 'Bob')).name).toBe('Bob');
      for (const name of ['bob', 'BOB', ' Ｂｏｂ ']) {
        const response = await app.inject({
          method: 'POST',
          url: `/rooms/${fresh.code}/join`,
          payload: { player: name },
        });
        expect(response.statusCode).toBe(409);
        expect(response.json().code).toBe('PLAYER_NAME_TAKEN');
      }
      // The same name in another room is fine.
      const other = await createRoom(app, host);
      expect((await joinAsBot(app, other.code, 'bob')).name).toBe('bob');
    });

    it('frees a name when its player leaves', async () => {
      const fresh = await createRoom(app, host);
      const carol = await joinAsBot(app, fresh.code, 'Carol');
      const leave = await app.inject({
        method: 'DELETE',
        url: `/rooms/${fresh.code}/players/me`,
        headers: carol.headers,
      });
      expect(leave.statusCode).toBe(204);
      expect((await joinAsBot(app, fresh.code, 'carol')).name).toBe('carol');
    });

    it.each([
      ['empty', ''],
      ['blank', '   '],
      ['too long', 'x'.repeat(33)],
      ['a control character', 'a\u0000b'],
      ['a newline', 'Mallory\nroll: 20'],
      ['a bidi override', '\u202Eevil'],
      ['a zero-width space', 'Al\u200Bice'],
    ])('answers 400 naming `player` for a name that is %s', async (_what, player) => {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player },
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('VALIDATION_FAILED');
      expect(response.json().errors).toEqual([{ field: 'player', message: expect.any(String) }]);
    });

    it('accepts 32 characters, counting emoji as one', async () => {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player: `${'🎲'.repeat(2)}${'y'.repeat(30)}`, transport: 'bearer' },
      });
      expect(response.statusCode).toBe(201);
    });

    it('answers 400 naming the field for a missing name or an unknown field', async () => {
      const missing = await app.inject({ method: 'POST', url: `/rooms/${room.code}/join`, payload: {} });
      expect(missing.statusCode).toBe(400);
      expect(missing.json().errors).toEqual([{ field: 'player', message: 'is required' }]);
      const extra = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player: 'Zed', admin: true },
      });
      expect(extra.statusCode).toBe(400);
      expect(extra.json().errors).toEqual([{ field: 'admin', message: 'is not an accepted field' }]);
      const transport = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player: 'Zed', transport: 'carrier-pigeon' },
      });
      expect(transport.statusCode).toBe(400);
    });

    it('refuses cross-site joins (Origin / Sec-Fetch-Site)', async () => {
      const evil = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        headers: { origin: 'https://evil.example' },
        payload: { player: 'Victim' },
      });
      expect(evil.statusCode).toBe(403);
      expect(evil.json().code).toBe('CROSS_SITE_REQUEST');
      const site = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        headers: { 'sec-fetch-site': 'cross-site' },
        payload: { player: 'Victim' },
      });
      expect(site.statusCode).toBe(403);
      const same = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        headers: { origin: 'http://localhost:80', 'sec-fetch-site': 'same-origin' },
        payload: { player: 'Neighbour' },
      });
      expect(same.statusCode).toBe(201);
    });
  });

  describe('membership', () => {
    let roomA: CreatedRoom;
    let roomB: CreatedRoom;
    let alice: JoinedPlayer;
    beforeAll(async () => {
      roomA = await createRoom(app, host, 'A');
      roomB = await createRoom(app, host, 'B');
      alice = await joinAsBot(app, roomA.code, 'Alice');
    });

    it('shows the room to its players: players, recent rolls and who you are', async () => {
      const rolled = await roll(roomA.code, alice.headers, '1d6', 'warm-up');
      expect(rolled.statusCode).toBe(201);
      const response = await app.inject({
        method: 'GET',
        url: `/rooms/${roomA.code}`,
        headers: alice.headers,
      });
      expect(response.statusCode).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      const body = response.json();
      expect(body.room).toEqual({
        code: roomA.code,
        name: 'A',
        state: 'open',
        created_at: roomA.created_at,
        locked: false,
      });
      // Other tests here play in this room too (in any order): Alice and her roll, the newest, are in it.
      expect(body.players).toContainEqual({ id: alice.id, name: 'Alice', joined_at: expect.any(String) });
      expect(body.rolls.at(-1)).toEqual(rolled.json());
      expect(body.you).toEqual({ player_id: alice.id, host: false, spectator: false });
      expect(body.last_event_id).toBeGreaterThanOrEqual(rolled.json().id);
    });

    it('shows the room to its host by account credential, and to nobody else', async () => {
      const asHost = await app.inject({ method: 'GET', url: `/rooms/${roomA.code}`, headers: host.headers });
      expect(asHost.statusCode).toBe(200);
      expect(asHost.json().you).toEqual({ player_id: null, host: true, spectator: false });
      const asStranger = await app.inject({
        method: 'GET',
        url: `/rooms/${roomA.code}`,
        headers: stranger.headers,
      });
      // Another account's room looks exactly like no room (no code oracle for signed-in users).
      expect(asStranger.statusCode).toBe(404);
      expect(asStranger.json().code).toBe('ROOM_NOT_FOUND');
      const anonymous = await app.inject({ method: 'GET', url: `/rooms/${roomA.code}` });
      expect(anonymous.statusCode).toBe(401);
      expect(anonymous.json().code).toBe('UNAUTHENTICATED');
    });

    it("refuses a room-A token on room B (bearer, or in room B's cookie)", async () => {
      for (const request of [
        { method: 'GET' as const, url: `/rooms/${roomB.code}` },
        { method: 'GET' as const, url: `/rooms/${roomB.code}/events` },
        { method: 'POST' as const, url: `/rooms/${roomB.code}/rolls`, payload: { notation: '1d6' } },
        { method: 'DELETE' as const, url: `/rooms/${roomB.code}/players/me` },
      ]) {
        const response = await app.inject({ ...request, headers: alice.headers });
        expect(response.statusCode, request.url).toBe(403);
        expect(response.json().code).toBe('NOT_ROOM_MEMBER');
      }
      const cookie = await app.inject({
        method: 'GET',
        url: `/rooms/${roomB.code}`,
        headers: { cookie: `${PREFIX}${roomB.code}=${alice.token}` },
      });
      expect(cookie.statusCode).toBe(403);
    });

    it('refuses an account access token on player routes with invalid_token', async () => {
      for (const request of [
        { method: 'POST' as const, url: `/rooms/${roomA.code}/rolls`, payload: { notation: '1d6' } },
        { method: 'DELETE' as const, url: `/rooms/${roomA.code}/players/me` },
      ]) {
        const response = await app.inject({ ...request, headers: host.headers });
        expect(response.statusCode).toBe(401);
        expect(response.json().code).toBe('INVALID_TOKEN');
        expect(response.headers['www-authenticate']).toMatch(/error="invalid_token"/);
      }
    });

    it('refuses a room token on account routes', async () => {
      for (const url of ['/users/me', '/users/me/sessions']) {
        const response = await app.inject({ method: 'GET', url, headers: alice.headers });
        expect(response.statusCode).toBe(401);
        expect(response.json().code).toBe('INVALID_TOKEN');
      }
      const create = await app.inject({
        method: 'POST',
        url: '/rooms',
        headers: alice.headers,
        payload: { name: 'x' },
      });
      expect(create.statusCode).toBe(401);
      const close = await app.inject({
        method: 'DELETE',
        url: `/rooms/${roomA.code}`,
        headers: alice.headers,
      });
      expect(close.statusCode).toBe(401);
    });

    it('refuses tampered and malformed room tokens with 401', async () => {
      const tampered = `${alice.token.slice(0, -4)}AAAA`;
      for (const headers of [
        { authorization: `Bearer ${tampered}` },
        { authorization: 'Bearer not a token' },
      ]) {
        const response = await app.inject({ method: 'GET', url: `/rooms/${roomA.code}`, headers });
        expect(response.statusCode).toBe(401);
        expect(response.json().code).toBe('INVALID_TOKEN');
      }
      const cookie = await app.inject({
        method: 'GET',
        url: `/rooms/${roomA.code}`,
        headers: { cookie: `${PREFIX}${roomA.code}=garbage` },
      });
      expect(cookie.statusCode).toBe(401);
    });

    it("stops a kicked player's token on the next request", async () => {
      const bob = await joinAsBot(app, roomA.code, 'Bob');
      expect((await roll(roomA.code, bob.headers)).statusCode).toBe(201);
      const byStranger = await app.inject({
        method: 'DELETE',
        url: `/rooms/${roomA.code}/players/${bob.id}`,
        headers: stranger.headers,
      });
      expect(byStranger.statusCode).toBe(404);
      const byPlayer = await app.inject({
        method: 'DELETE',
        url: `/rooms/${roomA.code}/players/${bob.id}`,
        headers: alice.headers,
      });
      expect(byPlayer.statusCode).toBe(401);
      const kick = await app.inject({
        method: 'DELETE',
        url: `/rooms/${roomA.code}/players/${bob.id}`,
        headers: host.headers,
      });
      expect(kick.statusCode).toBe(204);
      const after = await roll(roomA.code, bob.headers);
      expect(after.statusCode).toBe(403);
      expect(after.json().code).toBe('PLAYER_REMOVED');
      expect(
        (await app.inject({ method: 'GET', url: `/rooms/${roomA.code}`, headers: bob.headers })).statusCode,
      ).toBe(403);
      const again = await app.inject({
        method: 'DELETE',
        url: `/rooms/${roomA.code}/players/${bob.id}`,
        headers: host.headers,
      });
      expect(again.statusCode).toBe(404);
      expect(again.json().code).toBe('PLAYER_NOT_FOUND');
      const players = (
        await app.inject({ method: 'GET', url: `/rooms/${roomA.code}`, headers: alice.headers })
      ).json().players;
      expect(players.map((p: { id: string }) => p.id)).not.toContain(bob.id);
    });

    it("stops a departed player's token and clears the room cookie with the same attributes", async () => {
      const browser = new Browser(app);
      const joined = await browser.join(roomA.code, 'Dora');
      const name = `${PREFIX}${roomA.code}`;
      const token = browser.cookies.get(name)?.value ?? '';
      const csrf = await browser.csrf();
      const leave = await browser.request('DELETE', `/rooms/${roomA.code}/players/me`, {
        headers: { 'x-csrf-token': csrf },
      });
      expect(leave.statusCode).toBe(204);
      const cleared = cookiesOf(leave).get(name);
      expect(cleared?.attributes).toEqual(
        expect.arrayContaining([
          'max-age=0',
          'httponly',
          'secure',
          'samesite=lax',
          `path=/rooms/${roomA.code}`.toLowerCase(),
        ]),
      );
      expect(browser.cookies.has(name)).toBe(false);
      const after = await app.inject({
        method: 'GET',
        url: `/rooms/${roomA.code}`,
        headers: { cookie: `${name}=${token}` },
      });
      expect(after.statusCode).toBe(403);
      const players = (
        await app.inject({ method: 'GET', url: `/rooms/${roomA.code}`, headers: alice.headers })
      ).json().players;
      expect(players.map((p: { id: string }) => p.id)).not.toContain(joined.json().player.id);
    });

    it('closes a room for its host only; afterwards its players get 404', async () => {
      const room = await createRoom(app, host);
      const eve = await joinAsBot(app, room.code, 'Eve');
      const byStranger = await app.inject({
        method: 'DELETE',
        url: `/rooms/${room.code}`,
        headers: stranger.headers,
      });
      expect(byStranger.statusCode).toBe(404);
      expect(
        (await app.inject({ method: 'DELETE', url: `/rooms/${room.code}`, headers: host.headers }))
          .statusCode,
      ).toBe(204);
      for (const response of [
        await app.inject({ method: 'GET', url: `/rooms/${room.code}`, headers: eve.headers }),
        await roll(room.code, eve.headers),
        await app.inject({ method: 'GET', url: `/rooms/${room.code}`, headers: host.headers }),
        await app.inject({ method: 'DELETE', url: `/rooms/${room.code}`, headers: host.headers }),
      ]) {
        expect(response.statusCode).toBe(404);
        expect(response.json().code).toBe('ROOM_NOT_FOUND');
      }
    });
  });

  describe('rolls', () => {
    let room: CreatedRoom;
    let player: JoinedPlayer;
    beforeAll(async () => {
      room = await createRoom(app, host);
      player = await joinAsBot(app, room.code, 'Roller');
    });

    it('rolls on the server and answers the stored roll', async () => {
      const response = await roll(room.code, player.headers, ' 4d6kh3+2 ', 'Strength');
      expect(response.statusCode).toBe(201);
      const body = response.json();
      expect(body).toEqual({
        id: expect.any(Number),
        player: { id: player.id, name: 'Roller' },
        notation: '4d6kh3+2',
        label: 'Strength',
        terms: [
          {
            kind: 'dice',
            sign: 1,
            count: 4,
            sides: 6,
            keep: { mode: 'kh', n: 3 },
            dice: expect.any(Array),
            subtotal: expect.any(Number),
          },
          { kind: 'constant', sign: 1, value: 2 },
        ],
        modifier: 2,
        total: expect.any(Number),
        rolled_at: expect.any(String),
        visibility: 'room',
        hidden: false,
        // Its entry in the room's signed log (issue 14).
        hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      });
      const dice = body.terms[0].dice as { value: number; kept: boolean }[];
      expect(dice).toHaveLength(4);
      expect(dice.filter((die) => die.kept)).toHaveLength(3);
      const kept = dice.filter((die) => die.kept).reduce((sum, die) => sum + die.value, 0);
      expect(body.terms[0].subtotal).toBe(kept);
      expect(body.total).toBe(kept + 2);
    });

    it.each([
      ['2d6+', 4],
      ['2d6+x', 4],
      ['1000d6', 0],
      ['d', 1],
      ['1d6'.padEnd(200, '+'), 128],
    ])('answers 422 with the error position for %j', async (notation, position) => {
      const response = await roll(room.code, player.headers, notation);
      expect(response.statusCode).toBe(422);
      expect(response.json()).toMatchObject({ code: 'INVALID_DICE_NOTATION', status: 422, position });
    });

    it('validates the label', async () => {
      const response = await roll(room.code, player.headers, '1d6', 'x'.repeat(65));
      expect(response.statusCode).toBe(400);
      expect(response.json().errors).toEqual([{ field: 'label', message: expect.any(String) }]);
      const blank = await roll(room.code, player.headers, '1d6', '   ');
      expect(blank.statusCode).toBe(201);
      expect(blank.json().label).toBeNull();
    });

    it('needs a player: the host cannot roll without joining', async () => {
      const response = await roll(room.code, host.headers);
      expect(response.statusCode).toBe(401);
      expect((await roll(room.code, {})).statusCode).toBe(401);
    });
  });

  it('documents the room routes with the room cookie and bearer schemes in OpenAPI', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const { roomCookie, roomBearer } = doc.components.securitySchemes;
    expect(roomCookie).toMatchObject({ type: 'apiKey', in: 'cookie', name: `${PREFIX}{code}` });
    expect(roomBearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const join = doc.paths['/rooms/{code}/join'].post;
    // Public: anyone with the code may join (an explicit empty requirement, as Redocly asks).
    expect(join.security).toEqual([]);
    expect(join.description).toMatch(/scripts and native apps/);
    expect(join.description).toMatch(/Path=\/rooms\/<CODE>/);
    expect(join.description).toMatch(/Try it out/);
    const rolls = doc.paths['/rooms/{code}/rolls'].post;
    expect(rolls.security).toEqual([{ roomCookie: [] }, { roomBearer: [] }]);
    expect(rolls.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ in: 'header', name: 'x-csrf-token' })]),
    );
    expect(doc.paths['/rooms/{code}'].get.security).toEqual(
      expect.arrayContaining([
        { roomCookie: [] },
        { roomBearer: [] },
        { OAuth2PasswordBearer: ['rooms:host'] },
      ]),
    );
    expect(doc.paths['/rooms/{code}/events'].get.responses['200'].content).toHaveProperty(
      'text/event-stream',
    );
    expect(doc.paths['/rooms'].post.security).toEqual([
      { OAuth2PasswordBearer: ['rooms:host'] },
      { sessionCookie: [] },
    ]);
  });

  describe('CSRF on cookie-authenticated room calls', () => {
    let room: CreatedRoom;
    beforeAll(async () => {
      room = await createRoom(app, host);
    });

    it('needs a valid X-CSRF-Token for unsafe calls with the room cookie, not for bearer calls', async () => {
      const browser = new Browser(app);
      expect((await browser.join(room.code, 'Cookie')).statusCode).toBe(201);
      const url = `/rooms/${room.code}/rolls`;
      const missing = await browser.request('POST', url, { payload: { notation: '1d6' } });
      expect(missing.statusCode).toBe(403);
      expect(missing.json().code).toBe('CSRF_TOKEN_MISSING');
      await browser.csrf();
      const forged = await browser.request('POST', url, {
        headers: { 'x-csrf-token': 'forged' },
        payload: { notation: '1d6' },
      });
      expect(forged.statusCode).toBe(403);
      expect(forged.json().code).toBe('CSRF_TOKEN_INVALID');
      const crossSite = await browser.request('POST', url, {
        headers: { 'x-csrf-token': await browser.csrf(), origin: 'https://evil.example' },
        payload: { notation: '1d6' },
      });
      expect(crossSite.statusCode).toBe(403);
      expect(crossSite.json().code).toBe('CROSS_SITE_REQUEST');
      const ok = await browser.request('POST', url, {
        headers: { 'x-csrf-token': await browser.csrf() },
        payload: { notation: '1d6' },
      });
      expect(ok.statusCode).toBe(201);
      // Reads need no token.
      expect((await browser.request('GET', `/rooms/${room.code}`)).statusCode).toBe(200);
      // Bearer room tokens are never sent by a browser on its own, so they need none.
      const bot = await joinAsBot(app, room.code, 'Bot');
      expect((await roll(room.code, bot.headers)).statusCode).toBe(201);
    });

    it('binds the token to the account session when the browser is signed in', async () => {
      const browser = new Browser(app);
      const anonymousToken = await browser.csrf();
      await browser.login(host.user.email);
      expect((await browser.join(room.code, 'Host player')).statusCode).toBe(201);
      const url = `/rooms/${room.code}/rolls`;
      const stale = await browser.request('POST', url, {
        headers: { 'x-csrf-token': anonymousToken },
        payload: { notation: '1d6' },
      });
      expect(stale.statusCode).toBe(403);
      expect(stale.json().code).toBe('CSRF_TOKEN_INVALID');
      const ok = await browser.request('POST', url, {
        headers: { 'x-csrf-token': await browser.csrf() },
        payload: { notation: '1d6' },
      });
      expect(ok.statusCode).toBe(201);
      // Signed in as the host and joined as a player: both.
      const snapshot = await browser.request('GET', `/rooms/${room.code}`);
      expect(snapshot.json().you).toEqual({ player_id: ok.json().player.id, host: true, spectator: false });
      // Host controls through the session cookie go through the account guard's CSRF check.
      const target = await joinAsBot(app, room.code, 'Target');
      const noToken = await browser.request('DELETE', `/rooms/${room.code}/players/${target.id}`);
      expect(noToken.statusCode).toBe(403);
      const kick = await browser.request('DELETE', `/rooms/${room.code}/players/${target.id}`, {
        headers: { 'x-csrf-token': await browser.csrf() },
      });
      expect(kick.statusCode).toBe(204);
    });
  });
});

describe('Dicery room routes: room creation limits', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({
      roomsPerHourPerAccount: 2,
      roomsPerHourPerIp: 3,
      maxOpenRoomsPerHost: 100,
    });
  });
  afterAll(async () => app.close());

  const create = (host: SignedIn, remoteAddress: string) =>
    app.inject({
      method: 'POST',
      url: '/rooms',
      remoteAddress,
      headers: host.headers,
      payload: { name: 'R' },
    });
  const expectLimited = (response: LightMyRequestResponse, detail: string) => {
    expect(response.statusCode).toBe(429);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json()).toMatchObject({ code: 'TOO_MANY_REQUESTS', status: 429 });
    expect(response.json().detail).toContain(detail);
    const retryAfter = Number(response.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
  };

  it('limits room creation per account across addresses, and per address across accounts, with Retry-After', async () => {
    const alice = await signIn(app);
    const bob = await signIn(app);
    expect((await create(alice, '203.0.113.1')).statusCode).toBe(201);
    expect((await create(alice, '203.0.113.1')).statusCode).toBe(201);
    // Alice's third room in the hour is refused from any address.
    expectLimited(await create(alice, '203.0.113.2'), 'Too many rooms created;');
    // 203.0.113.1 made two rooms; a third from it (Bob's) is its last, a fourth is refused.
    expect((await create(bob, '203.0.113.1')).statusCode).toBe(201);
    expectLimited(await create(bob, '203.0.113.1'), 'from this address');
    // Bob himself is not limited elsewhere (the refused attempt did not count against him).
    expect((await create(bob, '203.0.113.3')).statusCode).toBe(201);
  });

  it('caps the rooms one host has open (409) until one is closed', async () => {
    const capped = await buildTestServer({ maxOpenRoomsPerHost: 2 });
    try {
      const host = await signIn(capped);
      const first = await createRoom(capped, host);
      await createRoom(capped, host);
      const refused = await capped.inject({
        method: 'POST',
        url: '/rooms',
        headers: host.headers,
        payload: { name: 'Third' },
      });
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toMatchObject({ code: 'TOO_MANY_OPEN_ROOMS', status: 409 });
      // Another host has their own allowance; closing a room frees one.
      await createRoom(capped, await signIn(capped));
      const close = await capped.inject({
        method: 'DELETE',
        url: `/rooms/${first.code}`,
        headers: host.headers,
      });
      expect(close.statusCode).toBe(204);
      await createRoom(capped, host);
    } finally {
      await capped.close();
    }
  });
});

describe.each(engines)('MAX_OPEN_ROOMS_PER_HOST under concurrency ($name)', ({ name }) => {
  // Counted and inserted in one transaction holding the host's account row lock: parallel
  // creations (and hand-overs) cannot all read "one below the cap" and all insert.
  let app: FastifyInstance;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({
      databaseUrl: database.url,
      maxOpenRoomsPerHost: 3,
      roomsPerHourPerAccount: 1000,
      roomsPerHourPerIp: 1000,
      roomJoinsPerMinute: 1000,
    });
  });
  afterAll(async () => {
    await app.close();
    await drop();
  });

  const openRooms = async (host: SignedIn) =>
    (await app.inject({ method: 'GET', url: '/rooms', headers: host.headers }))
      .json()
      .items.filter((room: { state: string }) => room.state === 'open').length;

  it('ten parallel creations at a cap of 3 make exactly 3 rooms', async () => {
    const host = await signIn(app);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        app.inject({ method: 'POST', url: '/rooms', headers: host.headers, payload: { name: `R${i}` } }),
      ),
    );
    const codes = answers.map((answer) => answer.statusCode).sort();
    expect(codes.filter((code) => code === 201)).toHaveLength(3);
    expect(codes.filter((code) => code === 409)).toHaveLength(7);
    expect(await openRooms(host)).toBe(3);
  });

  it('D3: a host at the cap learns of it only with a right code; a closed room is a wrong code', async () => {
    const taker = await signIn(app);
    for (const i of [1, 2, 3]) await createRoom(app, taker, `Mine ${i}`);
    const giver = await signIn(app);
    const room = await createRoom(app, giver);
    const closed = await createRoom(app, giver);
    const issue = async (code: string) =>
      (await app.inject({ method: 'POST', url: `/rooms/${code}/host`, headers: giver.headers })).json()
        .transfer_code as string;
    const transferCode = await issue(room.code);
    const closedCode = await issue(closed.code);
    expect(
      (await app.inject({ method: 'DELETE', url: `/rooms/${closed.code}`, headers: giver.headers }))
        .statusCode,
    ).toBe(204);
    const accept = (code: string, transfer: string) =>
      app.inject({
        method: 'POST',
        url: `/rooms/${code}/host/accept`,
        headers: taker.headers,
        payload: { transfer_code: transfer },
      });
    // A wrong code on a live room, a closed room and a missing one: one answer, whatever the cap.
    for (const answer of [
      await accept(room.code, 'AAAA-BBBB-CCCC'),
      await accept(closed.code, closedCode),
      await accept('ZZZZZZZZ', transferCode),
    ]) {
      expect(answer.statusCode).toBe(400);
      expect(answer.json().code).toBe('TRANSFER_CODE_INVALID');
    }
    // The right code meets the cap: refused, and the code is not spent by the refusal.
    const refused = await accept(room.code, transferCode);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe('TOO_MANY_OPEN_ROOMS');
    const other = await signIn(app);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/host/accept`,
          headers: other.headers,
          payload: { transfer_code: transferCode },
        })
      ).statusCode,
    ).toBe(200);
  });

  it('hand-overs accepted in parallel with creations stay within the cap', async () => {
    const taker = await signIn(app);
    const givers = await Promise.all([signIn(app), signIn(app), signIn(app)]);
    const transfers = await Promise.all(
      givers.map(async (giver) => {
        const room = await createRoom(app, giver);
        const issued = await app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/host`,
          headers: giver.headers,
        });
        return { code: room.code, transferCode: issued.json().transfer_code as string };
      }),
    );
    const answers = await Promise.all([
      ...transfers.map(({ code, transferCode }) =>
        app.inject({
          method: 'POST',
          url: `/rooms/${code}/host/accept`,
          headers: taker.headers,
          payload: { transfer_code: transferCode },
        }),
      ),
      ...[1, 2, 3].map((i) =>
        app.inject({ method: 'POST', url: '/rooms', headers: taker.headers, payload: { name: `T${i}` } }),
      ),
    ]);
    const won = answers.filter((answer) => answer.statusCode === 200 || answer.statusCode === 201);
    expect(won).toHaveLength(3);
    for (const answer of answers) {
      if (answer.statusCode >= 400) expect(answer.json().code).toBe('TOO_MANY_OPEN_ROOMS');
    }
    expect(await openRooms(taker)).toBe(3);
  });
});

describe('Dicery room routes: join and roll rate limits, insecure cookies', () => {
  let app: FastifyInstance;
  let host: SignedIn;
  beforeAll(async () => {
    app = await buildTestServer({
      roomJoinsPerMinute: 3,
      roomRollsPerMinute: 2,
      roomRollsPerMinutePerIp: 3,
      cookieSecure: false,
    });
    host = await signIn(app);
  });
  afterAll(async () => app.close());

  it('limits join attempts per client IP, failed ones included, with Retry-After', async () => {
    const room = await createRoom(app, host);
    const from = (remoteAddress: string, code: string, player: string) =>
      app.inject({
        method: 'POST',
        url: `/rooms/${code}/join`,
        remoteAddress,
        payload: { player, transport: 'bearer' },
      });
    expect((await from('203.0.113.7', 'ZZZZZZZZ', 'Guess')).statusCode).toBe(404);
    expect((await from('203.0.113.7', 'YYYYYYYY', 'Guess')).statusCode).toBe(404);
    expect((await from('203.0.113.7', room.code, 'Ok')).statusCode).toBe(201);
    const limited = await from('203.0.113.7', room.code, 'Late');
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe('TOO_MANY_REQUESTS');
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Limited before the room is even looked up: unknown codes get 429 too, not 404.
    expect((await from('203.0.113.7', 'ZZZZZZZZ', 'Guess')).statusCode).toBe(429);
    // Another address is not affected.
    expect((await from('198.51.100.1', room.code, 'Other')).statusCode).toBe(201);
  });

  it('I5: one IPv6 /48 does not get a join allowance per /64 to guess room codes with', async () => {
    // 2001:db8:d1ce::/48 holds 65 536 /64s; each counted alone, the /48 gets 65 536 × ROOM_JOINS_PER_MINUTE
    // guesses a minute (1.3 million at the default 20): with 1 000 open rooms, one found every ≈ 11 hours.
    const answers: number[] = [];
    for (let subnet = 1; subnet <= 40; subnet += 1) {
      const response = await app.inject({
        method: 'POST',
        url: '/rooms/ZZZZZZZZ/join',
        remoteAddress: `2001:db8:d1ce:${subnet.toString(16)}::1`,
        payload: { player: 'Guess', transport: 'bearer' },
      });
      answers.push(response.statusCode);
    }
    // A per-/48 allowance (as the login breaker and the event-stream caps have) refuses most of them.
    expect(answers.filter((status) => status === 429).length).toBeGreaterThan(20);
  });

  it("D3: a hand-over attempt shares the joins' per-/48 budget and answers a missing room as a wrong code", async () => {
    // Counted per /64 alone, and answered 404 for a missing room, the hand-over let any account with
    // an IPv6 /48 test ≈ 1.3 million room codes a minute (red-team 2026-12g D3).
    const answers: { status: number; code: string }[] = [];
    for (let subnet = 1; subnet <= 40; subnet += 1) {
      const response = await app.inject({
        method: 'POST',
        url: '/rooms/ZZZZZZZZ/host/accept',
        remoteAddress: `2001:db8:acce:${subnet.toString(16)}::1`,
        headers: host.headers,
        payload: { transfer_code: 'AAAA-BBBB-CCCC' },
      });
      answers.push({ status: response.statusCode, code: response.json().code });
    }
    expect(answers.filter(({ status }) => status === 429).length).toBeGreaterThan(20);
    for (const answer of answers.filter(({ status }) => status !== 429)) {
      expect(answer).toEqual({ status: 400, code: 'TRANSFER_CODE_INVALID' });
    }
    // The same budget as joins: the /48 that spent it on hand-overs cannot join either.
    const join = await app.inject({
      method: 'POST',
      url: '/rooms/ZZZZZZZZ/join',
      remoteAddress: '2001:db8:acce:ff::1',
      payload: { player: 'Guess', transport: 'bearer' },
    });
    expect(join.statusCode).toBe(429);
  });

  it('limits rolls per player, with Retry-After', async () => {
    const room = await createRoom(app, host);
    const player = await app.inject({
      method: 'POST',
      url: `/rooms/${room.code}/join`,
      remoteAddress: '192.0.2.80',
      payload: { player: 'Roller', transport: 'bearer' },
    });
    const headers = { authorization: `Bearer ${player.json().access_token}` };
    const roll = () =>
      app.inject({ method: 'POST', url: `/rooms/${room.code}/rolls`, headers, payload: { notation: '1d6' } });
    expect((await roll()).statusCode).toBe(201);
    expect((await roll()).statusCode).toBe(201);
    const limited = await roll();
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe('TOO_MANY_REQUESTS');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('limits rolls per client IP across players, with Retry-After', async () => {
    const room = await createRoom(app, host);
    const join = async (player: string, remoteAddress: string) => {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        remoteAddress,
        payload: { player, transport: 'bearer' },
      });
      return { authorization: `Bearer ${response.json().access_token}` };
    };
    const roll = (headers: Record<string, string>, remoteAddress: string) =>
      app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/rolls`,
        remoteAddress,
        headers,
        payload: { notation: '1d6' },
      });
    const [first, second] = [await join('First', '192.0.2.90'), await join('Second', '192.0.2.90')];
    expect((await roll(first, '192.0.2.90')).statusCode).toBe(201);
    expect((await roll(first, '192.0.2.90')).statusCode).toBe(201);
    expect((await roll(second, '192.0.2.90')).statusCode).toBe(201);
    // A fresh player from the same address gets no fresh allowance.
    const limited = await roll(second, '192.0.2.90');
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'TOO_MANY_REQUESTS' });
    expect(limited.json().detail).toContain('from this address');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    const elsewhere = await join('Elsewhere', '192.0.2.91');
    expect((await roll(elsewhere, '192.0.2.91')).statusCode).toBe(201);
  });

  it('uses the plain cookie prefix, without Secure, when cookies are not secure', async () => {
    const room = await createRoom(app, host);
    const response = await app.inject({
      method: 'POST',
      url: `/rooms/${room.code}/join`,
      remoteAddress: '192.0.2.44',
      payload: { player: 'Dev' },
    });
    expect(response.statusCode).toBe(201);
    const cookie = cookiesOf(response).get(`dicery_room_${room.code}`);
    expect(cookie?.attributes).toEqual(
      expect.arrayContaining(['httponly', 'samesite=lax', `path=/rooms/${room.code}`.toLowerCase()]),
    );
    expect(cookie?.attributes).not.toContain('secure');
    const snapshot = await app.inject({
      method: 'GET',
      url: `/rooms/${room.code}`,
      headers: { cookie: `dicery_room_${room.code}=${cookie?.value}` },
    });
    expect(snapshot.statusCode).toBe(200);
  });
});

describe.each(engines)('POST /rooms/{code}/join: players per room ($name)', ({ name }) => {
  // Joining needs no account, and a present player stays until they leave: without a cap one
  // address (20 joins a minute) could put tens of thousands of players in a room, and every
  // snapshot, join broadcast and heartbeat re-check of that room would carry all of them.
  it('refuses a join beyond MAX_PLAYERS_PER_ROOM with 409 ROOM_FULL, even when the joins race', async () => {
    const database = await createTestDatabaseUrl(name);
    const app = await buildTestServer({
      databaseUrl: database.url,
      maxPlayersPerRoom: 3,
      roomJoinsPerMinute: 1000,
    });
    try {
      const host = await signIn(app, 'user');
      const room = await createRoom(app, host);
      const join = (player: string) =>
        app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/join`,
          payload: { player, transport: 'bearer' },
        });
      const codes = (await Promise.all(['A', 'B', 'C', 'D', 'E', 'F'].map(join))).map((r) => r.statusCode);
      expect(codes.filter((code) => code === 201)).toHaveLength(3);
      const refused = await join('G');
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toMatchObject({ code: 'ROOM_FULL' });
      const snapshot = await app.dicery.rooms.snapshot(room.code);
      expect(snapshot.players).toHaveLength(3);
      // Refused joins wrote no event: the log is the three joins, numbered 1..3.
      expect(snapshot.lastEventId).toBe(3);
      // A seat frees when a player leaves.
      const first = snapshot.players[0];
      if (first === undefined) throw new Error('no player');
      await app.dicery.rooms.leave(room.code, first.id);
      expect((await join('H')).statusCode).toBe(201);
    } finally {
      await app.close();
      await database.drop();
    }
  });

  // Red-team 2026-12g D4: a player who came back once stays present for the seat's 30 days, so
  // whoever had the code kept a room full from one address; the host's only answer was a kick.
  it('D4: one network holds at most MAX_PLAYERS_PER_ROOM_PER_NETWORK players of a room, even when its joins race', async () => {
    const database = await createTestDatabaseUrl(name);
    const app = await buildTestServer({
      databaseUrl: database.url,
      maxPlayersPerRoom: 10,
      maxPlayersPerRoomPerNetwork: 3,
      roomJoinsPerMinute: 1000,
    });
    try {
      const room = await createRoom(app, await signIn(app, 'user'));
      const join = (player: string, remoteAddress: string, transport: 'bearer' | 'cookie' = 'bearer') =>
        app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/join`,
          remoteAddress,
          payload: { player, transport },
        });
      // One IPv4 address: three, whether the joins race or use cookies.
      const raced = await Promise.all(['A', 'B', 'C', 'D', 'E'].map((player) => join(player, '203.0.113.5')));
      expect(raced.filter((answer) => answer.statusCode === 201)).toHaveLength(3);
      const refused = await join('F', '203.0.113.5', 'cookie');
      expect(refused.statusCode).toBe(409);
      expect(refused.json()).toMatchObject({ code: 'TOO_MANY_PLAYERS_FROM_NETWORK', status: 409 });
      // The /64s of one IPv6 /48 are one network.
      const sixes = [];
      for (let i = 1; i <= 4; i++) sixes.push((await join(`Six${i}`, `2001:db8:77:${i}::1`)).statusCode);
      expect(sixes).toEqual([201, 201, 201, 409]);
      // Other networks still join; a player leaving gives its network a place back.
      expect((await join('Other', '198.51.100.9')).statusCode).toBe(201);
      const snapshot = await app.dicery.rooms.snapshot(room.code);
      expect(snapshot.players).toHaveLength(7);
      const first = snapshot.players[0];
      if (first === undefined) throw new Error('no player');
      await app.dicery.rooms.leave(room.code, first.id);
      expect((await join('G', '203.0.113.5')).statusCode).toBe(201);
    } finally {
      await app.close();
      await database.drop();
    }
  });
});

describe('POST /rooms/{code}/join: players whose credentials are dead do not keep a full room full', () => {
  // A bearer player has no seat, so nothing renews its room token: once the longest a room token
  // lasts has passed, it is a ghost. An anonymous script with the code could otherwise fill a room
  // with MAX_PLAYERS_PER_ROOM ghosts for good, and each kick the host answers with is a ban (at
  // most 1000 of them).
  it("D4: a network at its share of a room first lets go of its own ghosts, never another network's", async () => {
    const clock = createTestClock();
    const app = await buildTestServer(
      { maxPlayersPerRoom: 10, maxPlayersPerRoomPerNetwork: 2, roomJoinsPerMinute: 1000 },
      { clock, scheduler: clock },
    );
    try {
      const room = await createRoom(app, await signIn(app));
      const join = (player: string, remoteAddress: string) =>
        app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/join`,
          remoteAddress,
          payload: { player, transport: 'bearer' },
        });
      for (const player of ['X1', 'X2']) expect((await join(player, '203.0.113.8')).statusCode).toBe(201);
      expect((await join('Y1', '198.51.100.8')).statusCode).toBe(201);
      expect((await join('X3', '203.0.113.8')).json().code).toBe('TOO_MANY_PLAYERS_FROM_NETWORK');
      // Past the longest room token, bearer players are ghosts: the network's own give way.
      clock.advance(12 * 3600 * 1000 + 1000);
      expect((await join('X3', '203.0.113.8')).statusCode).toBe(201);
      const players = (await app.dicery.rooms.snapshot(room.code)).players.map((p) => p.name).sort();
      expect(players).toEqual(['X3', 'Y1']);
    } finally {
      await app.close();
    }
  });

  it('a join into a full room first removes players whose credential cannot be alive any more', async () => {
    const clock = createTestClock();
    const app = await buildTestServer(
      { maxPlayersPerRoom: 2, roomJoinsPerMinute: 1000, roomSeatTtl: 24 * 3600 },
      { clock, scheduler: clock },
    );
    try {
      const host = await signIn(app);
      const room = await createRoom(app, host);
      const ghost = await joinAsBot(app, room.code, 'Ghost');
      const seated = new Browser(app);
      expect((await seated.join(room.code, 'Seated')).statusCode).toBe(201);
      // Back with its seat (a seated player who never came back would be a ghost after 12 h too).
      expect((await seated.request('POST', `/rooms/${room.code}/seat`)).statusCode).toBe(200);
      const refused = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player: 'Late', transport: 'bearer' },
      });
      expect(refused.json().code).toBe('ROOM_FULL');
      // Past the longest room token: the bot's credential is dead, the resumed seat (24 h) is not.
      clock.advance(12 * 3600 * 1000 + 1000);
      const late = await joinAsBot(app, room.code, 'Late');
      const players = (await app.dicery.rooms.snapshot(room.code)).players.map((p) => p.name).sort();
      expect(players).toEqual(['Late', 'Seated']);
      const events = await app.dicery.rooms.eventsAfter(room.code, 0);
      expect(events.filter((e) => e.type === 'player_left').map((e) => e.data)).toEqual([
        { player: { id: ghost.id, name: 'Ghost' }, reason: 'expired' },
      ]);
      // Past the seat's lifetime too: the unused seat frees its place, and Late is a ghost by now.
      clock.advance(24 * 3600 * 1000);
      await joinAsBot(app, room.code, 'Later');
      expect((await app.dicery.rooms.snapshot(room.code)).players.map((p) => p.name)).toEqual(['Later']);
      const left = (await app.dicery.rooms.eventsAfter(room.code, 0)).filter((e) => e.type === 'player_left');
      expect(left.map((e) => (e.type === 'player_left' ? e.data.player.name : '')).sort()).toEqual([
        'Ghost',
        'Late',
        'Seated',
      ]);
      expect(late.id).toBeDefined();
    } finally {
      await app.close();
    }
  });
});

describe.each(engines)('POST /rooms/{code}/join: cookie joins that never come back ($name)', ({ name }) => {
  // A join without `transport` gets a seat valid ROOM_SEAT_TTL (30 days). A script that throws the
  // cookies away used to keep a full room full for that long: only an expired seat freed a place.
  const HOUR = 3600 * 1000;
  const DAY = 24 * HOUR;

  it('frees the seats nobody came back to once the join token is dead; a player who came back stays', async () => {
    const database = await createTestDatabaseUrl(name);
    const clock = createTestClock();
    const app = await buildTestServer(
      // Idle rooms close after 14 days by default; this one must live through the test's weeks.
      {
        databaseUrl: database.url,
        maxPlayersPerRoom: 4,
        roomJoinsPerMinute: 1000,
        roomIdleTtl: 60 * 24 * 3600,
      },
      { clock, scheduler: clock },
    );
    try {
      const host = await signIn(app);
      const room = await createRoom(app, host);
      // The script: no Origin, no transport, and the seat cookie dropped on the floor.
      const scripted = async (player: string) => {
        const response = await app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/join`,
          payload: { player },
        });
        expect(response.statusCode, response.body).toBe(201);
        return response.json().player.id as string;
      };
      const bots = [await scripted('Bot 1'), await scripted('Bot 2')];
      // Two people: one comes back an hour later (a seat resume), one rolls.
      const back = new Browser(app);
      expect((await back.join(room.code, 'Back')).statusCode).toBe(201);
      const roller = new Browser(app);
      expect((await roller.join(room.code, 'Roller')).statusCode).toBe(201);
      const rolled = await roller.request('POST', `/rooms/${room.code}/rolls`, {
        headers: { 'x-csrf-token': await roller.csrf() },
        payload: { notation: '1d6' },
      });
      expect(rolled.statusCode, rolled.body).toBe(201);
      clock.advance(HOUR);
      expect((await back.request('POST', `/rooms/${room.code}/seat`)).statusCode).toBe(200);
      const join = (player: string) =>
        app.inject({ method: 'POST', url: `/rooms/${room.code}/join`, payload: { player } });
      const present = async () => (await app.dicery.rooms.snapshot(room.code)).players.map((p) => p.name);

      // Until the join's room token (12 h at most) may still be alive, every seat holds.
      clock.advance(11 * HOUR - 1000);
      expect((await join('Early')).json().code).toBe('ROOM_FULL');
      clock.advance(1000);
      // Before: ROOM_FULL until the bots' seats expired, 30 days after they joined.
      const late = await join('Late');
      expect(late.statusCode, late.body).toBe(201);
      expect((await present()).sort()).toEqual(['Back', 'Late', 'Roller']);
      const left = (await app.dicery.rooms.eventsAfter(room.code, 0)).flatMap((event) =>
        event.type === 'player_left' ? [event.data] : [],
      );
      expect(left.map((data) => data.player.id).sort()).toEqual([...bots].sort());
      expect(left.map((data) => data.reason)).toEqual(['expired', 'expired']);

      // Weeks on, in a full room again: those who came back keep their places (their seats last
      // 30 days), the never-returned are let go.
      expect((await join('Filler')).statusCode).toBe(201);
      clock.advance(28 * DAY);
      expect((await join('Newcomer')).statusCode).toBe(201);
      expect((await present()).sort()).toEqual(['Back', 'Newcomer', 'Roller']);
    } finally {
      await app.close();
      await database.drop();
    }
  });
});

describe('Dicery room routes: player names that pose as others (red-team F8)', () => {
  let app: FastifyInstance;
  let host: SignedIn;

  beforeAll(async () => {
    app = await buildTestServer({ roomJoinsPerMinute: 1000 });
    host = await signIn(app);
  });
  afterAll(async () => app.close());

  const join = (code: string, player: string) =>
    app.inject({ method: 'POST', url: `/rooms/${code}/join`, payload: { player, transport: 'bearer' } });

  it.each([
    ['Cyrillic А', '\u0410lice'],
    ['Cyrillic і', 'Al\u0456ce'],
    ['Cyrillic е', 'Alic\u0435'],
    ['spaced out', 'A l i c e'],
    ['full width', '\uFF21\uFF4C\uFF49\uFF43\uFF45'],
  ])('refuses %s next to Alice (409 PLAYER_NAME_TAKEN)', async (_label, player) => {
    const room = await createRoom(app, host);
    await joinAsBot(app, room.code, 'Alice');
    const response = await join(room.code, player);
    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('PLAYER_NAME_TAKEN');
  });

  it.each(['Host', 'gm', 'ADMIN', 'Server', '\u041Dost', 'G M'])(
    'refuses the reserved name %j (400)',
    async (player) => {
      const room = await createRoom(app, host);
      const response = await join(room.code, player);
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'player' }] });
    },
  );

  it('still admits different names, and names that only contain a reserved word', async () => {
    const room = await createRoom(app, host);
    for (const player of ['Alice', 'Alicia', 'Hostess', 'GM Pat']) {
      expect((await join(room.code, player)).statusCode).toBe(201);
    }
  });
});

// Red-team F1 (moved from test/redteam): the size of what one roll records, and so of every read.
describe('Dicery room routes: roll results are bounded in size', () => {
  /** A generous ceiling for one roll's JSON: ten times a 100-die roll without rerolls or explosions. */
  const MAX_ROLL_BYTES = 32 * 1024;
  /** What a page load (`GET /rooms/{code}`, 20 recent rolls) may weigh at most. */
  const MAX_SNAPSHOT_BYTES = 1024 * 1024;
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildTestServer({ roomRollsPerMinute: 10_000, roomRollsPerMinutePerIp: 10_000 });
  });
  afterAll(async () => app.close());

  const rollWorstCase = (code: string, player: JoinedPlayer) =>
    app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls`,
      headers: player.headers,
      payload: { notation: '100d2r1!' },
    });

  it('one roll records a bounded number of dice', async () => {
    const room = await createRoom(app, await signIn(app));
    const response = await rollWorstCase(room.code, await joinAsBot(app, room.code, 'Mallory'));
    expect(response.statusCode).toBe(201);
    const terms = (response.json() as { terms: { dice?: unknown[] }[] }).terms;
    expect(terms.reduce((sum, term) => sum + (term.dice?.length ?? 0), 0)).toBeLessThanOrEqual(1000);
    expect(response.body.length).toBeLessThanOrEqual(MAX_ROLL_BYTES);
  });

  it("a room's snapshot stays small after a player's twenty worst-case rolls", async () => {
    const room = await createRoom(app, await signIn(app));
    const mallory = await joinAsBot(app, room.code, 'Mallory');
    const victim = await joinAsBot(app, room.code, 'Victor');
    for (let i = 0; i < 20; i += 1) expect((await rollWorstCase(room.code, mallory)).statusCode).toBe(201);
    const snapshot = await app.inject({ url: `/rooms/${room.code}`, headers: victim.headers });
    expect(snapshot.statusCode).toBe(200);
    expect(snapshot.body.length).toBeLessThanOrEqual(MAX_SNAPSHOT_BYTES);
  });
});

describe.each(engines)('ROOM_MAX_EVENTS: what one room holds ($name)', ({ name }) => {
  // Rolls are rate limited per player and per address, but a room in use grew for as long as it
  // lived (red-team 2026-12g D6): its log, its replay, its export and its deletion with it.
  it('refuses rolls, joins and host changes past it with 409 ROOM_EVENT_LIMIT, even when they race; leaving and closing still work', async () => {
    const database = await createTestDatabaseUrl(name);
    const app = await buildTestServer({
      databaseUrl: database.url,
      roomMaxEvents: 100,
      roomRollsPerMinute: 10_000,
      roomRollsPerMinutePerIp: 10_000,
      roomJoinsPerMinute: 1000,
    });
    try {
      const host = await signIn(app, 'user');
      const room = await createRoom(app, host);
      const alice = await joinAsBot(app, room.code, 'Alice');
      const bob = await joinAsBot(app, room.code, 'Bob');
      const roll = (player: JoinedPlayer) =>
        app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/rolls`,
          headers: player.headers,
          payload: { notation: '1d6' },
        });
      // Events 1–2 are the joins; 96 rolls bring the room to 98, then ten race for the last two.
      for (let i = 0; i < 96; i += 1) expect((await roll(alice)).statusCode).toBe(201);
      const racing = await Promise.all(Array.from({ length: 10 }, (_, i) => roll(i % 2 === 0 ? alice : bob)));
      const statuses = racing.map((answer) => answer.statusCode);
      expect(statuses.filter((status) => status === 201)).toHaveLength(2);
      expect(statuses.filter((status) => status === 409)).toHaveLength(8);
      const refused = racing.find((answer) => answer.statusCode === 409);
      expect(refused?.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(refused?.json()).toMatchObject({ code: 'ROOM_EVENT_LIMIT', status: 409 });
      const join = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player: 'Carol', transport: 'bearer' },
      });
      expect(join.statusCode).toBe(409);
      expect(join.json()).toMatchObject({ code: 'ROOM_EVENT_LIMIT' });
      const rename = await app.inject({
        method: 'PATCH',
        url: `/rooms/${room.code}`,
        headers: host.headers,
        payload: { name: 'Renamed' },
      });
      expect(rename.statusCode).toBe(409);
      // Refused changes rolled back whole: no number was used, no player added, no rename.
      const snapshot = await app.dicery.rooms.snapshot(room.code);
      expect(snapshot.lastEventId).toBe(100);
      expect(snapshot.players.map((player) => player.name).sort()).toEqual(['Alice', 'Bob']);
      // What stays possible in a full room: leaving, then closing.
      expect(
        (await app.inject({ method: 'DELETE', url: `/rooms/${room.code}/players/me`, headers: bob.headers }))
          .statusCode,
      ).toBe(204);
      expect(
        (await app.inject({ method: 'DELETE', url: `/rooms/${room.code}`, headers: host.headers }))
          .statusCode,
      ).toBe(204);
    } finally {
      await app.close();
      await database.drop();
    }
  });
});
