import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildTestServer } from '../../../../src/testing.js';
import { type SignedIn, signIn } from '../../../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../../../support/databases.js';
import { listenOnLoopback } from '../../../support/listen.js';
import { createRoom, type JoinedPlayer, joinAsBot } from '../../../support/rooms.js';
import { openSse, type SseStream } from '../../../support/sse-client.js';

/** `ROOM_MAX_REPLAY_EVENTS` for these tests: small, so a room goes past it in a few rolls. */
const MAX_REPLAY = 5;

// A room's log grows for as long as the room lives, and a stream resumed from id 0 used to replay
// all of it, page after page, on every open: one anonymous player reconnecting at the open rate
// limit made the server read and send the whole log again and again.
describe.each(engines)('room event streams replay at most ROOM_MAX_REPLAY_EVENTS ($name)', ({ name }) => {
  let app: FastifyInstance;
  let base: string;
  let host: SignedIn;
  let drop: () => Promise<void> = async () => {};
  const open: SseStream[] = [];

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({
      databaseUrl: database.url,
      roomMaxReplayEvents: MAX_REPLAY,
      roomMaxReplayBytes: 16 * 1024,
      // Limits these tests do not exercise, out of the way.
      roomJoinsPerMinute: 10_000,
      roomRollsPerMinute: 10_000,
      roomRollsPerMinutePerIp: 10_000,
      roomsPerHourPerAccount: 10_000,
      roomsPerHourPerIp: 10_000,
      maxOpenRoomsPerHost: 10_000,
      roomStreamOpensPerMinute: 10_000,
      roomStreamOpensPerMinutePerIp: 10_000,
    });
    base = await listenOnLoopback(app);
    host = await signIn(app);
  });
  afterAll(async () => {
    for (const stream of open) stream.close();
    await app?.close();
    await drop();
  });

  /** Opens a stream and remembers it, so every test's streams are closed at the end. */
  const follow = async (code: string, headers: Record<string, string>, query = '') => {
    const stream = await openSse(`${base}/rooms/${code}/events${query}`, headers);
    open.push(stream);
    expect(stream.status).toBe(200);
    return stream;
  };
  /** Rolls once; returns the roll's event id. */
  const roll = async (code: string, player: JoinedPlayer): Promise<number> => {
    const response = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls`,
      headers: player.headers,
      payload: { notation: '1d20' },
    });
    expect(response.statusCode).toBe(201);
    return response.json().id as number;
  };
  /** A room whose log holds `events` events (a join, then rolls), and the id of its newest. */
  const roomWith = async (events: number) => {
    const { code } = await createRoom(app, host);
    const player = await joinAsBot(app, code, 'Marathon');
    let last = 1;
    for (let i = 1; i < events; i += 1) last = await roll(code, player);
    expect(last).toBe(events);
    return { code, player, last };
  };
  const seen = (stream: SseStream) => stream.messages.map((m) => [m.event, Number(m.id)]);

  it('answers a resume from id 0 with one resync at the newest id, reading nothing before it, then goes live', async () => {
    const { code, player, last } = await roomWith(3 * MAX_REPLAY + 2);
    const catchUps = vi.spyOn(app.dicery.rooms, 'catchUp');
    try {
      const stream = await follow(code, { ...player.headers, 'last-event-id': '0' });
      const first = await stream.next();
      expect(first).toEqual({ id: String(last), event: 'resync', data: { last_event_id: last } });
      // The open read the log once, after the newest event (as a fresh connect does), never the
      // events it skipped: however long the room lived, the open costs one page read.
      expect(catchUps.mock.calls.filter(([room]) => room === code)).toEqual([[code, last]]);

      const live = await roll(code, player);
      expect(live).toBe(last + 1);
      await stream.next((m) => m.id === String(live));
      expect(seen(stream)).toEqual([
        ['resync', last],
        ['roll', live],
      ]);
      for (const [room, after] of catchUps.mock.calls)
        if (room === code) expect(after).toBeGreaterThanOrEqual(last);
    } finally {
      catchUps.mockRestore();
    }
  });

  it('replays a gap of exactly ROOM_MAX_REPLAY_EVENTS as before, and resyncs a gap of one more', async () => {
    const { code, player, last } = await roomWith(2 * MAX_REPLAY + 1);
    const within = await follow(code, { ...player.headers, 'last-event-id': String(last - MAX_REPLAY) });
    // One more behind, asked through the query parameter (a first connect after GET /rooms/{code}).
    const beyond = await follow(code, player.headers, `?last_event_id=${last - MAX_REPLAY - 1}`);
    await within.next((m) => m.id === String(last));
    await beyond.next((m) => m.event === 'resync');

    const live = await roll(code, player);
    await within.next((m) => m.id === String(live));
    await beyond.next((m) => m.id === String(live));
    expect(seen(within)).toEqual([
      ...Array.from({ length: MAX_REPLAY }, (_, i) => ['roll', last - MAX_REPLAY + 1 + i]),
      ['roll', live],
    ]);
    expect(seen(beyond)).toEqual([
      ['resync', last],
      ['roll', live],
    ]);
  });

  it("resumes after the resync's id, as EventSource does on its next reconnect", async () => {
    const { code, player, last } = await roomWith(MAX_REPLAY + 2);
    const first = await follow(code, { ...player.headers, 'last-event-id': '1' });
    const resync = await first.next();
    expect(resync).toMatchObject({ event: 'resync', id: String(last) });
    first.close();
    const missed = [await roll(code, player), await roll(code, player)];

    const again = await follow(code, { ...player.headers, 'last-event-id': String(resync.id) });
    await again.next((m) => m.id === String(missed[1]));
    expect(seen(again)).toEqual(missed.map((id) => ['roll', id]));
  });

  it('resyncs instead of replaying more than ROOM_MAX_REPLAY_BYTES, however few the events', async () => {
    // Counted by events alone, a resume replayed up to ROOM_MAX_REPLAY_EVENTS of the largest rolls
    // (≈ 11 KB each) on every open: a few addresses at the open limit took a core and sent
    // gigabytes (red-team 2026-12g, left open then).
    const { code } = await createRoom(app, host);
    const player = await joinAsBot(app, code, 'Heavy');
    let last = 0;
    for (let i = 0; i < 3; i += 1) {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${code}/rolls`,
        headers: player.headers,
        payload: { notation: '100d2r1!' },
      });
      expect(response.statusCode).toBe(201);
      last = response.json().id as number;
    }
    const catchUps = vi.spyOn(app.dicery.rooms, 'catchUp');
    try {
      // Three events, within the count (MAX_REPLAY = 5), but ≈ 30 KB: over this server's 16 KiB.
      const heavy = await follow(code, { ...player.headers, 'last-event-id': String(last - 3) });
      expect(await heavy.next()).toEqual({
        id: String(last),
        event: 'resync',
        data: { last_event_id: last },
      });
      expect(catchUps.mock.calls.filter(([room]) => room === code)).toEqual([[code, last]]);
      // One of them fits: replayed as before.
      const light = await follow(code, { ...player.headers, 'last-event-id': String(last - 1) });
      expect(await light.next()).toMatchObject({ id: String(last), event: 'roll' });
    } finally {
      catchUps.mockRestore();
    }
  });
});
