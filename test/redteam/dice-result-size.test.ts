/**
 * Red team, finding F1 (FINDINGS.md): the dice limits bound the dice *requested* (100) but not the
 * dice *drawn and recorded*: `100d2r1!` (14 characters) records about 2 200 dice, ≈ 88 KB per roll,
 * stored, signed into the room log, broadcast to every stream and re-served by every read (20 of
 * them per snapshot, 200 per history page, 1 000 per log page). Any anonymous player can send it.
 * Fails on main.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { signIn } from '../support/accounts.js';
import { createRoom, joinAsBot } from '../support/rooms.js';

/** A generous ceiling for one roll's JSON: ten times a 100-die roll without rerolls or explosions. */
const MAX_ROLL_BYTES = 32 * 1024;
/** What a page load (`GET /rooms/{code}`, 20 recent rolls) may weigh at most. */
const MAX_SNAPSHOT_BYTES = 1024 * 1024;

interface RollAnswer {
  terms: { dice?: unknown[] }[];
}

describe('red team F1: dice results are bounded in size, not only in work', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildTestServer({ roomRollsPerMinute: 10_000, roomRollsPerMinutePerIp: 10_000 });
  });
  afterAll(async () => app.close());

  it('one roll records a bounded number of dice', async () => {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const player = await joinAsBot(app, room.code, 'Mallory');
    const response = await app.inject({
      method: 'POST',
      url: `/rooms/${room.code}/rolls`,
      headers: player.headers,
      payload: { notation: '100d2r1!' },
    });
    // Either refused up front (422) or answered with a bounded record.
    if (response.statusCode === 422) return;
    expect(response.statusCode).toBe(201);
    const dice = (response.json() as RollAnswer).terms.reduce(
      (sum, term) => sum + (term.dice?.length ?? 0),
      0,
    );
    expect(dice).toBeLessThanOrEqual(1000);
    expect(response.body.length).toBeLessThanOrEqual(MAX_ROLL_BYTES);
  });

  it("a room's snapshot stays small after a player's twenty worst-case rolls", async () => {
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const mallory = await joinAsBot(app, room.code, 'Mallory');
    const victim = await joinAsBot(app, room.code, 'Victor');
    for (let i = 0; i < 20; i += 1) {
      await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/rolls`,
        headers: mallory.headers,
        payload: { notation: '100d2r1!' },
      });
    }
    const snapshot = await app.inject({ url: `/rooms/${room.code}`, headers: victim.headers });
    expect(snapshot.statusCode).toBe(200);
    expect(snapshot.body.length).toBeLessThanOrEqual(MAX_SNAPSHOT_BYTES);
  });
});
