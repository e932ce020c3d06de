import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DiceryTables } from '../../../../src/apps/dicery/storage/tables.js';
import { gatehouseCore } from '../../../../src/gatehouse-core.js';
import { buildTestServer, createTestClock, type TestClock } from '../../../../src/testing.js';
import { signIn } from '../../../support/accounts.js';
import { listenOnLoopback } from '../../../support/listen.js';
import { createRoom, joinAsBot } from '../../../support/rooms.js';
import { openSse, type SseStream } from '../../../support/sse-client.js';

/**
 * Issue 16: the stream heartbeat runs on the core's injected Scheduler (`gatehouse.scheduler`),
 * so a test clock fires it. The interval is a minute: a real timer would not fire while the
 * test waits, so a heartbeat that arrives was fired by advancing the clock.
 */
describe('room event stream heartbeat on the injected scheduler', () => {
  let app: FastifyInstance;
  let clock: TestClock;
  let base: string;
  const open: SseStream[] = [];

  beforeAll(async () => {
    clock = createTestClock();
    app = await buildTestServer(
      { roomHeartbeatInterval: 60, roomJoinsPerMinute: 10_000, roomsPerHourPerIp: 10_000 },
      { clock, scheduler: clock },
    );
    base = await listenOnLoopback(app);
  });
  afterAll(async () => {
    for (const stream of open) stream.close();
    await app?.close();
  });

  it('sends a heartbeat comment when the test clock passes the interval', async () => {
    const room = await createRoom(app, await signIn(app));
    const player = await joinAsBot(app, room.code, 'Idle');
    const stream = await openSse(`${base}/rooms/${room.code}/events`, player.headers);
    open.push(stream);
    expect(stream.status).toBe(200);
    expect(stream.comments).not.toContain('heartbeat');
    clock.advance(60_000);
    expect(await stream.nextComment((comment) => comment === 'heartbeat')).toBe('heartbeat');
  });

  it('ends the old host’s stream at the heartbeat when a hand-over’s event never reached it', async () => {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const stream = await openSse(`${base}/rooms/${room.code}/events`, host.headers);
    open.push(stream);
    expect(stream.status).toBe(200);
    // The room changes hands with no event on the bus (lost, or before the stream's start).
    const next = await signIn(app);
    await gatehouseCore(app.gatehouse)
      .database.db.withTables<Pick<DiceryTables, 'rooms'>>()
      .updateTable('rooms')
      .set({ host_user_id: next.user.id })
      .where('code', '=', room.code)
      .execute();
    clock.advance(60_000);
    // Before: it stayed open, showing the new host's secret rolls to the old one.
    expect(await stream.nextComment((comment) => comment === 'host changed')).toBe('host changed');
    await stream.ended;
  });

  it('reconciles the other rooms when one room cannot be read', async () => {
    const unreadable = await createRoom(app, await signIn(app));
    const bot = await joinAsBot(app, unreadable.code, 'Stuck');
    const first = await openSse(`${base}/rooms/${unreadable.code}/events`, bot.headers);
    open.push(first);
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const stream = await openSse(`${base}/rooms/${room.code}/events`, host.headers);
    open.push(stream);
    expect([first.status, stream.status]).toEqual([200, 200]);
    const next = await signIn(app);
    await gatehouseCore(app.gatehouse)
      .database.db.withTables<Pick<DiceryTables, 'rooms'>>()
      .updateTable('rooms')
      .set({ host_user_id: next.user.id })
      .where('code', '=', room.code)
      .execute();
    // The first room's read fails as a query does (a statement timeout, a bad row), the database up.
    const findRoom = app.dicery.roomStore.findRoom.bind(app.dicery.roomStore);
    const reads = vi.spyOn(app.dicery.roomStore, 'findRoom').mockImplementation(async (code) => {
      // PostgreSQL's statement_timeout (57014), which isDatabaseUnavailable counts as an outage.
      if (code === unreadable.code) {
        throw Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
      }
      return findRoom(code);
    });
    try {
      clock.advance(60_000);
      // Before: the pass ended at the failed read, and the rooms after it waited for a later beat.
      expect(await stream.nextComment((comment) => comment === 'host changed')).toBe('host changed');
      await stream.ended;
    } finally {
      reads.mockRestore();
    }
  });
});

/**
 * Issue 16: the credential-expiry timer is on the injected Scheduler too. The heartbeat (which
 * also backs the expiry up) is an hour here, beyond the token's 2 minutes: the stream can only
 * end because the test clock fired the expiry timer.
 */
describe('room event stream credential expiry on the injected scheduler', () => {
  let app: FastifyInstance;
  let clock: TestClock;
  let base: string;
  const open: SseStream[] = [];

  beforeAll(async () => {
    clock = createTestClock();
    app = await buildTestServer(
      {
        roomHeartbeatInterval: 3600,
        roomTokenTtl: 120,
        roomJoinsPerMinute: 10_000,
        roomsPerHourPerIp: 10_000,
      },
      { clock, scheduler: clock },
    );
    base = await listenOnLoopback(app);
  });
  afterAll(async () => {
    for (const stream of open) stream.close();
    await app?.close();
  });

  it('ends a player’s stream when the test clock passes the room token’s expiry, not before', async () => {
    const room = await createRoom(app, await signIn(app));
    const player = await joinAsBot(app, room.code, 'Mayfly');
    const stream = await openSse(`${base}/rooms/${room.code}/events`, player.headers);
    open.push(stream);
    expect(stream.status).toBe(200);
    let ended = false;
    void stream.ended.then(() => {
      ended = true;
    });
    clock.advance(119_000);
    // A round trip on the same server: had the stream ended, its end would have arrived first.
    await app.inject({ method: 'GET', url: '/healthz' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(ended).toBe(false);
    clock.advance(1_001);
    await stream.ended;
    expect(stream.messages.at(-1)).toMatchObject({ event: 'stream_end', data: { reason: 'token_expired' } });
  });
});
