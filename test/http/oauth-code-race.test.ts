import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, postToken } from '../support/accounts.js';
import { createAuditFault } from '../support/audit-fault.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import {
  authorizationResponse,
  exchangeCode,
  PUBLIC_URL,
  pkce,
  REDIRECT,
} from '../support/oauth-provider.js';

/**
 * A code presented several times at once (RFC 6749 §4.1.2: single use; a replay revokes what the
 * code produced). On PostgreSQL the exchanges really run in parallel on the pool's connections;
 * on SQLite they interleave between statements.
 */
describe.each(engines)('authorization code exchanged concurrently ($name)', ({ name }) => {
  let app: FastifyInstance;
  let drop: () => Promise<void> = async () => {};
  let client: OAuthClient;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, databaseUrl: database.url });
    client = (
      await gatehouseCore(app.gatehouse).oauthClients.create(
        { name: 'Racer', redirectUris: [REDIRECT] },
        { actorId: null },
      )
    ).client;
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  const PARALLEL = 8;

  /** A fresh code of a fresh account, and how to present it. */
  const freshCode = async () => {
    const user = await createUser(app);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    const { verifier, challenge } = pkce();
    const location = await authorizationResponse(app, browser, client, challenge);
    const code = String(location.searchParams.get('code'));
    const present = () => exchangeCode(app, client, code, verifier);
    return { user, present };
  };

  /** No token the code produced works, and the replay is in the audit log. */
  const expectNothingLive = async (
    userId: string,
    tokens: { access_token: string; refresh_token: string }[],
  ) => {
    for (const { access_token: accessToken, refresh_token: refreshToken } of tokens) {
      const info = await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(accessToken) });
      expect(info.statusCode).toBe(401);
      const refreshed = await postToken(app, {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: client.clientId,
      });
      expect(refreshed.json()).toMatchObject({ error: 'invalid_grant' });
    }
    const core = gatehouseCore(app.gatehouse);
    // No bearer session is left for the user, whether or not a response carried its tokens.
    const live = await core.sessionStore.listLiveSessions(userId, Date.now());
    expect(live.filter((session) => session.transport !== 'cookie')).toEqual([]);
    const audit = await core.audit.list({ event: 'oauth_code_replayed', limit: 100, offset: 0 });
    expect(audit.items.filter((item) => item.targetId === userId).length).toBeGreaterThan(0);
  };

  it.each([1, 2, 3])(
    'run %i: of parallel presentations of one code, at most one gets tokens, and the replays revoke them',
    async () => {
      const { user, present } = await freshCode();
      const answers = await Promise.all(Array.from({ length: PARALLEL }, present));
      // In practice none does: the replays reach the code before the winner has answered, and
      // RFC 6749 §4.1.2 has the tokens of a replayed code revoked, the winner's included.
      const granted = answers.filter((answer) => answer.statusCode === 200);
      const refused = answers.filter((answer) => answer.statusCode === 400);
      expect(granted.length).toBeLessThanOrEqual(1);
      expect(granted.length + refused.length).toBe(PARALLEL);
      for (const answer of refused) expect(answer.json()).toMatchObject({ error: 'invalid_grant' });
      await expectNothingLive(
        user.id,
        granted.map((answer) => answer.json()),
      );
      // And the code stays spent: one more try is refused too.
      expect((await present()).json()).toMatchObject({ error: 'invalid_grant' });
    },
  );

  it('an outage before the session is written leaves the code unspent: the retry is an exchange, not a replay', async () => {
    const { user, present } = await freshCode();
    const fault = createAuditFault(gatehouseCore(app.gatehouse).database.db, name);
    await fault.inject();
    let failed: Awaited<ReturnType<typeof present>>;
    try {
      failed = await present();
    } finally {
      await fault.heal();
    }
    expect(failed.statusCode, failed.body).toBe(503);
    expect(failed.json()).toMatchObject({ error: 'temporarily_unavailable' });
    const core = gatehouseCore(app.gatehouse);
    const live = await core.sessionStore.listLiveSessions(user.id, Date.now());
    expect(live.filter((session) => session.transport !== 'cookie')).toEqual([]);

    const retried = await present();
    expect(retried.statusCode, retried.body).toBe(200);
    const info = await app.inject({
      method: 'GET',
      url: '/userinfo',
      headers: bearer(retried.json().access_token),
    });
    expect(info.statusCode).toBe(200);
    const replays = await core.audit.list({ event: 'oauth_code_replayed', limit: 100, offset: 0 });
    expect(replays.items.filter((item) => item.targetId === user.id)).toEqual([]);
    // Spent now, with its session recorded: a replay revokes it.
    expect((await present()).json()).toMatchObject({ error: 'invalid_grant' });
    await expectNothingLive(user.id, [retried.json()]);
  });

  it('refuses every one of parallel replays after a completed exchange, and revokes its tokens', async () => {
    const { user, present } = await freshCode();
    const first = await present();
    expect(first.statusCode).toBe(200);
    const replays = await Promise.all(Array.from({ length: PARALLEL }, present));
    for (const replay of replays) {
      expect(replay.statusCode).toBe(400);
      expect(replay.json()).toMatchObject({ error: 'invalid_grant' });
    }
    await expectNothingLive(user.id, [first.json()]);
  });
});
