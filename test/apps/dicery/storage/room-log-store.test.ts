import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRoomLog } from '../../../../src/apps/dicery/core/room-log.js';
import { type RoomLogDocument, verifyRoomLog } from '../../../../src/apps/dicery/shared/room-log.js';
import { buildTestServer } from '../../../../src/testing.js';
import { signIn } from '../../../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../../../support/databases.js';
import { createRoom, joinAsBot } from '../../../support/rooms.js';

/**
 * The roll log on each engine (issue 14, item 7): concurrent rolls in one room are chained one at a
 * time under the room's row lock (no fork), instances racing to create the log key agree on one,
 * and a key whose sealed half no longer opens retires but stays published.
 */
describe.each(engines)('room log on $name', ({ name: engine }) => {
  let app: FastifyInstance;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(engine);
    drop = database.drop;
    app = await buildTestServer({
      databaseUrl: database.url,
      roomRollsPerMinute: 10_000,
      roomRollsPerMinutePerIp: 10_000,
      roomJoinsPerMinute: 10_000,
    });
  });
  afterAll(async () => {
    await app.close();
    await drop();
  });

  it('chains concurrent rolls without a fork', async () => {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const players = await Promise.all(['A', 'B', 'C', 'D'].map((name) => joinAsBot(app, room.code, name)));
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        app.inject({
          method: 'POST',
          url: `/rooms/${room.code}/rolls`,
          headers: players[i % 4]?.headers ?? {},
          payload: { notation: '1d20', visibility: i % 5 === 0 ? 'host' : 'room' },
        }),
      ),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(answers.map(() => 201));
    const log = (
      await app.inject({ method: 'GET', url: `/rooms/${room.code}/log`, headers: host.headers })
    ).json() as RoomLogDocument;
    expect(log.entries).toHaveLength(24);
    expect(await verifyRoomLog(log)).toMatchObject({ ok: true, entries: 24, fromGenesis: true, secret: 5 });
  });

  it('agrees on one key when instances race to create it; retires a key that no longer opens', async () => {
    const store = app.dicery.roomStore.log;
    const before = await store.listKeys();
    // Other instances starting at once (same database, same SECRET_KEY): they all load the one key.
    const sealer = app.gatehouse.appSealer('dicery-room-log');
    const logs = Array.from({ length: 4 }, () => createRoomLog({ store, sealer, clock: () => Date.now() }));
    await Promise.all(logs.map((log) => log.ready()));
    expect(await store.listKeys()).toHaveLength(Math.max(before.length, 1));

    // An instance whose SECRET_KEY cannot open the key (rotated without SECRET_KEY_PREVIOUS).
    const current = await store.currentKey();
    const foreign = createRoomLog({
      store,
      // Opens only what it sealed itself: a different SECRET_KEY.
      sealer: {
        seal: (text) => `x${text}`,
        open: (sealed) => (sealed.startsWith('x') ? sealed.slice(1) : undefined),
      },
      clock: () => Date.now(),
    });
    await foreign.ready();
    const keys = await store.listKeys();
    expect(keys).toHaveLength(Math.max(before.length, 1) + 1);
    expect(keys.find((key) => key.keyId === current?.keyId)).toMatchObject({ current: false });
    expect(keys.filter((key) => key.current)).toHaveLength(1);
    // Every key stays published, so old entries keep verifying.
    const published = (await app.inject({ method: 'GET', url: '/rooms/log-keys' })).json().keys;
    expect(published.map((key: { kid: string }) => key.kid).sort()).toEqual(
      keys.map((key) => key.keyId).sort(),
    );
  });
});
