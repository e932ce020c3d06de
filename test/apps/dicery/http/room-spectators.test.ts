import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRESENCE_COALESCE_MS } from '../../../../src/apps/dicery/core/presence.js';
import { SPECTATOR_TOKEN_PREFIX } from '../../../../src/apps/dicery/core/spectator-links.js';
import { LINK_DISPLACEMENT_INTERVAL_MS } from '../../../../src/apps/dicery/http/room-events-route.js';
import type { DiceryTables } from '../../../../src/apps/dicery/storage/tables.js';
import { buildTestServer, createTestClock, type TestClock } from '../../../../src/testing.js';
import { type SignedIn, signIn } from '../../../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../../../support/databases.js';
import { listenOnLoopback } from '../../../support/listen.js';
import { Browser } from '../../../support/room-browser.js';
import { createRoom, type JoinedPlayer, joinAsBot } from '../../../support/rooms.js';
import { openSse, type SseStream } from '../../../support/sse-client.js';

const WATCH_COOKIE = '__Secure-dicery_watch_';
const HEARTBEAT_SECONDS = 60;
/** MAX_WATCH_LINKS_PER_ROOM and MAX_SPECTATORS_PER_WATCH_LINK of the suite's server. */
const MAX_LINKS = 6;
const MAX_SPECTATORS = 4;
/** ROOM_READS_PER_MINUTE and ROOM_READS_PER_MINUTE_PER_WATCH_LINK of the servers here. */
const SPECTATOR_READS = 8;
const LINK_READS = 20;

const NO_ROOM_LIMITS = {
  roomJoinsPerMinute: 10_000,
  roomRollsPerMinute: 10_000,
  roomRollsPerMinutePerIp: 10_000,
  roomsPerHourPerAccount: 10_000,
  roomsPerHourPerIp: 10_000,
  maxOpenRoomsPerHost: 10_000,
  maxStreamsPerAccount: 10_000,
  maxStreamsPerIp: 10_000,
  roomHeartbeatInterval: HEARTBEAT_SECONDS,
  roomReadsPerMinute: SPECTATOR_READS,
  roomReadsPerMinutePerWatchLink: LINK_READS,
} as const;

/**
 * Spectators (issue 14, item 8): a host-made, revocable, read-only watch link. A spectator sees
 * what other players see (secret rolls as placeholders) over every channel, is never a player
 * (no name, no roll, not in the list or in presence) and is never taken for the host.
 */
describe.each(engines)('Dicery spectators ($name)', ({ name }) => {
  let app: FastifyInstance;
  let clock: TestClock;
  let base: string;
  let host: SignedIn;
  let drop: () => Promise<void> = async () => {};
  const open: SseStream[] = [];

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    clock = createTestClock();
    app = await buildTestServer(
      {
        ...NO_ROOM_LIMITS,
        databaseUrl: database.url,
        maxWatchLinksPerRoom: MAX_LINKS,
        maxSpectatorsPerWatchLink: MAX_SPECTATORS,
      },
      { clock, scheduler: clock },
    );
    base = await listenOnLoopback(app);
    host = await signIn(app);
  });
  afterAll(async () => {
    for (const stream of open) stream.close();
    await app?.close();
    await drop();
  });

  async function table() {
    const room = await createRoom(app, host);
    const pat = await joinAsBot(app, room.code, 'Pat');
    const sam = await joinAsBot(app, room.code, 'Sam');
    return { code: room.code, pat, sam };
  }

  const createLink = async (code: string, as: { headers: Record<string, string> } = host) => {
    const response = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/spectator-links`,
      headers: as.headers,
    });
    return response;
  };

  /** A browser that exchanged a fresh watch link of `code` for its watch cookie. */
  async function spectator(code: string): Promise<{ browser: Browser; linkId: string; token: string }> {
    const created = await createLink(code);
    expect(created.statusCode, created.body).toBe(201);
    const { id, token } = created.json() as { id: string; token: string };
    const browser = new Browser(app);
    const exchanged = await browser.request('POST', `/rooms/${code}/watch`, { payload: { token } });
    expect(exchanged.statusCode, exchanged.body).toBe(200);
    return { browser, linkId: id, token };
  }

  const follow = async (code: string, headers: Record<string, string>, query = '') => {
    const stream = await openSse(`${base}/rooms/${code}/events${query}`, headers);
    open.push(stream);
    return stream;
  };
  const watchHeaders = (browser: Browser, code: string) => ({
    cookie: browser.cookieHeader(`/rooms/${code}/events`),
  });

  const roll = async (code: string, player: JoinedPlayer, body: Record<string, unknown>) => {
    const response = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls`,
      headers: player.headers,
      payload: body,
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as { id: number; total: number };
  };

  it('exchanges the link for an HttpOnly room-scoped cookie; the spectator is no player and not the host', async () => {
    const { code, pat } = await table();
    const { browser } = await spectator(code);
    const cookie = browser.cookies.get(`${WATCH_COOKIE}${code}`);
    expect(cookie?.path).toBe(`/rooms/${code}`);

    const snapshot = await browser.request('GET', `/rooms/${code}`);
    expect(snapshot.statusCode, snapshot.body).toBe(200);
    const body = snapshot.json();
    expect(body.you).toEqual({ player_id: null, host: false, spectator: true });
    expect(body.players.map((p: { name: string }) => p.name).sort()).toEqual(['Pat', 'Sam']);

    // Presence: the spectator's stream is counted as a spectator, never as a player or the host.
    const watching = await follow(code, watchHeaders(browser, code), '?presence=true');
    expect(watching.status).toBe(200);
    const patStream = await follow(code, pat.headers, '?presence=true');
    // Pat came online inside the window the spectator's arrival opened: announced at its end.
    clock.advance(PRESENCE_COALESCE_MS);
    await patStream.next((m) => m.event === 'presence' && m.data.player_id === pat.id);
    await watching.next((m) => m.event === 'presence' && m.data.player_id === pat.id);
    const online = (await app.inject({ method: 'GET', url: `/rooms/${code}`, headers: pat.headers })).json()
      .online;
    expect(online).toEqual({ player_ids: [pat.id], host: false, spectators: 1 });
    // The spectator's own stream never announced a `presence` for it (no host, no player).
    expect(watching.messages.filter((m) => m.event === 'presence').map((m) => m.data.player_id)).toEqual([
      pat.id,
    ]);
    watching.close();
    // Once the server has seen the close, the window's end announces it.
    const onlineNow = async () =>
      (await app.inject({ method: 'GET', url: `/rooms/${code}`, headers: pat.headers })).json().online;
    await expect.poll(async () => (await onlineNow()).spectators).toBe(0);
    clock.advance(PRESENCE_COALESCE_MS);
    await patStream.next((m) => m.event === 'spectators' && m.data.count === 0);
  });

  it('cannot roll, leave or ask for a claim code (403 SPECTATOR_READ_ONLY)', async () => {
    const { code } = await table();
    const { browser } = await spectator(code);
    const csrf = await browser.csrf();
    for (const [method, url, payload] of [
      ['POST', `/rooms/${code}/rolls`, { notation: '1d20' }],
      ['DELETE', `/rooms/${code}/players/me`, undefined],
      ['POST', `/rooms/${code}/players/me/claim-code`, undefined],
    ] as const) {
      const response = await browser.request(method, url, {
        headers: { 'x-csrf-token': csrf },
        ...(payload === undefined ? {} : { payload }),
      });
      expect(response.statusCode, `${method} ${url}`).toBe(403);
      expect(response.json().code).toBe('SPECTATOR_READ_ONLY');
    }
    expect((await app.dicery.rooms.eventsAfter(code, 0)).filter((e) => e.type === 'roll')).toEqual([]);
  });

  it('takes no name and no seat: names stay free and spectators do not fill the room', async () => {
    const room = await createRoom(app, host);
    const watchers = [await spectator(room.code), await spectator(room.code)];
    for (const { browser } of watchers) {
      expect(await browser.request('GET', `/rooms/${room.code}`).then((r) => r.statusCode)).toBe(200);
    }
    expect(await app.dicery.roomStore.listPresentPlayers(room.code)).toEqual([]);
    // A watching browser joins like anyone else, under any name, and then is a player.
    const [first] = watchers;
    const joined = await first?.browser.join(room.code, 'Spectator');
    expect(joined?.statusCode, joined?.body).toBe(201);
    const snapshot = await first?.browser.request('GET', `/rooms/${room.code}`);
    expect(snapshot?.json().you).toMatchObject({ player_id: joined?.json().player.id, spectator: false });
  });

  it('sees a secret roll only as its placeholder: stream, replay, snapshot, history, exports, log', async () => {
    const { code, pat } = await table();
    const { browser } = await spectator(code);
    const headers = watchHeaders(browser, code);
    const live = await follow(code, headers);
    const hostLive = await follow(code, host.headers);
    const before = (await app.inject({ method: 'GET', url: `/rooms/${code}`, headers: pat.headers })).json()
      .last_event_id as number;
    const secret = await roll(code, pat, { notation: '3d6+40', label: 'Insight QZX', visibility: 'host' });
    const open = await roll(code, pat, { notation: '1d4+70' });

    await live.next((m) => m.id === String(open.id));
    const placeholder = live.messages.find((m) => m.id === String(secret.id));
    expect(placeholder?.data).toMatchObject({ hidden: true, visibility: 'host', player: { name: 'Pat' } });
    // The host's stream has it in full; the spectator's carries no byte of it.
    expect((await hostLive.next((m) => m.id === String(secret.id))).data).toMatchObject({
      label: 'Insight QZX',
    });
    const leaks = (text: string) =>
      ['Insight QZX', '3d6+40', `"total":${secret.total}`].filter((needle) => text.includes(needle));
    expect(leaks(JSON.stringify(live.messages))).toEqual([]);

    // Replay with Last-Event-ID.
    const replay = await follow(code, { ...headers, 'last-event-id': String(before) });
    await replay.next((m) => m.id === String(open.id));
    expect(leaks(JSON.stringify(replay.messages))).toEqual([]);
    expect(replay.messages.find((m) => m.id === String(secret.id))?.data.hidden).toBe(true);

    for (const url of [
      `/rooms/${code}`,
      `/rooms/${code}/rolls`,
      `/rooms/${code}/rolls/export?format=json`,
      `/rooms/${code}/rolls/export?format=csv`,
      `/rooms/${code}/log`,
    ]) {
      const response = await browser.request('GET', url);
      expect(response.statusCode, url).toBe(200);
      expect(leaks(response.body), url).toEqual([]);
      expect(response.body, url).toContain('Pat');
    }
    const history = (await browser.request('GET', `/rooms/${code}/rolls`)).json().items as {
      id: number;
      hidden?: boolean;
    }[];
    expect(history.find((item) => item.id === secret.id)?.hidden).toBe(true);
    // The log holds a commitment only, and gives the spectator exactly what a player gets.
    const playerLog = await app.inject({ method: 'GET', url: `/rooms/${code}/log`, headers: pat.headers });
    expect((await browser.request('GET', `/rooms/${code}/log`)).body).toBe(playerLog.body);

    // Once revealed, the spectator sees it like everyone.
    const reveal = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls/${secret.id}/reveal`,
      headers: host.headers,
    });
    expect(reveal.statusCode).toBe(201);
    const after = (await browser.request('GET', `/rooms/${code}/rolls`)).json().items as {
      id: number;
      label?: string;
    }[];
    expect(after.find((item) => item.id === secret.id)?.label).toBe('Insight QZX');
  });

  it('revoking a link refuses it at once and ends its open streams; other links keep working', async () => {
    const { code, pat } = await table();
    const revoked = await spectator(code);
    const kept = await spectator(code);
    const doomed = await follow(code, watchHeaders(revoked.browser, code));
    const survivor = await follow(code, watchHeaders(kept.browser, code));
    const playerStream = await follow(code, pat.headers);

    const list = await app.inject({
      method: 'GET',
      url: `/rooms/${code}/spectator-links`,
      headers: host.headers,
    });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toMatchObject({ total: 2, limit: 20, offset: 0 });
    expect(list.body).not.toContain(revoked.token);
    expect((list.json().items as { id: string }[]).map((link) => link.id).sort()).toEqual(
      [revoked.linkId, kept.linkId].sort(),
    );

    const revoke = await app.inject({
      method: 'DELETE',
      url: `/rooms/${code}/spectator-links/${revoked.linkId}`,
      headers: host.headers,
    });
    expect(revoke.statusCode).toBe(204);
    await doomed.ended;
    expect(doomed.messages.at(-1)).toMatchObject({ event: 'stream_end', data: { reason: 'link_revoked' } });

    for (const response of [
      await revoked.browser.request('GET', `/rooms/${code}`),
      await revoked.browser.request('GET', `/rooms/${code}/rolls`),
      await revoked.browser.request('POST', `/rooms/${code}/watch`, { payload: { token: revoked.token } }),
    ]) {
      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('SPECTATOR_LINK_INVALID');
    }
    const reopened = await follow(code, watchHeaders(revoked.browser, code));
    expect(reopened.status).toBe(401);
    expect(reopened.problem?.code).toBe('SPECTATOR_LINK_INVALID');

    // The other link and the players are untouched.
    const rolled = await roll(code, pat, { notation: '1d6' });
    await survivor.next((m) => m.id === String(rolled.id));
    await playerStream.next((m) => m.id === String(rolled.id));
    expect((await kept.browser.request('GET', `/rooms/${code}`)).statusCode).toBe(200);

    const again = await app.inject({
      method: 'DELETE',
      url: `/rooms/${code}/spectator-links/${revoked.linkId}`,
      headers: host.headers,
    });
    expect(again.statusCode).toBe(404);
    expect(again.json().code).toBe('SPECTATOR_LINK_NOT_FOUND');
  });

  it("ends a revoked link's stream at the next heartbeat even when its event never arrived", async () => {
    const { code } = await table();
    const { browser, linkId } = await spectator(code);
    const stream = await follow(code, watchHeaders(browser, code));
    // The row goes without the event, as when the bus lost the revocation's message.
    expect(await app.dicery.roomStore.spectators.deleteLink(code, linkId)).toBe(true);
    clock.advance(HEARTBEAT_SECONDS * 1000);
    await stream.ended;
    expect(stream.messages.at(-1)).toMatchObject({ event: 'stream_end', data: { reason: 'link_revoked' } });
  });

  it('closing the room ends spectator streams; the link answers 404 like the room, the credential 401', async () => {
    const { code } = await table();
    const { browser, token } = await spectator(code);
    const stream = await follow(code, watchHeaders(browser, code));
    expect(
      (await app.inject({ method: 'DELETE', url: `/rooms/${code}`, headers: host.headers })).statusCode,
    ).toBe(204);
    await stream.ended;
    expect(stream.messages.at(-1)?.event).toBe('room_closed');
    // The spectator's credential proves nothing now, the answer any made-up one gets: whether a
    // room exists is never told to a credential that proves nothing (no code oracle).
    expect((await browser.request('GET', `/rooms/${code}`)).json().code).toBe('SPECTATOR_LINK_INVALID');
    const exchange = await new Browser(app).request('POST', `/rooms/${code}/watch`, { payload: { token } });
    expect(exchange.statusCode).toBe(404);
    // A closed room's links and spectators can never be used again: their rows are gone.
    expect(await sessionIdsOf(code)).toEqual([]);
    expect(await app.dicery.roomStore.spectators.countLinks(code)).toBe(0);
  });

  it(`holds at most MAX_WATCH_LINKS_PER_ROOM (${MAX_LINKS} here) live links per room`, async () => {
    const { code } = await table();
    const created = await Promise.all(Array.from({ length: MAX_LINKS + 3 }, () => createLink(code)));
    const statuses = created.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 201)).toHaveLength(MAX_LINKS);
    const refused = created.filter((response) => response.statusCode !== 201);
    expect(refused.map((response) => response.json().code)).toEqual(
      Array(3).fill('TOO_MANY_SPECTATOR_LINKS'),
    );
    expect(await app.dicery.roomStore.spectators.countLinks(code)).toBe(MAX_LINKS);
    // Revoking one makes room for one more.
    const first = created.find((response) => response.statusCode === 201)?.json().id as string;
    await app.inject({
      method: 'DELETE',
      url: `/rooms/${code}/spectator-links/${first}`,
      headers: host.headers,
    });
    expect((await createLink(code)).statusCode).toBe(201);
  });

  /** Exchanges `token` (a link's secret) in a fresh browser, or for a bearer token. */
  const exchange = async (code: string, token: string) => {
    const browser = new Browser(app);
    const response = await browser.request('POST', `/rooms/${code}/watch`, { payload: { token } });
    expect(response.statusCode, response.body).toBe(200);
    // The test clock stands still: a millisecond apart, "the oldest spectator" is one of them.
    clock.advance(1);
    return browser;
  };
  const linkToken = async (code: string) => (await createLink(code)).json() as { id: string; token: string };

  it('each exchange of a link is a spectator of its own; the oldest beyond MAX_SPECTATORS_PER_WATCH_LINK ends', async () => {
    const { code } = await table();
    const link = await linkToken(code);
    const viewers = [];
    for (let i = 0; i < MAX_SPECTATORS; i++) viewers.push(await exchange(code, link.token));
    const cookies = viewers.map((browser) => browser.cookies.get(`${WATCH_COOKIE}${code}`)?.value);
    // A credential of its own each, and never the link's secret.
    expect(new Set(cookies).size).toBe(MAX_SPECTATORS);
    expect(cookies).not.toContain(link.token);
    const oldestStream = await follow(code, watchHeaders(viewers[0] as Browser, code));
    const newcomer = await exchange(code, link.token);
    expect((await newcomer.request('GET', `/rooms/${code}`)).statusCode).toBe(200);
    const ended = await viewers[0]?.request('GET', `/rooms/${code}`);
    expect(ended?.statusCode).toBe(401);
    expect(ended?.json().code).toBe('SPECTATOR_LINK_INVALID');
    for (const browser of viewers.slice(1)) {
      expect((await browser.request('GET', `/rooms/${code}`)).statusCode).toBe(200);
    }
    // Its open stream ends at the next heartbeat's re-check, saying why.
    clock.advance(HEARTBEAT_SECONDS * 1000);
    await oldestStream.ended;
    expect(oldestStream.messages.at(-1)).toMatchObject({
      event: 'stream_end',
      data: { reason: 'watch_ended' },
    });
    // Exchanges racing each other still leave the link at its cap.
    await Promise.all(Array.from({ length: 6 }, () => exchange(code, link.token)));
    const rows = await app.dicery.roomStore.spectators.liveSessionIds(
      code,
      await sessionIdsOf(code),
      clock(),
    );
    expect(rows).toHaveLength(MAX_SPECTATORS);
  });

  it('D5: beyond the cap, the network holding the most spectators gives way: a link holder ends only their own', async () => {
    // Red-team 2026-12g D5: MAX_SPECTATORS exchanges from one address ended every other viewer.
    const { code } = await table();
    const link = await linkToken(code);
    const watchFrom = async (remoteAddress: string) => {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/watch`,
        remoteAddress,
        payload: { token: link.token, transport: 'bearer' },
      });
      expect(response.statusCode, response.body).toBe(200);
      clock.advance(1);
      return { authorization: `Bearer ${response.json().access_token}` };
    };
    const live = async (headers: Record<string, string>) =>
      (await app.inject({ method: 'GET', url: `/rooms/${code}`, headers })).statusCode === 200;
    const alice = await watchFrom('198.51.100.1');
    const bob = await watchFrom('2001:db8:b0b:1::1');
    // The attacker opens the link from one address over and over.
    const attacker: Record<string, string>[] = [];
    for (let i = 0; i < MAX_SPECTATORS * 3; i++) attacker.push(await watchFrom('203.0.113.66'));
    expect(await live(alice)).toBe(true);
    expect(await live(bob)).toBe(true);
    const attackerLive = await Promise.all(attacker.map(live));
    expect(attackerLive.filter(Boolean)).toHaveLength(MAX_SPECTATORS - 2);
    // Its newest survive: the oldest of the largest network went first.
    expect(attackerLive.slice(-(MAX_SPECTATORS - 2)).every(Boolean)).toBe(true);
    // A /48 is one network: its /64s do not add up to more.
    for (let i = 0; i < MAX_SPECTATORS; i++) await watchFrom(`2001:db8:bad:${i + 1}::1`);
    expect(await live(alice)).toBe(true);
    expect(await live(bob)).toBe(true);
  });

  it('D5: a network opening a full link again ends its own older spectator; a new network ends the oldest', async () => {
    const { code } = await table();
    const link = await linkToken(code);
    const watch = async (remoteAddress: string) => {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/watch`,
        remoteAddress,
        payload: { token: link.token, transport: 'bearer' },
      });
      expect(response.statusCode).toBe(200);
      clock.advance(1);
      return { authorization: `Bearer ${response.json().access_token}` };
    };
    const live = async (headers: Record<string, string>) =>
      (await app.inject({ method: 'GET', url: `/rooms/${code}`, headers })).statusCode === 200;
    const viewers: Record<string, string>[] = [];
    for (let i = 1; i <= MAX_SPECTATORS; i++) viewers.push(await watch(`198.51.100.${i}`));
    // The last network opens it again: its own older spectator gives way, nobody else's.
    const again = await watch(`198.51.100.${MAX_SPECTATORS}`);
    expect(await Promise.all([...viewers, again].map(live))).toEqual([
      ...Array(MAX_SPECTATORS - 1).fill(true),
      false,
      true,
    ]);
    // A network new to the link, into one viewer per network: the oldest viewer goes (an audience
    // comes and goes, and rows outlive closed tabs).
    await watch('203.0.113.99');
    expect(await live(viewers[0] ?? {})).toBe(false);
    expect(await live(viewers[1] ?? {})).toBe(true);
  });

  /** Every spectator row of room `code` (white-box: the suite's own database). */
  const sessionIdsOf = async (code: string): Promise<string[]> => {
    const rows = await app.gatehouse
      .appDatabase<DiceryTables>()
      .selectFrom('room_spectator_sessions')
      .select('id')
      .where('room_code', '=', code)
      .execute();
    return rows.map((row) => row.id);
  };

  it("one spectator's flood does not 429 another spectator of the same link; the link's audience is bounded", async () => {
    const { code } = await table();
    const link = await linkToken(code);
    const [heavy, light] = [await exchange(code, link.token), await exchange(code, link.token)];
    const url = `/rooms/${code}/rolls`;
    let status = 200;
    let reads = 0;
    for (; reads < 200 && status === 200; reads++) status = (await heavy.request('GET', url)).statusCode;
    expect(status).toBe(429);
    expect(reads - 1).toBe(SPECTATOR_READS);
    expect((await light.request('GET', url)).statusCode).toBe(200);
    expect((await light.request('GET', `/rooms/${code}/log`)).statusCode).toBe(200);
    // The link's spectators together stop at ROOM_READS_PER_MINUTE_PER_WATCH_LINK.
    let linkReads = SPECTATOR_READS + 2;
    let third = await exchange(code, link.token);
    let refused: Awaited<ReturnType<Browser['request']>> | undefined;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      const response = await third.request('GET', url);
      if (response.statusCode === 429) {
        if (linkReads < LINK_READS) third = await exchange(code, link.token);
        else refused = response;
      } else linkReads++;
    }
    expect(linkReads).toBe(LINK_READS);
    expect(refused?.json().code).toBe('TOO_MANY_REQUESTS');
    // Another link of the room, the players and the host keep their own budgets.
    const other = await exchange(code, (await linkToken(code)).token);
    expect((await other.request('GET', url)).statusCode).toBe(200);
    clock.advance(60_000);
    expect((await heavy.request('GET', url)).statusCode).toBe(200);
  });

  it('a spectator has MAX_STREAMS_PER_PLAYER streams of its own; another spectator of the link still gets one', async () => {
    const { code } = await table();
    const link = await linkToken(code);
    const [greedy, patient] = [await exchange(code, link.token), await exchange(code, link.token)];
    for (let i = 0; i < 3; i++) expect((await follow(code, watchHeaders(greedy, code))).status).toBe(200);
    const fourth = await follow(code, watchHeaders(greedy, code));
    expect(fourth.status).toBe(429);
    expect(fourth.problem?.code).toBe('TOO_MANY_STREAMS');
    expect((await follow(code, watchHeaders(patient, code))).status).toBe(200);
  });

  it('Stop watching ends the credential on the server (CSRF-checked), ends its streams, and leaves the others', async () => {
    const { code } = await table();
    const link = await linkToken(code);
    const [leaving, staying] = [await exchange(code, link.token), await exchange(code, link.token)];
    const cookie = leaving.cookies.get(`${WATCH_COOKIE}${code}`)?.value ?? '';
    const stream = await follow(code, watchHeaders(leaving, code));
    // Without the double-submit token another site could end it: refused, nothing ended.
    const forged = await leaving.request('DELETE', `/rooms/${code}/watch`);
    expect(forged.statusCode).toBe(403);
    expect((await leaving.request('GET', `/rooms/${code}`)).statusCode).toBe(200);

    const stop = await leaving.request('DELETE', `/rooms/${code}/watch`, {
      headers: { 'x-csrf-token': await leaving.csrf() },
    });
    expect(stop.statusCode).toBe(204);
    expect(leaving.cookies.has(`${WATCH_COOKIE}${code}`)).toBe(false);
    // The credential is dead on the server, not only forgotten by the browser.
    const replayed = await app.inject({
      method: 'GET',
      url: `/rooms/${code}`,
      headers: { cookie: `${WATCH_COOKIE}${code}=${cookie}` },
    });
    expect(replayed.statusCode).toBe(401);
    clock.advance(HEARTBEAT_SECONDS * 1000);
    await stream.ended;
    expect(stream.messages.at(-1)).toMatchObject({ event: 'stream_end', data: { reason: 'watch_ended' } });
    expect((await staying.request('GET', `/rooms/${code}`)).statusCode).toBe(200);
    // Repeating it (no cookie any more) is harmless.
    expect((await leaving.request('DELETE', `/rooms/${code}/watch`)).statusCode).toBe(204);
  });

  it('spectator bearer tokens: read-only routes for scripts, no cookie, no CSRF, ended by DELETE /watch', async () => {
    const { code, pat } = await table();
    const link = await linkToken(code);
    const exchanged = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/watch`,
      payload: { token: link.token, transport: 'bearer' },
    });
    expect(exchanged.statusCode, exchanged.body).toBe(200);
    expect(exchanged.headers['set-cookie']).toBeUndefined();
    const { access_token: token, token_type: type } = exchanged.json();
    expect(type).toBe('bearer');
    expect(token).toMatch(/^dicery_spectator_[\w-]{43}$/);
    const headers = { authorization: `Bearer ${token}` };
    const snapshot = await app.inject({ method: 'GET', url: `/rooms/${code}`, headers });
    expect(snapshot.json().you).toEqual({ player_id: null, host: false, spectator: true });
    const rolled = await roll(code, pat, { notation: '1d6' });
    const stream = await follow(code, headers);
    expect(stream.status).toBe(200);
    expect(
      (await app.inject({ method: 'GET', url: `/rooms/${code}/rolls`, headers })).json().items[0].id,
    ).toBe(rolled.id);
    const rollAttempt = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls`,
      headers,
      payload: { notation: '1d20' },
    });
    expect(rollAttempt.statusCode).toBe(403);
    expect(rollAttempt.json().code).toBe('SPECTATOR_READ_ONLY');
    // Not an account token either.
    expect((await app.inject({ method: 'GET', url: '/users/me', headers })).statusCode).toBe(401);
    const stop = await app.inject({ method: 'DELETE', url: `/rooms/${code}/watch`, headers });
    expect(stop.statusCode).toBe(204);
    const after = await app.inject({ method: 'GET', url: `/rooms/${code}`, headers });
    expect(after.statusCode).toBe(401);
    expect(after.json().code).toBe('SPECTATOR_LINK_INVALID');
  });

  it("revoking a link deletes its spectators' rows", async () => {
    const { code } = await table();
    const link = await linkToken(code);
    await exchange(code, link.token);
    await exchange(code, link.token);
    expect(await sessionIdsOf(code)).toHaveLength(2);
    await app.inject({
      method: 'DELETE',
      url: `/rooms/${code}/spectator-links/${link.id}`,
      headers: host.headers,
    });
    expect(await sessionIdsOf(code)).toEqual([]);
  });

  it('only the host creates, lists and revokes links; to anyone else the room does not exist', async () => {
    const { code, pat } = await table();
    const { browser, linkId } = await spectator(code);
    const intruder = await signIn(app);
    const routes = [
      ['POST', `/rooms/${code}/spectator-links`],
      ['GET', `/rooms/${code}/spectator-links`],
      ['DELETE', `/rooms/${code}/spectator-links/${linkId}`],
    ] as const;
    for (const [method, url] of routes) {
      const other = await app.inject({ method, url, headers: intruder.headers });
      expect(other.statusCode, `${method} ${url}`).toBe(404);
      expect(other.json().code).toBe('ROOM_NOT_FOUND');
      // A player's room token and a spectator's cookie are no account credentials.
      expect((await app.inject({ method, url, headers: pat.headers })).statusCode).toBe(401);
      expect((await browser.request(method, url)).statusCode).toBe(401);
    }
    expect(await app.dicery.roomStore.spectators.countLinks(code)).toBe(1);
  });

  it('refuses a wrong secret with one answer and counts every attempt on the join limit', async () => {
    const { code } = await table();
    const wrong = await new Browser(app).request('POST', `/rooms/${code}/watch`, {
      payload: { token: 'A'.repeat(43) },
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().code).toBe('SPECTATOR_LINK_INVALID');
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const forged = await app.inject({
      method: 'GET',
      url: `/rooms/${code}`,
      headers: { cookie: `${WATCH_COOKIE}${code}=${'B'.repeat(43)}` },
    });
    expect(forged.statusCode).toBe(401);
    expect(forged.json().code).toBe('SPECTATOR_LINK_INVALID');
  });

  it('answers a made-up spectator credential alike for an open room, a closed one and no room', async () => {
    const open = await table();
    const closed = await table();
    expect(
      (await app.inject({ method: 'DELETE', url: `/rooms/${closed.code}`, headers: host.headers }))
        .statusCode,
    ).toBe(204);
    const absent = [...open.code].reverse().join('');
    const made = `${SPECTATOR_TOKEN_PREFIX}${'C'.repeat(43)}`;
    const answers = new Set<string>();
    for (const code of [open.code, closed.code, absent]) {
      for (const url of [`/rooms/${code}`, `/rooms/${code}/log`, `/rooms/${code}/events`]) {
        for (const headers of [
          { authorization: `Bearer ${made}` },
          { cookie: `${WATCH_COOKIE}${code}=${made}` },
        ]) {
          const response = await app.inject({ method: 'GET', url, headers });
          answers.add(`${response.statusCode} ${response.json().code}`);
        }
      }
    }
    // Before: 404 ROOM_NOT_FOUND for the closed room and no room, 401 for the open one.
    expect([...answers]).toEqual(['401 SPECTATOR_LINK_INVALID']);
  });
});

describe('POST /rooms/{code}/watch rate limit', () => {
  it('counts exchanges on ROOM_JOINS_PER_MINUTE of the address', async () => {
    const app = await buildTestServer({ roomJoinsPerMinute: 2 });
    try {
      const host = await signIn(app);
      const room = await createRoom(app, host);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const response = await app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/watch`,
          payload: { token: 'x'.repeat(43) },
        });
        statuses.push(response.statusCode);
      }
      expect(statuses).toEqual([401, 401, 429]);
    } finally {
      await app.close();
    }
  });
});

describe('spectator room reads', () => {
  it('count per watch link: one link spent does not touch another link, a player or the host', async () => {
    const app = await buildTestServer({ ...NO_ROOM_LIMITS });
    try {
      const host = await signIn(app);
      const room = await createRoom(app, host);
      const pat = await joinAsBot(app, room.code, 'Pat');
      const watcher = async () => {
        const created = await app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/spectator-links`,
          headers: host.headers,
        });
        const browser = new Browser(app);
        await browser.request('POST', `/rooms/${room.code}/watch`, {
          payload: { token: created.json().token },
        });
        return browser;
      };
      const [spent, fresh] = [await watcher(), await watcher()];
      const url = `/rooms/${room.code}/rolls`;
      let status = 200;
      for (let i = 0; i < 200 && status === 200; i++) status = (await spent.request('GET', url)).statusCode;
      expect(status).toBe(429);
      expect((await fresh.request('GET', url)).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url, headers: pat.headers })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url, headers: host.headers })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('red team 2026-12b: one holder of a shared watch link', () => {
  // G1: every limit of a spectator was keyed on the watch link alone, and a link is shared with an
  // audience by design (a stream night's link in a chat). Whoever held it, from one address,
  // spent the link's reads (and exports, and its 50 streams) for every other spectator. Fixed:
  // each exchange is a spectator with budgets of its own; the per-link backstops sit above what
  // one address may take (ROOM_READS_PER_MINUTE_PER_WATCH_LINK > _PER_IP, and so on).
  it('G1: cannot spend the reads of the other spectators of the same link', async () => {
    const app = await buildTestServer({ ...NO_ROOM_LIMITS });
    try {
      const host = await signIn(app);
      const room = await createRoom(app, host);
      const created = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/spectator-links`,
        headers: host.headers,
      });
      const { token } = created.json() as { token: string };
      const watchCookieFrom = async (remoteAddress: string) => {
        const exchanged = await app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/watch`,
          remoteAddress,
          payload: { token },
        });
        expect(exchanged.statusCode, exchanged.body).toBe(200);
        const cookie = exchanged.cookies.find((c) => c.name.startsWith(WATCH_COOKIE));
        return `${cookie?.name}=${cookie?.value}`;
      };
      const [attacker, viewer] = [await watchCookieFrom('192.0.2.1'), await watchCookieFrom('192.0.2.2')];
      const read = (cookie: string, remoteAddress: string, url = `/rooms/${room.code}/rolls`) =>
        app.inject({ method: 'GET', url, remoteAddress, headers: { cookie } });
      let status = 200;
      for (let i = 0; i < 200 && status === 200; i++) status = (await read(attacker, '192.0.2.1')).statusCode;
      expect(status).toBe(429);
      for (let i = 0; i < 10; i++) {
        await read(attacker, '192.0.2.1', `/rooms/${room.code}/rolls/export?format=json`);
      }
      // Another spectator, elsewhere, who did nothing yet.
      const viewerRead = await read(viewer, '192.0.2.2');
      const viewerExport = await read(viewer, '192.0.2.2', `/rooms/${room.code}/rolls/export?format=json`);
      expect([viewerRead.statusCode, viewerExport.statusCode]).toEqual([200, 200]);
    } finally {
      await app.close();
    }
  });
});

describe("red team 2026-12t RTL2: a full watch link's streams are shared between networks", () => {
  // MAX_SPECTATOR_STREAMS_PER_LINK was first come, first served: four IPv4 addresses (or one IPv6
  // /48) took every stream of a shared link, and every other viewer got 429 for as long as they
  // held them. Now a viewer from a network holding at least two fewer of the link's streams takes
  // the place of the oldest stream of the network holding the most, one place per link every
  // LINK_DISPLACEMENT_INTERVAL_MS; one network alone may still fill the link, and networks of one
  // stream each are not rotated out.
  const LINK_STREAMS = 4;
  let app: FastifyInstance;
  let clock: TestClock;
  let base: string;
  const open: SseStream[] = [];
  beforeAll(async () => {
    clock = createTestClock();
    app = await buildTestServer(
      {
        ...NO_ROOM_LIMITS,
        maxSpectatorStreamsPerLink: LINK_STREAMS,
        maxStreamsPerPlayer: 3,
        roomStreamOpensPerMinute: 10_000,
        roomStreamOpensPerMinutePerIp: 10_000,
      },
      { clock, scheduler: clock },
    );
    base = await listenOnLoopback(app);
  });
  afterAll(async () => {
    for (const stream of open) stream.close();
    await app?.close();
  });

  /** A room with a watch link: each `spectator()` exchanges it, and `watch` opens a stream. */
  const watchedRoom = async () => {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const created = await app.inject({
      method: 'POST',
      url: `/rooms/${room.code}/spectator-links`,
      headers: host.headers,
    });
    const { token } = created.json() as { token: string };
    const spectator = async () => {
      const browser = new Browser(app);
      const exchanged = await browser.request('POST', `/rooms/${room.code}/watch`, { payload: { token } });
      expect(exchanged.statusCode, exchanged.body).toBe(200);
      return browser.cookieHeader(`/rooms/${room.code}/events`);
    };
    const watch = async (cookie: string, localAddress: string) => {
      const stream = await openSse(`${base}/rooms/${room.code}/events`, { cookie }, { localAddress });
      open.push(stream);
      return stream;
    };
    return { spectator, watch };
  };
  const displaced = (stream: SseStream | undefined) =>
    stream?.comments.some((comment) => comment.startsWith('displaced')) === true;
  /** Replaces each displaced stream of `viewers` with `reconnect()`'s, as EventSource would. */
  const reconnectDisplaced = async (
    viewers: SseStream[],
    reconnect: () => Promise<SseStream>,
  ): Promise<void> => {
    for (const [index, stream] of viewers.entries()) {
      if (!displaced(stream)) continue;
      await stream.ended;
      const again = await reconnect();
      expect(again.status, JSON.stringify(again.problem)).toBe(200);
      viewers[index] = again;
    }
  };

  it('a viewer from another network displaces the heaviest network; the displaced one cannot push back', async () => {
    const { spectator, watch } = await watchedRoom();
    // One network fills the link: nobody else watches, so nothing is refused.
    const [first, second] = [await spectator(), await spectator()];
    const crowd: SseStream[] = [];
    for (const cookie of [first, first, first, second]) {
      const stream = await watch(cookie, '127.0.0.2');
      expect(stream.status, JSON.stringify(stream.problem)).toBe(200);
      crowd.push(stream);
    }
    // Another network's viewer gets in; the crowd's oldest stream ends, with no stream_end (its
    // credential still holds).
    const viewer = await watch(await spectator(), '127.0.0.3');
    expect(viewer.status, JSON.stringify(viewer.problem)).toBe(200);
    await crowd[0]?.ended;
    expect(displaced(crowd[0])).toBe(true);
    expect(crowd[0]?.messages.some((message) => message.event === 'stream_end')).toBe(false);
    // The crowd's network still holds the most: it cannot take the place back.
    clock.advance(LINK_DISPLACEMENT_INTERVAL_MS);
    const back = await watch(second, '127.0.0.2');
    expect(back.status).toBe(429);
    expect(back.problem?.code).toBe('TOO_MANY_STREAMS');
    // A third network displaces the crowd again, never the single viewer.
    const third = await watch(await spectator(), '127.0.0.4');
    expect(third.status, JSON.stringify(third.problem)).toBe(200);
    await crowd[1]?.ended;
    // The crowd's two against single streams: a fourth network takes a crowd stream too (it holds
    // the most); each network has an interval of its own.
    const fourth = await watch(await spectator(), '127.0.0.5');
    expect(fourth.status, JSON.stringify(fourth.problem)).toBe(200);
    await crowd[2]?.ended;
    // All hold one now: a fifth network is refused rather than take a viewer's place.
    clock.advance(LINK_DISPLACEMENT_INTERVAL_MS);
    const fifth = await watch(await spectator(), '127.0.0.6');
    expect(fifth.status).toBe(429);
    for (const stream of [viewer, third, fourth, crowd[3]]) expect(displaced(stream)).toBe(false);
  });

  // A review of the first version: a newcomer that opened, displaced and left at once could do it
  // again straight away, so the audience's reconnects spent their own open limits until a 429
  // ended their EventSource for good.
  it('a newcomer that opens, displaces and leaves gets one place per interval, not a churn', async () => {
    const { spectator, watch } = await watchedRoom();
    const viewers: SseStream[] = [];
    for (let i = 0; i < LINK_STREAMS; i += 1) viewers.push(await watch(await spectator(), '127.0.0.7'));
    expect(viewers.map((stream) => stream.status)).toEqual([200, 200, 200, 200]);
    const rounds: number[] = [];
    for (let round = 0; round < 5; round += 1) {
      const attack = await watch(await spectator(), '127.0.0.8');
      rounds.push(attack.status);
      attack.close();
      await attack.ended;
      // The displaced viewer reconnects, as EventSource does, into the place the newcomer left.
      await reconnectDisplaced(viewers, async () => watch(await spectator(), '127.0.0.7'));
    }
    expect(rounds).toEqual([200, 429, 429, 429, 429]);
    clock.advance(LINK_DISPLACEMENT_INTERVAL_MS);
    expect((await watch(await spectator(), '127.0.0.8')).status).toBe(200);
  });

  // The next review: one interval per link was a slot anyone could spend. An address holding no
  // stream took it every 5 s (open, displace, leave), and every honest newcomer meanwhile got 429.
  it("spending one network's interval does not keep other networks' newcomers out", async () => {
    const { spectator, watch } = await watchedRoom();
    const viewers: SseStream[] = [];
    for (let i = 0; i < LINK_STREAMS; i += 1) viewers.push(await watch(await spectator(), '127.0.0.20'));
    const attacker: number[] = [];
    const honest: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      clock.advance(LINK_DISPLACEMENT_INTERVAL_MS);
      const attack = await watch(await spectator(), '127.0.0.21');
      attacker.push(attack.status);
      attack.close();
      await attack.ended;
      await reconnectDisplaced(viewers, async () => watch(await spectator(), '127.0.0.20'));
      clock.advance(1_000);
      const newcomer = await watch(await spectator(), `127.0.0.${30 + round}`);
      honest.push(newcomer.status);
      newcomer.close();
      await newcomer.ended;
    }
    expect({ attacker, honest }).toEqual({ attacker: [200, 200, 200], honest: [200, 200, 200] });
  });
});
