/**
 * Red team, finding F7 (FINDINGS.md): with `TRUST_PROXY=true` the client address is the *leftmost*
 * `X-Forwarded-For` entry (Fastify / proxy-addr semantics), which the client writes itself; a
 * reverse proxy that appends the real address (nginx `$proxy_add_x_forwarded_for`, most load
 * balancers) does not help. Every per-address limit (logins, sign-ups, joins, rolls, streams) can
 * then be dodged by rotating the header, and aimed at a victim's address by sending it. Fails on
 * main: the 21st join from one real client, behind a proxy that appends its address, still passes.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestServer } from '../../src/testing.js';
import { signIn } from '../support/accounts.js';
import { createRoom } from '../support/rooms.js';

const PROXY = '10.0.0.1';
const REAL_CLIENT = '203.0.113.50';

describe('red team F7: TRUST_PROXY=true lets the client choose its own address', () => {
  let app: FastifyInstance | undefined;
  let refused: unknown;

  beforeAll(async () => {
    try {
      app = await buildTestServer({ trustProxy: true, roomJoinsPerMinute: 20 });
    } catch (error) {
      // Refusing `true` at start-up (in favour of a hop count or proxy CIDRs) is a fix too.
      refused = error;
    }
  });
  afterAll(async () => app?.close());

  it('a client rotating a forged leftmost X-Forwarded-For entry stays within the join limit', async () => {
    if (app === undefined) {
      expect(refused).toBeDefined();
      return;
    }
    const host = await signIn(app);
    const room = await createRoom(app, host);
    const statuses: number[] = [];
    for (let i = 0; i < 21; i += 1) {
      const response = await app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player: `Bot ${i}`, transport: 'bearer' },
        remoteAddress: PROXY,
        // What the proxy forwards: the client's forged value, then the address it saw.
        headers: { 'x-forwarded-for': `198.51.100.${i}, ${REAL_CLIENT}` },
      });
      statuses.push(response.statusCode);
    }
    expect(statuses.at(-1)).toBe(429);
  });
});
