import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/config/config.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD, postToken } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { PUBLIC_URL, REDIRECT, tokensFor } from '../support/oauth-provider.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

describe.each([{ strategy: 'jwt' as const }, { strategy: 'database' as const }])(
  'sessions ($strategy access tokens)',
  ({ strategy }) => {
    let app: FastifyInstance;
    let clock: TestClock;
    beforeAll(async () => {
      clock = createTestClock();
      app = await buildTestServer(
        { tokenStrategy: strategy, refreshIdleTtl: 3600, sessionAbsoluteTtl: 7200 },
        { clock },
      );
    });
    afterAll(async () => app.close());

    const me = (token: string) => app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
    const refresh = (token: string) => postToken(app, { grant_type: 'refresh_token', refresh_token: token });

    it('uses the configured access token format', async () => {
      const user = await createUser(app);
      const tokens = await login(app, user.email);
      if (strategy === 'database') expect(tokens.access_token).toMatch(/^gha_[A-Za-z0-9_-]{43}$/);
      else expect(decodeJwt(tokens.access_token).sid).toEqual(expect.any(String));
      expect((await me(tokens.access_token)).statusCode).toBe(200);
    });

    it('rotates refresh tokens; reuse of a spent one after the grace interval revokes the whole session', async () => {
      const user = await createUser(app);
      const first = await login(app, user.email);
      const second = await refresh(first.refresh_token);
      expect(second.statusCode).toBe(200);
      const rotated = second.json();
      expect(rotated.refresh_token).not.toBe(first.refresh_token);
      expect((await me(rotated.access_token)).statusCode).toBe(200);

      clock.advance(defaultConfig.refreshReuseInterval * 1000);
      const reuse = await refresh(first.refresh_token);
      expect(reuse.statusCode).toBe(400);
      expect(reuse.json().error).toBe('invalid_grant');
      // The newest pair of the session died with it.
      expect((await me(rotated.access_token)).statusCode).toBe(401);
      expect((await refresh(rotated.refresh_token)).json().error).toBe('invalid_grant');
      const { items } = await gatehouseCore(app.gatehouse).audit.list({
        limit: 10,
        offset: 0,
        event: 'refresh_token_reused',
      });
      expect(items.length).toBeGreaterThan(0);
    });

    it('rotates once under 20 concurrent refreshes of one token: all get the same successor', async () => {
      const user = await createUser(app);
      const tokens = await login(app, user.email);
      const responses = await Promise.all(Array.from({ length: 20 }, () => refresh(tokens.refresh_token)));
      expect(responses.map((r) => r.statusCode)).toEqual(Array(20).fill(200));
      expect(new Set(responses.map((r) => r.json().refresh_token)).size).toBe(1);
      expect(new Set(responses.map((r) => r.json().access_token)).size).toBe(20);
    });

    it('never accepts a refresh token as an access token, nor the reverse', async () => {
      const user = await createUser(app);
      const tokens = await login(app, user.email);
      expect((await me(tokens.refresh_token)).statusCode).toBe(401);
      expect((await refresh(tokens.access_token)).json().error).toBe('invalid_grant');
    });

    it('expires refresh tokens when idle and sessions at their absolute limit', async () => {
      const user = await createUser(app);
      const idle = await login(app, user.email);
      clock.advance(3601_000);
      expect((await refresh(idle.refresh_token)).json().error).toBe('invalid_grant');

      const active = await login(app, user.email);
      let current = active.refresh_token;
      for (let i = 0; i < 3; i++) {
        clock.advance(1800_000);
        const next = await refresh(current);
        expect(next.statusCode).toBe(200);
        current = next.json().refresh_token;
      }
      clock.advance(1801_000);
      // 7201 s after login: past the absolute lifetime even though it was never idle for an hour.
      expect((await refresh(current)).json().error).toBe('invalid_grant');
    });

    it('logout kills the access token on the very next request', async () => {
      const user = await createUser(app);
      const tokens = await login(app, user.email);
      expect((await me(tokens.access_token)).statusCode).toBe(200);
      const logout = await app.inject({
        method: 'POST',
        url: '/auth/logout',
        headers: bearer(tokens.access_token),
      });
      expect(logout.statusCode).toBe(204);
      const after = await me(tokens.access_token);
      expect(after.statusCode).toBe(401);
      expect(after.headers['www-authenticate']).toContain('invalid_token');
      expect((await refresh(tokens.refresh_token)).json().error).toBe('invalid_grant');
    });

    it('logout-all ends every session of the user', async () => {
      const user = await createUser(app);
      const a = await login(app, user.email);
      const b = await login(app, user.email);
      expect(
        (await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(a.access_token) }))
          .statusCode,
      ).toBe(204);
      expect((await me(a.access_token)).statusCode).toBe(401);
      expect((await me(b.access_token)).statusCode).toBe(401);
    });

    it('lists your sessions and ends one; others’ sessions are 404', async () => {
      const user = await createUser(app);
      const a = await login(app, user.email);
      const b = await login(app, user.email);
      const list = await app.inject({
        method: 'GET',
        url: '/users/me/sessions',
        headers: bearer(a.access_token),
      });
      expect(list.statusCode).toBe(200);
      const sessions = list.json() as { id: string; current: boolean }[];
      expect(sessions).toHaveLength(2);
      const current = sessions.find((s) => s.current);
      const other = sessions.find((s) => !s.current);
      expect(current && other).toBeTruthy();

      const stranger = await createUser(app);
      const strangerTokens = await login(app, stranger.email);
      const theirs = await app.inject({
        method: 'DELETE',
        url: `/users/me/sessions/${other?.id}`,
        headers: bearer(strangerTokens.access_token),
      });
      expect(theirs.statusCode).toBe(404);
      expect(theirs.json().code).toBe('SESSION_NOT_FOUND');
      expect((await me(b.access_token)).statusCode).toBe(200);

      const end = await app.inject({
        method: 'DELETE',
        url: `/users/me/sessions/${other?.id}`,
        headers: bearer(a.access_token),
      });
      expect(end.statusCode).toBe(204);
      expect((await me(b.access_token)).statusCode).toBe(401);
      expect((await me(a.access_token)).statusCode).toBe(200);
    });

    it('PATCH /users/me changes the name, and the password only with the current one, ending other sessions', async () => {
      const user = await createUser(app);
      const a = await login(app, user.email);
      const b = await login(app, user.email);
      const patch = (token: string, payload: object) =>
        app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(token), payload });

      const renamed = await patch(a.access_token, { full_name: '  Ada Lovelace ' });
      expect(renamed.json()).toMatchObject({ full_name: 'Ada Lovelace' });
      expect((await me(a.access_token)).json().full_name).toBe('Ada Lovelace');

      const wrong = await patch(a.access_token, {
        password: 'a brand new secret',
        current_password: 'not it at all',
      });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json().code).toBe('INVALID_CURRENT_PASSWORD');
      expect((await patch(a.access_token, { password: 'a brand new secret' })).json().code).toBe(
        'INVALID_CURRENT_PASSWORD',
      );
      expect((await patch(a.access_token, { role: 'admin' })).json()).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ field: 'role' }],
      });

      const changed = await patch(a.access_token, {
        password: 'a brand new secret',
        current_password: PASSWORD,
      });
      expect(changed.statusCode).toBe(200);
      expect((await me(a.access_token)).statusCode).toBe(200);
      expect((await me(b.access_token)).statusCode).toBe(401);
      expect(
        (
          await postToken(app, {
            grant_type: 'password',
            username: user.email,
            password: 'a brand new secret',
          })
        ).statusCode,
      ).toBe(200);
    });
  },
);

describe('revocation survives a restart', () => {
  it('loads revoked sessions from the database, so a logged-out JWT stays dead', async () => {
    const { join } = await import('node:path');
    const dir = tempDir('gh-restart-');
    const secretKey = new Uint8Array(32).map((_, i) => (i * 7 + 3) % 256);
    const settings = { databaseUrl: `sqlite:${join(dir, 'db.sqlite')}`, dataDir: dir, secretKey };
    const first = await buildTestServer(settings);
    const user = await createUser(first);
    const tokens = await login(first, user.email);
    await first.inject({ method: 'POST', url: '/auth/logout', headers: bearer(tokens.access_token) });
    await first.close();

    const second = await buildTestServer(settings);
    const response = await second.inject({
      method: 'GET',
      url: '/users/me',
      headers: bearer(tokens.access_token),
    });
    expect(response.statusCode).toBe(401);
    expect(
      gatehouseCore(second.gatehouse).revocations.isRevoked(String(decodeJwt(tokens.access_token).sid)),
    ).toBe(true);
    await second.close();
  });
});

describe('MAX_SESSIONS_PER_ACCOUNT (red-team 2026-12f: no per-account session bound)', () => {
  let app: FastifyInstance;
  let clock: TestClock;
  let oauthApp: OAuthClient;
  // Four per account, so two per client (first-party included).
  beforeAll(async () => {
    clock = createTestClock();
    app = await buildTestServer(
      { maxSessionsPerAccount: 4, publicUrl: PUBLIC_URL, issuer: PUBLIC_URL },
      { clock },
    );
    const clients = gatehouseCore(app.gatehouse).oauthClients;
    oauthApp = (await clients.create({ name: 'Minter', redirectUris: [REDIRECT] }, { actorId: null })).client;
  });
  afterAll(async () => app.close());

  const me = (token: string) => app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
  const sid = (token: string) => String(decodeJwt(token).sid);
  const displacedFor = async (userId: string) =>
    (
      await gatehouseCore(app.gatehouse).audit.list({
        limit: 100,
        offset: 0,
        event: 'session_displaced',
        targetId: userId,
      })
    ).items.map((item) => item.details);

  it('a login beyond its client’s share ends the least recently used session at once, audited, never the new one', async () => {
    const user = await createUser(app);
    const logins = [];
    for (let login_ = 0; login_ < 3; login_ += 1) {
      logins.push(await login(app, user.email));
      clock.advance(1_000);
    }
    const [first, second, third] = logins.map((tokens) => tokens.access_token);
    expect([
      (await me(String(first))).statusCode,
      (await me(String(second))).statusCode,
      (await me(String(third))).statusCode,
    ]).toEqual([401, 200, 200]);
    expect(await displacedFor(user.id)).toEqual([
      { session: sid(String(first)), client_id: 'gatehouse', by_session: sid(String(third)) },
    ]);
  });

  it('an app minting a session per code exchange ends only its own; the person’s browser and other sessions stay', async () => {
    const user = await createUser(app);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    const script = await login(app, user.email);
    const minted: string[] = [];
    for (let exchange = 0; exchange < 5; exchange += 1) {
      minted.push((await tokensFor(app, browser, oauthApp, 'openid')).access_token);
      clock.advance(1_000);
    }
    const userinfo = (token: string) =>
      app.inject({ method: 'GET', url: '/userinfo', headers: bearer(token) });
    const statuses = await Promise.all(minted.map(async (token) => (await userinfo(token)).statusCode));
    expect(statuses).toEqual([401, 401, 401, 200, 200]);
    expect((await browser.request('GET', '/users/me')).statusCode).toBe(200);
    expect((await me(script.access_token)).statusCode).toBe(200);
    expect((await displacedFor(user.id)).map((details) => details?.client_id)).toEqual(
      Array.from({ length: 3 }, () => oauthApp.clientId),
    );
  });

  it('holds the bound when logins race at it: every login answers, the account keeps its share', async () => {
    const user = await createUser(app);
    const answers = await Promise.all(
      Array.from({ length: 6 }, () =>
        postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD }),
      ),
    );
    expect(answers.map((answer) => answer.statusCode)).toEqual(Array.from({ length: 6 }, () => 200));
    const live = await gatehouseCore(app.gatehouse).sessions.listSessions(user.id);
    expect(live).toHaveLength(2);
    const issued = answers.map((answer) => sid(answer.json().access_token));
    expect(live.every((session) => issued.includes(session.id))).toBe(true);
    expect(await displacedFor(user.id)).toHaveLength(4);
  });
});
