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

  it('cuts history and log pages to their size budget in the database, and the rest follows', async () => {
    // Before, a page read its whole count (200 rows of ≈ 11 KB) and cut it in code: on PostgreSQL
    // the driver still decoded ≈ 2.2 MB per request of the largest rolls (red-team 2026-12g).
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const player = await joinAsBot(app, room.code, 'Big');
    const rollIt = async (visibility: 'room' | 'host') => {
      const answer = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/rolls`,
        headers: player.headers,
        payload: { notation: '100d2ro1!kh99', visibility },
      });
      expect(answer.statusCode).toBe(201);
      return (answer.json() as { id: number }).id;
    };
    const secret = await rollIt('host');
    const revealed = await app.inject({
      method: 'POST',
      url: `/rooms/${room.code}/rolls/${secret}/reveal`,
      headers: host.headers,
    });
    expect(revealed.statusCode).toBe(201);
    const ids = [secret];
    for (let i = 0; i < 9; i++) ids.push(await rollIt('room'));
    const store = app.dicery.roomStore.log;

    const all = await store.listRollEvents(room.code, Number.MAX_SAFE_INTEGER, 200, 1_000_000);
    expect(all.rows.map((event) => event.id)).toEqual([...ids].reverse());
    expect(all.more).toBe(false);
    const size = Math.max(...all.rows.map((event) => event.data.length));
    const budget = size * 3;
    const newest = await store.listRollEvents(room.code, Number.MAX_SAFE_INTEGER, 200, budget);
    expect(newest.rows.length).toBeGreaterThanOrEqual(2);
    expect(newest.rows.length).toBeLessThanOrEqual(3);
    expect(newest.rows.reduce((sum, event) => sum + event.data.length, 0)).toBeLessThanOrEqual(budget);
    expect(newest.more).toBe(true);
    // A budget smaller than one row still moves forward by one.
    const one = await store.listRollEvents(room.code, Number.MAX_SAFE_INTEGER, 200, 1);
    expect(one.rows.map((event) => event.id)).toEqual([ids.at(-1)]);
    expect(one.more).toBe(true);
    // Following the pages reads every roll once; a full count without a cut still says "more".
    const seen: number[] = [];
    let before = Number.MAX_SAFE_INTEGER;
    for (;;) {
      const page = await store.listRollEvents(room.code, before, 200, budget);
      seen.push(...page.rows.map((event) => event.id));
      if (!page.more) break;
      before = page.rows.at(-1)?.id ?? 0;
    }
    expect(seen).toEqual([...ids].reverse());
    expect((await store.listRollEvents(room.code, Number.MAX_SAFE_INTEGER, 2, 1_000_000)).more).toBe(true);

    // The log counts a revealed secret roll's event too, and sends it with its entry.
    const entries = await store.listEntries(room.code, 0, 200, 1_000_000);
    expect(entries.rows.map((entry) => entry.seq)).toEqual(ids);
    expect(entries.rows[0]?.revealedEventData).toBe(all.rows.at(-1)?.data);
    expect(entries.rows.slice(1).every((entry) => entry.revealedEventData === null)).toBe(true);
    // Room for the first two entries alone, not with the reveal's event.
    const twoEntries = (entries.rows[0]?.entry.length ?? 0) + (entries.rows[1]?.entry.length ?? 0);
    const logPage = await store.listEntries(room.code, 0, 200, twoEntries);
    expect(logPage.rows.map((entry) => entry.seq)).toEqual([ids[0]]);
    expect(logPage.more).toBe(true);
    const rest = await store.listEntries(room.code, ids[0] ?? 0, 200, 1_000_000);
    expect(rest.rows.map((entry) => entry.seq)).toEqual(ids.slice(1));
    expect(rest.more).toBe(false);
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
