import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { TokenStrategy } from '../../src/config/config.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer, createTestClock } from '../../src/testing.js';
import { createUser } from '../support/accounts.js';

const CLIENT = { userAgent: null, ip: null };
// Whole seconds, so a JWT's `exp` (seconds) is exactly the expiry in ms.
const T0 = 1_800_000_000_000;

describe('SessionManager: when a credential expires', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  const start = async (tokenStrategy: TokenStrategy = 'jwt') => {
    const clock = createTestClock(T0);
    app = await buildTestServer(
      { tokenStrategy, accessTokenTtl: 900, refreshIdleTtl: 1500, sessionAbsoluteTtl: 3600 },
      { clock },
    );
    const user = await createUser(app);
    return { clock, sessions: gatehouseCore(app.gatehouse).sessions, user };
  };

  it.each(['jwt', 'database'] as const)(
    'reports the access token expiry, never after the session (%s strategy)',
    async (strategy) => {
      const { clock, sessions, user } = await start(strategy);
      const tokens = await sessions.startBearerSession(user.id, ['me'], CLIENT);
      expect(await sessions.verifyAccessToken(tokens.accessToken)).toMatchObject({
        ok: true,
        expiresAt: T0 + 900_000,
      });
      // Refreshed near the end of the session (within the refresh idle time each step), the new
      // token ends with the session.
      clock.advance(1400_000);
      const first = await sessions.refresh(tokens.refreshToken);
      if (!first.ok) throw new Error(`refresh failed: ${first.reason}`);
      clock.advance(1400_000);
      const second = await sessions.refresh(first.tokens.refreshToken);
      if (!second.ok) throw new Error(`refresh failed: ${second.reason}`);
      expect(await sessions.verifyAccessToken(second.tokens.accessToken)).toMatchObject({
        ok: true,
        expiresAt: T0 + 3600_000,
      });
    },
  );

  it('reports a cookie session expiry as the earlier of idle and absolute, and re-checks it by id', async () => {
    const { clock, sessions, user } = await start();
    const { session, cookieToken } = await sessions.startCookieSession(user.id, ['me'], CLIENT);
    expect(await sessions.verifyCookieToken(cookieToken)).toMatchObject({
      ok: true,
      expiresAt: T0 + 1500_000,
    });
    expect(await sessions.checkCookieSession(session.id)).toEqual({ ok: true, expiresAt: T0 + 1500_000 });
    // Used at +1000 s: the idle expiry moves, on this check and on a later re-read.
    clock.advance(1000_000);
    expect(await sessions.verifyCookieToken(cookieToken)).toMatchObject({
      ok: true,
      expiresAt: T0 + 2500_000,
    });
    clock.advance(1000_000);
    expect(await sessions.checkCookieSession(session.id)).toEqual({ ok: true, expiresAt: T0 + 2500_000 });
    // Used again at +2000 s: idle would run to +3500 s, then +4500 s, but the absolute expiry caps it.
    await sessions.verifyCookieToken(cookieToken);
    clock.advance(1000_000);
    expect(await sessions.verifyCookieToken(cookieToken)).toMatchObject({
      ok: true,
      expiresAt: T0 + 3600_000,
    });
    clock.advance(600_000);
    expect(await sessions.checkCookieSession(session.id)).toEqual({ ok: false, reason: 'expired' });
  });

  it('re-checks idle expiry and revocation by id', async () => {
    const { clock, sessions, user } = await start();
    const idle = await sessions.startCookieSession(user.id, ['me'], CLIENT);
    const revoked = await sessions.startCookieSession(user.id, ['me'], CLIENT);
    await sessions.revokeSessions([revoked.session.id]);
    expect(await sessions.checkCookieSession(revoked.session.id)).toEqual({ ok: false, reason: 'revoked' });
    expect(await sessions.checkCookieSession('00000000-0000-4000-8000-000000000000')).toEqual({
      ok: false,
      reason: 'expired',
    });
    clock.advance(1500_000);
    expect(await sessions.checkCookieSession(idle.session.id)).toEqual({ ok: false, reason: 'expired' });
  });
});
