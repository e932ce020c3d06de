import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildServer } from '../../../../src/server.js';
import { testConfig } from '../../../../src/testing.js';
import { type SignedIn, signIn } from '../../../support/accounts.js';
import { createTestDatabaseUrl } from '../../../support/databases.js';
import { listenOnLoopback } from '../../../support/listen.js';
import { type CreatedRoom, createRoom, type JoinedPlayer, joinAsBot } from '../../../support/rooms.js';
import { openSse, type SseStream } from '../../../support/sse-client.js';

const { DATABASE_URL, REDIS_URL } = process.env;
const servicesConfigured = DATABASE_URL?.startsWith('postgres') === true && REDIS_URL !== undefined;
if (!servicesConfigured && process.env.REQUIRE_SERVICES === '1') {
  throw new Error('REQUIRE_SERVICES=1: these tests need DATABASE_URL (postgres://) and REDIS_URL');
}

/** REDIS_URL with an ioredis `connectionName`, so this test can find its own connections in CLIENT LIST. */
function namedRedisUrl(name: string): string {
  const url = new URL(REDIS_URL ?? '');
  url.searchParams.set('connectionName', name);
  return url.toString();
}

/** Sequence numbers a stream received, in the order received. */
const idsOf = (stream: SseStream) => stream.messages.map((message) => Number(message.id));

/** `from`, `from + 1`, … `to`. */
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Kills the subscriber (pub/sub mode) connections named `name` — this test's own, never anyone else's. */
async function killSubscribers(admin: Redis, name: string): Promise<number> {
  const list = (await admin.client('LIST')) as string;
  let killed = 0;
  for (const line of list.split('\n')) {
    const fields = new Map(
      line
        .trim()
        .split(' ')
        .map((pair) => {
          const at = pair.indexOf('=');
          return [pair.slice(0, at), pair.slice(at + 1)] as const;
        }),
    );
    // Subscriber connections are in pub/sub mode: flag P, one subscribed channel.
    if (fields.get('name') !== name || !(fields.get('flags') ?? '').includes('P')) continue;
    const id = fields.get('id');
    if (id === undefined || !/^\d+$/.test(id)) continue;
    killed += Number(await admin.client('KILL', 'ID', id));
  }
  return killed;
}

/**
 * Two instances on one throwaway PostgreSQL database, with the Redis bus on the shared Redis:
 * the deployment in which issue 9 lost room events for good.
 */
describe.runIf(servicesConfigured)('room events across two instances on PostgreSQL + Redis', () => {
  const tag = `gh-room-order-${randomBytes(4).toString('hex')}`;
  const instances: { app: FastifyInstance; base: string; name: string }[] = [];
  const streams: SseStream[] = [];
  let admin: Redis;
  let dropDatabase: () => Promise<void> = async () => {};

  beforeAll(async () => {
    const database = await createTestDatabaseUrl('postgres');
    dropDatabase = database.drop;
    const base = testConfig({
      databaseUrl: database.url,
      roomJoinsPerMinute: 100_000,
      roomRollsPerMinute: 100_000,
      // Counters live in the shared Redis, per client IP (127.0.0.1 for every test process): a
      // per-IP budget spent by another test in the same minute must not refuse these rolls.
      roomRollsPerMinutePerIp: 1_000_000,
      maxStreamsPerPlayer: 10,
      // The heartbeat is also the tail check that finds a lost last event; keep it short here.
      roomHeartbeatInterval: 0.2,
    });
    for (const suffix of ['a', 'b']) {
      const name = `${tag}-${suffix}`;
      const app = await buildServer({ ...base, redisUrl: namedRedisUrl(name) }, { logger: false });
      instances.push({ app, base: await listenOnLoopback(app), name });
    }
    admin = new Redis(REDIS_URL ?? '', { connectionName: `${tag}-admin` });
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    for (const { app } of instances) await app.close();
    admin?.disconnect();
    await dropDatabase();
  });

  const instance = (index: number) => {
    const found = instances[index % instances.length];
    if (found === undefined) throw new Error('no instance');
    return found;
  };

  /** A room with `count` players, half of them joined through each instance. */
  async function setUp(
    count: number,
  ): Promise<{ host: SignedIn; room: CreatedRoom; players: JoinedPlayer[] }> {
    const host = await signIn(instance(0).app);
    const room = await createRoom(instance(0).app, host);
    const players: JoinedPlayer[] = [];
    for (let i = 0; i < count; i++) players.push(await joinAsBot(instance(i).app, room.code, `P${i}`));
    return { host, room, players };
  }

  /** Opens a stream on every instance for every player (starting after the newest event). */
  async function followEverywhere(code: string, players: JoinedPlayer[]): Promise<SseStream[]> {
    const opened: SseStream[] = [];
    for (const { base } of instances) {
      for (const player of players) {
        const stream = await openSse(`${base}/rooms/${code}/events`, player.headers);
        expect(stream.status).toBe(200);
        streams.push(stream);
        opened.push(stream);
      }
    }
    return opened;
  }

  async function rollOn(index: number, code: string, player: JoinedPlayer): Promise<number> {
    const response = await instance(index).app.inject({
      method: 'POST',
      url: `/rooms/${code}/rolls`,
      headers: player.headers,
      payload: { notation: '1d20' },
    });
    expect(response.statusCode).toBe(201);
    return response.json().id as number;
  }

  /** Every stream ends up with every number after `first - 1` up to `last`, once each, in order. */
  async function expectEveryEventOnceInOrder(opened: SseStream[], first: number, last: number) {
    for (const stream of opened) {
      await stream.next((message) => message.id === String(last), 15_000);
      expect(idsOf(stream)).toEqual(range(first, last));
    }
  }

  it('delivers concurrent rolls from both instances to every stream on both, once each, in order', async () => {
    const { room, players } = await setUp(4);
    const opened = await followEverywhere(room.code, players);
    const start = players.length; // the joins were events 1..4
    const rolls = 60;
    const ids = await Promise.all(
      range(0, rolls - 1).map((i) => rollOn(i, room.code, players[i % players.length] as JoinedPlayer)),
    );
    expect([...ids].sort((a, b) => a - b)).toEqual(range(start + 1, start + rolls));
    await expectEveryEventOnceInOrder(opened, start + 1, start + rolls);
  });

  it('recovers every event when the bus subscriber connections drop while rolling every ~20 ms', async () => {
    const { room, players } = await setUp(2);
    const opened = await followEverywhere(room.code, players);
    const start = players.length;

    const rolls = 150;
    let killed = 0;
    for (let i = 0; i < rolls; i++) {
      if (i % 25 === 10) {
        // Alternate the victim: each instance loses its pub/sub connections twice or so.
        killed += await killSubscribers(admin, instance(Math.floor(i / 25)).name);
      }
      await rollOn(i, room.code, players[i % players.length] as JoinedPlayer);
      // Pacing, not a timing assertion: the drop must overlap a stream of rolls, as in issue 9.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(killed).toBeGreaterThan(0);
    await expectEveryEventOnceInOrder(opened, start + 1, start + rolls);
  });
});

describe.runIf(servicesConfigured)('room streams resync when the bus reconnects', () => {
  const tag = `gh-room-resync-${randomBytes(4).toString('hex')}`;
  const apps: FastifyInstance[] = [];
  let admin: Redis;
  let dropDatabase: () => Promise<void> = async () => {};

  afterAll(async () => {
    for (const app of apps) await app.close();
    admin?.disconnect();
    await dropDatabase();
  });

  it('a stream gets an event lost on pub/sub as soon as its instance re-subscribes, not at the next heartbeat', async () => {
    const database = await createTestDatabaseUrl('postgres');
    dropDatabase = database.drop;
    // A heartbeat far beyond the test's patience: only the resync can deliver the lost event.
    // Per-IP counters live in the shared Redis: lifted, as above, so other tests cannot spend them.
    const base = testConfig({
      databaseUrl: database.url,
      roomHeartbeatInterval: 3600,
      roomJoinsPerMinute: 100_000,
      roomRollsPerMinute: 100_000,
      roomRollsPerMinutePerIp: 1_000_000,
    });
    const a = await buildServer({ ...base, redisUrl: namedRedisUrl(`${tag}-a`) }, { logger: false });
    const b = await buildServer({ ...base, redisUrl: namedRedisUrl(`${tag}-b`) }, { logger: false });
    apps.push(a, b);
    admin = new Redis(REDIS_URL ?? '', { connectionName: `${tag}-admin` });
    const host = await signIn(a);
    const room = await createRoom(a, host);
    const player = await joinAsBot(a, room.code, 'Pat');
    const baseA = await listenOnLoopback(a);
    const stream = await openSse(`${baseA}/rooms/${room.code}/events`, player.headers);
    expect(stream.status).toBe(200);
    // A quiet room's streams, up to date: the resync must not read the log for each of them.
    const quiet = await createRoom(a, host);
    const quietStreams: SseStream[] = [];
    for (let i = 0; i < 4; i++) {
      const bot = await joinAsBot(a, quiet.code, `Q${i}`);
      quietStreams.push(await openSse(`${baseA}/rooms/${quiet.code}/events`, bot.headers));
    }
    const catchUps = vi.spyOn(a.dicery.rooms, 'catchUp');
    const roomReads = vi.spyOn(a.dicery.roomStore, 'findRoom');

    // A's subscriber is gone (ioredis reconnects after ~200 ms); B rolls meanwhile, so Redis
    // delivers the roll to nobody on A.
    expect(await killSubscribers(admin, `${tag}-a`)).toBeGreaterThan(0);
    const roll = await b.inject({
      method: 'POST',
      url: `/rooms/${room.code}/rolls`,
      headers: player.headers,
      payload: { notation: '1d20' },
    });
    expect(roll.statusCode).toBe(201);
    const id = String(roll.json().id);
    const received = await stream.next((message) => message.id === id, 10_000);
    expect(received.event).toBe('roll');
    // The quiet room was read once, as a room, and none of its streams read the log. Before:
    // every stream of the instance read its log tail, all at once (a burst of MAX_STREAMS_TOTAL
    // reads on every reconnect).
    await vi.waitFor(() => expect(roomReads.mock.calls.some(([code]) => code === quiet.code)).toBe(true));
    expect(catchUps.mock.calls.filter(([code]) => code === quiet.code)).toEqual([]);
    catchUps.mockRestore();
    roomReads.mockRestore();
    stream.close();
    for (const quietStream of quietStreams) quietStream.close();
  });
});
