import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../src/server.js';
import { testConfig } from '../../src/testing.js';
import { type SignedIn, signIn } from '../support/accounts.js';
import { createTestDatabaseUrl } from '../support/databases.js';
import { listenOnLoopback } from '../support/listen.js';
import { type PrivateRedis, runPrivateRedisTests, startPrivateRedis } from '../support/private-redis.js';
import { createRoom, type JoinedPlayer, joinAsBot } from '../support/rooms.js';
import { openSse, type SseStream } from '../support/sse-client.js';

/**
 * Dicery's presence and room streams on two instances sharing a PRIVATE Redis (the machine's
 * shared one is never killed or frozen) while it is killed, restarted, frozen and thawed: open
 * streams stay open and keep getting the room's events (the heartbeat reads what the bus could not
 * carry from the log), no request hangs, nothing rejects unhandled, presence falls back to each
 * instance's own streams (the other's expire after three heartbeats), and converges again once
 * Redis is back — including changes made while it was away.
 */
describe.runIf(runPrivateRedisTests && process.env.DATABASE_URL?.startsWith('postgres'))(
  'Dicery presence with Redis killed or frozen (two instances, PostgreSQL)',
  { shuffle: false },
  () => {
    let redis: PrivateRedis;
    let dropDatabase: () => Promise<void> = async () => {};
    const instances: { app: FastifyInstance; base: string }[] = [];
    const streams: SseStream[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    let host: SignedIn;
    let code: string;
    let pat: JoinedPlayer;
    let sam: JoinedPlayer;
    let kim: JoinedPlayer;
    type Followed = SseStream & { isOpen(): boolean };
    let patStream: Followed;
    let samStream: Followed;
    let kimStream: Followed;

    const app = (index: number) => (instances[index] as { app: FastifyInstance }).app;
    const follow = async (index: number, player: JoinedPlayer): Promise<Followed> => {
      const base = (instances[index] as { base: string }).base;
      const stream = await openSse(`${base}/rooms/${code}/events?presence=true`, player.headers);
      expect(stream.status).toBe(200);
      streams.push(stream);
      let ended = false;
      void stream.ended.then(() => {
        ended = true;
      });
      return Object.assign(stream, { isOpen: () => !ended });
    };
    const onlineIn = async (index: number) => {
      const response = await app(index).inject({
        method: 'GET',
        url: `/rooms/${code}`,
        headers: host.headers,
      });
      expect(response.statusCode).toBe(200);
      return (response.json().online as { player_ids: string[] }).player_ids.sort();
    };
    const ids = (...players: JoinedPlayer[]) => players.map((player) => player.id).sort();
    const roll = async (index: number, player: JoinedPlayer) => {
      const response = await app(index).inject({
        method: 'POST',
        url: `/rooms/${code}/rolls`,
        headers: player.headers,
        payload: { notation: '1d20' },
      });
      expect(response.statusCode).toBe(201);
      return response.json<{ id: number }>().id;
    };
    const rollReaches = (stream: SseStream, id: number) =>
      stream.next((message) => message.event === 'roll' && message.id === String(id), 10_000);

    beforeAll(async () => {
      process.on('unhandledRejection', onUnhandled);
      redis = await startPrivateRedis();
      const database = await createTestDatabaseUrl('postgres');
      dropDatabase = database.drop;
      const config = testConfig({
        databaseUrl: database.url,
        redisUrl: redis.url,
        // Presence's full state goes out every heartbeat; another instance expires after three.
        roomHeartbeatInterval: 0.2,
        // Short Redis timeouts so a frozen Redis costs a fraction of the test timeout.
        redisCommandTimeoutMs: 300,
        redisConnectTimeoutMs: 500,
        redisMaxReconnectDelayMs: 200,
        roomJoinsPerMinute: 10_000,
        maxStreamsPerIp: 10_000,
        maxStreamsPerAccount: 10_000,
      });
      for (let i = 0; i < 2; i++) {
        const server = await buildServer(config, { logger: false });
        instances.push({ app: server, base: await listenOnLoopback(server) });
      }
      host = await signIn(app(0));
      code = (await createRoom(app(0), host)).code;
      pat = await joinAsBot(app(0), code, 'Pat');
      sam = await joinAsBot(app(0), code, 'Sam');
      kim = await joinAsBot(app(1), code, 'Kim');
    });

    afterAll(async () => {
      redis?.thaw();
      for (const stream of streams) stream.close();
      for (const { app: server } of instances) await server.close();
      await redis?.stop();
      await dropDatabase();
      process.off('unhandledRejection', onUnhandled);
    });

    it('with Redis up, a stream on either instance shows online on both', async () => {
      patStream = await follow(0, pat);
      samStream = await follow(1, sam);
      for (const index of [0, 1])
        await expect.poll(() => onlineIn(index), { timeout: 10_000 }).toEqual(ids(pat, sam));
    });

    it('Redis killed: streams stay open and get every roll; each instance shows its own; changes go on', async () => {
      await redis.kill();
      await expect.poll(() => app(0).gatehouse.redisState(), { timeout: 5000 }).toBe('down');
      // Pat's roll on instance 0 reaches Sam on instance 1 through the log, not the bus.
      await rollReaches(samStream, await roll(0, pat));
      // The other instance is not heard from: its players expire after three heartbeats.
      await expect.poll(() => onlineIn(0), { timeout: 10_000 }).toEqual(ids(pat));
      await expect.poll(() => onlineIn(1), { timeout: 10_000 }).toEqual(ids(sam));
      // While Redis is away Sam leaves and Kim arrives, both on instance 1.
      samStream.close();
      kimStream = await follow(1, kim);
      await expect.poll(() => onlineIn(1), { timeout: 10_000 }).toEqual(ids(kim));
      expect(patStream.isOpen()).toBe(true);
    });

    it('Redis restarted: presence converges on both, without the player who left meanwhile', async () => {
      await redis.restart();
      for (const index of [0, 1]) {
        await expect.poll(() => app(index).gatehouse.redisState(), { timeout: 10_000 }).toBe('up');
        await expect.poll(() => onlineIn(index), { timeout: 10_000 }).toEqual(ids(pat, kim));
      }
      // And the bus carries rolls across again.
      await rollReaches(patStream, await roll(1, kim));
    });

    it('Redis frozen: no request hangs, streams stay open and get rolls; presence converges after the thaw', async () => {
      redis.freeze();
      try {
        // Requests answer (the test timeout is the bound) while the first commands time out.
        await rollReaches(kimStream, await roll(0, pat));
        await expect.poll(() => app(1).gatehouse.redisState(), { timeout: 5000 }).toBe('down');
        await rollReaches(patStream, await roll(1, kim));
        await expect.poll(() => onlineIn(0), { timeout: 10_000 }).toEqual(ids(pat));
        await expect.poll(() => onlineIn(1), { timeout: 10_000 }).toEqual(ids(kim));
      } finally {
        redis.thaw();
      }
      for (const index of [0, 1]) {
        await expect.poll(() => app(index).gatehouse.redisState(), { timeout: 10_000 }).toBe('up');
        await expect.poll(() => onlineIn(index), { timeout: 10_000 }).toEqual(ids(pat, kim));
      }
      for (const stream of [patStream, kimStream]) {
        expect(stream.isOpen()).toBe(true);
      }
      expect(unhandled).toEqual([]);
    });
  },
);
