import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { diceryPlugin } from '../../../src/apps/dicery/index.js';
import { dicerySettings } from '../../../src/apps/dicery/settings.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { SETTING } from '../../../src/config/setting.js';
import { findConfigProblems } from '../../../src/config/validate-config.js';
import { ConfigError } from '../../../src/errors.js';
import { createGatehouse, createGatehouseCore, type Gatehouse } from '../../../src/gatehouse.js';
import { gatehousePlugin } from '../../../src/http/index.js';
import { buildTestServer, testConfig } from '../../../src/testing.js';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env, { settings: [dicerySettings] });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe("Dicery's settings, registered through the public API (issue 16)", () => {
  it('keeps every variable, option and default it had in the core schema', () => {
    const declared = Object.fromEntries(
      Object.entries(dicerySettings.schema.properties).map(([property, schema]) => [
        schema[SETTING].env,
        [property, schema[SETTING].default?.value],
      ]),
    );
    expect(declared).toEqual({
      ROOM_TOKEN_TTL: ['roomTokenTtl', 43_200],
      ROOM_SEAT_TTL: ['roomSeatTtl', 30 * 86_400],
      ROOM_IDLE_TTL: ['roomIdleTtl', 14 * 86_400],
      ROOM_CLOSED_RETENTION: ['roomClosedRetention', 90 * 86_400],
      ROOM_JOINS_PER_MINUTE: ['roomJoinsPerMinute', 20],
      MAX_STREAMS_PER_PLAYER: ['maxStreamsPerPlayer', 3],
      ROOM_ROLLS_PER_MINUTE: ['roomRollsPerMinute', 60],
      ROOM_ROLLS_PER_MINUTE_PER_IP: ['roomRollsPerMinutePerIp', 300],
      MAX_PLAYERS_PER_ROOM: ['maxPlayersPerRoom', 100],
      ROOMS_PER_HOUR_PER_ACCOUNT: ['roomsPerHourPerAccount', 20],
      ROOMS_PER_HOUR_PER_IP: ['roomsPerHourPerIp', 60],
      MAX_OPEN_ROOMS_PER_HOST: ['maxOpenRoomsPerHost', 20],
      MAX_STREAMS_PER_ACCOUNT: ['maxStreamsPerAccount', 10],
      MAX_STREAMS_PER_IP: ['maxStreamsPerIp', 50],
      MAX_STREAMS_TOTAL: ['maxStreamsTotal', 5000],
      ROOM_STREAM_OPENS_PER_MINUTE: ['roomStreamOpensPerMinute', 30],
      ROOM_STREAM_OPENS_PER_MINUTE_PER_IP: ['roomStreamOpensPerMinutePerIp', 120],
      ROOM_MAX_EVENTS: ['roomMaxEvents', 100_000],
      ROOM_MAX_REPLAY_EVENTS: ['roomMaxReplayEvents', 1000],
      ROOM_MAX_REPLAY_BYTES: ['roomMaxReplayBytes', 1024 * 1024],
      ROOM_READS_PER_MINUTE: ['roomReadsPerMinute', 120],
      ROOM_READS_PER_MINUTE_PER_IP: ['roomReadsPerMinutePerIp', 600],
      ROOM_READS_PER_MINUTE_PER_WATCH_LINK: ['roomReadsPerMinutePerWatchLink', 1200],
      ROOM_EXPORTS_PER_MINUTE: ['roomExportsPerMinute', 6],
      ROOM_EXPORTS_PER_MINUTE_PER_IP: ['roomExportsPerMinutePerIp', 30],
      ROOM_EXPORTS_PER_MINUTE_PER_WATCH_LINK: ['roomExportsPerMinutePerWatchLink', 60],
      MAX_EXPORTS_PER_CALLER: ['maxExportsPerCaller', 2],
      MAX_EXPORTS_PER_NETWORK: ['maxExportsPerNetwork', 8],
      MAX_EXPORTS_TOTAL: ['maxExportsTotal', 64],
      ROOM_EXPORT_STALL_TIMEOUT: ['roomExportStallTimeout', 60],
      ROOM_EXPORT_MAX_DURATION: ['roomExportMaxDuration', 900],
      MAX_WATCH_LINKS_PER_ROOM: ['maxWatchLinksPerRoom', 20],
      WATCH_LINKS_PER_HOUR_PER_ACCOUNT: ['watchLinksPerHourPerAccount', 60],
      MAX_SPECTATORS_PER_WATCH_LINK: ['maxSpectatorsPerWatchLink', 100],
      MAX_PLAYERS_PER_ROOM_PER_NETWORK: ['maxPlayersPerRoomPerNetwork', 25],
      MAX_SPECTATOR_STREAMS_PER_LINK: ['maxSpectatorStreamsPerLink', 200],
      ROOM_HEARTBEAT_INTERVAL: ['roomHeartbeatInterval', 15],
    });
  });

  it('reads the read limits and spectator caps that used to be constants, and refuses zero', () => {
    const config = loadConfig(
      {
        ROOM_READS_PER_MINUTE: '7',
        ROOM_EXPORTS_PER_MINUTE_PER_WATCH_LINK: '9',
        MAX_WATCH_LINKS_PER_ROOM: '3',
        MAX_SPECTATOR_STREAMS_PER_LINK: '5',
        MAX_SPECTATORS_PER_WATCH_LINK: '11',
      },
      { settings: [dicerySettings] },
    );
    expect(config).toMatchObject({
      roomReadsPerMinute: 7,
      roomExportsPerMinutePerWatchLink: 9,
      maxWatchLinksPerRoom: 3,
      maxSpectatorStreamsPerLink: 5,
      maxSpectatorsPerWatchLink: 11,
    });
    expect(problemsOf({ MAX_WATCH_LINKS_PER_ROOM: '0' }).join('\n')).toContain('MAX_WATCH_LINKS_PER_ROOM');
    expect(problemsOf({ ROOM_READS_PER_MINUTE: '0' }).join('\n')).toContain('ROOM_READS_PER_MINUTE');
    // Below a kilobyte a replay budget would resync every resume; below an hour a room closed by
    // mistake would be emptied before anyone could look into it.
    expect(problemsOf({ ROOM_MAX_REPLAY_BYTES: '1023' }).join('\n')).toContain('ROOM_MAX_REPLAY_BYTES');
    expect(problemsOf({ ROOM_CLOSED_RETENTION: '59m' }).join('\n')).toContain('ROOM_CLOSED_RETENTION');
    expect(loadConfig({ ROOM_CLOSED_RETENTION: '30d' }, { settings: [dicerySettings] })).toMatchObject({
      roomClosedRetention: 30 * 86_400,
    });
  });

  it('reads the room and stream limits, with their defaults, and refuses zero', () => {
    expect(loadConfig({}, { settings: [dicerySettings] })).toMatchObject({
      roomsPerHourPerAccount: 20,
      roomsPerHourPerIp: 60,
      maxOpenRoomsPerHost: 20,
      maxStreamsPerAccount: 10,
      maxStreamsPerIp: 50,
      roomRollsPerMinutePerIp: 300,
    });
    const config = loadConfig(
      {
        ROOMS_PER_HOUR_PER_ACCOUNT: '5',
        ROOMS_PER_HOUR_PER_IP: '7',
        MAX_OPEN_ROOMS_PER_HOST: '3',
        MAX_STREAMS_PER_ACCOUNT: '4',
        MAX_STREAMS_PER_IP: '200',
        ROOM_ROLLS_PER_MINUTE_PER_IP: '9',
      },
      { settings: [dicerySettings] },
    );
    expect(config).toMatchObject({
      roomsPerHourPerAccount: 5,
      roomsPerHourPerIp: 7,
      maxOpenRoomsPerHost: 3,
      maxStreamsPerAccount: 4,
      maxStreamsPerIp: 200,
      roomRollsPerMinutePerIp: 9,
    });
    for (const name of [
      'ROOMS_PER_HOUR_PER_ACCOUNT',
      'ROOMS_PER_HOUR_PER_IP',
      'MAX_OPEN_ROOMS_PER_HOST',
      'MAX_STREAMS_PER_ACCOUNT',
      'MAX_STREAMS_PER_IP',
      'ROOM_ROLLS_PER_MINUTE_PER_IP',
    ]) {
      expect(problemsOf({ [name]: '0' })).toEqual([expect.stringContaining(name)]);
    }
  });

  it('reads how far back a stream replays, from 1 to 100000 events', () => {
    expect(loadConfig({}, { settings: [dicerySettings] })).toMatchObject({ roomMaxReplayEvents: 1000 });
    expect(
      loadConfig({ ROOM_MAX_REPLAY_EVENTS: '50' }, { settings: [dicerySettings] }).roomMaxReplayEvents,
    ).toBe(50);
    for (const value of ['0', '100001', '1.5']) {
      expect(problemsOf({ ROOM_MAX_REPLAY_EVENTS: value })).toEqual([
        expect.stringContaining('ROOM_MAX_REPLAY_EVENTS'),
      ]);
    }
  });

  it('accepts sub-second heartbeats in code (for tests) but not zero', () => {
    const config = testConfig();
    expect(findConfigProblems({ ...config, roomHeartbeatInterval: 0.05 }, [dicerySettings])).toEqual([]);
    expect(findConfigProblems({ ...config, roomHeartbeatInterval: 0 }, [dicerySettings])).toEqual([
      'roomHeartbeatInterval: got 0; expected a number of seconds from 0.05 to 3600 (env ROOM_HEARTBEAT_INTERVAL)',
    ]);
  });

  it('reaches Dicery through gatehouse.appSettings, not the core settings', async () => {
    const app = await buildTestServer({ roomTokenTtl: 600, maxPlayersPerRoom: 7 });
    closers.push(() => app.close());
    expect(app.dicery.settings).toMatchObject({
      roomTokenTtl: 600,
      maxPlayersPerRoom: 7,
      roomIdleTtl: 14 * 86_400,
    });
    expect(app.gatehouse.appSettings(dicerySettings)).toBe(app.dicery.settings);
    expect(Object.keys(app.gatehouse.config).filter((key) => /room|stream|player/i.test(key))).toEqual([]);
  });

  it('makes the core keep retired keys and revocations as long as its room tokens and heartbeats need', async () => {
    const config = testConfig({ accessTokenTtl: 300, roomTokenTtl: 7200, roomHeartbeatInterval: 600 });
    const core = await createGatehouseCore(config, { settings: [dicerySettings] });
    closers.push(() => core.close());
    expect(core.keyRetentionSeconds).toBe(7200 + 3600);
    const bare = await createGatehouseCore(testConfig({ accessTokenTtl: 300 }));
    closers.push(() => bare.close());
    expect(bare.keyRetentionSeconds).toBe(300 + 3600);
    // A room token as long as ROOM_TOKEN_TTL is signed; a longer one is refused.
    const kind = { typ: 'test-room+jwt', audience: 'test-rooms' };
    const iat = Math.floor(Date.now() / 1000);
    await expect(core.facade.appTokens.sign(kind, { iat, exp: iat + 7200 })).resolves.toEqual(
      expect.any(String),
    );
    await expect(core.facade.appTokens.sign(kind, { iat, exp: iat + 7201 })).rejects.toThrow(RangeError);
    await expect(bare.facade.appTokens.sign(kind, { iat, exp: iat + 301 })).rejects.toThrow(/tokenLifetime/);
  });

  it('refuses to start Dicery on a core that was not given its settings, naming the fix', async () => {
    const gatehouse: Gatehouse = await createGatehouse(testConfig());
    closers.push(() => gatehouse.close());
    const app = Fastify({ logger: false });
    closers.push(() => app.close());
    await app.register(gatehousePlugin, { gatehouse });
    await expect(app.register(diceryPlugin, { gatehouse })).rejects.toThrow(
      /settings of "dicery" were not registered/,
    );
  });
});
