import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNKNOWN_ROOM_EVENT } from '../../../../src/apps/dicery/core/room-bus.js';
import { buildTestServer } from '../../../../src/testing.js';
import { type SignedIn, signIn } from '../../../support/accounts.js';
import { listenOnLoopback } from '../../../support/listen.js';
import { createRoom, joinAsBot } from '../../../support/rooms.js';
import { openSse, type SseStream } from '../../../support/sse-client.js';

/**
 * A rolling deploy: a newer instance writes room events of a type this version does not know, into
 * the shared log and onto the bus. Before, this version threw reading such a log row ("Unknown room
 * event type"), so every stream of the room failed its catch-up and reconnected in a loop, and the
 * bus dropped the live event, so each stream took the next one for a gap. Now the unknown event
 * takes its number and nothing is sent; the known events around it arrive, in order, once.
 */
describe('room event streams with a newer version’s event types', () => {
  let app: FastifyInstance;
  let base: string;
  let host: SignedIn;
  const open: SseStream[] = [];

  beforeAll(async () => {
    app = await buildTestServer({ roomJoinsPerMinute: 10_000, roomRollsPerMinutePerIp: 10_000 });
    base = await listenOnLoopback(app);
    host = await signIn(app);
  });
  afterAll(async () => {
    for (const stream of open) stream.close();
    await app.close();
  });

  const follow = async (code: string, headers: Record<string, string>, lastEventId?: number) => {
    const stream = await openSse(`${base}/rooms/${code}/events`, {
      ...headers,
      ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }),
    });
    open.push(stream);
    return stream;
  };
  const rollIn = async (code: string, headers: Record<string, string>) => {
    const response = await app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls`,
      headers,
      payload: { notation: '1d6' },
    });
    expect(response.statusCode).toBe(201);
    return (response.json() as { id: number }).id;
  };
  /** What a newer instance does: stores the event, then publishes it on the bus. */
  const newerInstanceWrites = async (code: string, publish: boolean) => {
    const stored = await app.dicery.roomStore.appendEvent(
      code,
      'dice_pool_created',
      '{"pool":"d6"}',
      Date.now(),
    );
    if (stored === undefined) throw new Error('append refused');
    if (publish) {
      await app.dicery.roomBus.publish({
        id: stored.id,
        room: code,
        type: UNKNOWN_ROOM_EVENT,
        data: { type: 'dice_pool_created' },
        at: new Date().toISOString(),
      });
    }
    return stored.id;
  };

  it('a live stream skips the unknown event from the bus and writes the next one without a refetch loop', async () => {
    const room = await createRoom(app, host);
    const player = await joinAsBot(app, room.code, 'Ann');
    const stream = await follow(room.code, player.headers);
    const unknown = await newerInstanceWrites(room.code, true);
    const next = await rollIn(room.code, player.headers);
    expect(next).toBe(unknown + 1);
    await stream.next((message) => message.id === String(next));
    expect(stream.messages.map((message) => message.event)).not.toContain('dice_pool_created');
    expect(stream.messages.map((message) => Number(message.id))).toEqual([next]);
    expect(stream.comments.join('\n')).not.toMatch(/reconnect|missed/);
  });

  it('a replay reads past an unknown event in the log, and a lost one on the bus is read from the log', async () => {
    const room = await createRoom(app, host);
    const player = await joinAsBot(app, room.code, 'Bo');
    const before = await rollIn(room.code, player.headers);
    const stored = await newerInstanceWrites(room.code, false);
    const after = await rollIn(room.code, player.headers);
    // From the start: the log holds the unknown event between two rolls.
    const replay = await follow(room.code, player.headers, 0);
    await replay.next((message) => message.id === String(after));
    const ids = replay.messages.map((message) => Number(message.id));
    expect(ids).toContain(before);
    expect(ids).not.toContain(stored);
    expect(ids.at(-1)).toBe(after);
    expect(replay.comments.join('\n')).not.toMatch(/reconnect|missed/);
    // The export reads every event of the log too (it threw on the unknown one).
    const exported = await app.inject({
      method: 'GET',
      url: `/rooms/${room.code}/rolls/export`,
      headers: player.headers,
    });
    expect(exported.statusCode).toBe(200);
    expect(exported.body).not.toContain('dice_pool_created');
  });
});
