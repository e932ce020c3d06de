import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventName } from '../../src/audit/audit-log.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD, postToken } from '../support/accounts.js';
import { type AuditFault, createAuditFault, createWriteFault } from '../support/audit-fault.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import {
  authorizationAnswer,
  authorizationResponse,
  exchangeCode,
  PUBLIC_URL,
  pkce,
  REDIRECT,
  tokensFor,
} from '../support/oauth-provider.js';

const NEW_PASSWORD = 'a brand new passphrase 4417';

/**
 * DESIGN.md §5: a change commits in one transaction with its audit row. A password change, "log
 * out everywhere", a logout, ending one session, a reused refresh token's revocation, an RFC 7009
 * revocation, a remembered consent, disconnecting an app, a re-authentication and a replayed
 * authorization code's revocation used to write
 * their entry after the commit (`recordCommitted`), so a process dying in between lost a security
 * event. Now the entry is
 * written in the change's transaction: with the entry's write failing (`createAuditFault`, what an
 * outage raises), the change answers 503 and is rolled back; healed, the same request takes effect
 * and is on record.
 */
describe.each(engines)('audit entries that commit with their change ($name)', ({ name }) => {
  let app: FastifyInstance;
  let client: OAuthClient;
  let drop: () => Promise<void> = async () => {};
  let fault: AuditFault | undefined;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, databaseUrl: database.url });
    client = (
      await gatehouseCore(app.gatehouse).oauthClients.create(
        { name: 'App', redirectUris: [REDIRECT], scopes: ['openid', 'profile', 'email'] },
        { actorId: null },
      )
    ).client;
  });
  afterEach(async () => {
    await fault?.heal();
    fault = undefined;
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  const failWritesOf = async (event: AuditEventName) => {
    fault = createAuditFault(gatehouseCore(app.gatehouse).database.db, name, event);
    await fault.inject();
    return fault;
  };

  const entriesOf = async (event: AuditEventName, targetId: string) =>
    (await gatehouseCore(app.gatehouse).audit.list({ event, limit: 100, offset: 0 })).items.filter(
      (item) => item.targetId === targetId,
    );

  const works = async (token: string) =>
    (await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })).statusCode === 200;

  it('a refused login whose failure cannot be tallied answers 503, never an unrecorded refusal', async () => {
    // Operator red-team 2026-12h F2: on a read-only database (a failover) a wrong password was still
    // answered 400 / 401 while its tally was lost (and a stack logged for each): a guesser's
    // attempts then left no trace. Nothing committed, so the refusal waits for the database.
    const user = await createUser(app);
    fault = createWriteFault(gatehouseCore(app.gatehouse).database.db, name, {
      write: 'insert',
      table: 'login_failures',
      when: `new.subject_id = '${user.id}'`,
    });
    await fault.inject();
    const wrong = { grant_type: 'password', username: user.email, password: 'wrong guess 1234' };
    const token = await postToken(app, wrong);
    expect(token.statusCode).toBe(503);
    expect(token.json()).toMatchObject({ error: 'temporarily_unavailable' });
    const cookie = await new Browser(app).login(user.email, 'wrong guess 1234');
    expect(cookie.statusCode).toBe(503);
    expect(cookie.json().code).toBe('DATABASE_UNAVAILABLE');
    const tallies = () =>
      gatehouseCore(app.gatehouse).auditRetention.listLoginFailures({ subjectId: user.id, limit: 10 });
    expect(await tallies()).toHaveLength(0);
    await fault.heal();
    expect((await postToken(app, wrong)).statusCode).toBe(400);
    expect(await tallies()).toMatchObject([{ failures: 1 }]);
  });

  it('a password change whose entry cannot be written is not made, and the other sessions stay', async () => {
    const user = await createUser(app);
    const { access_token: token } = await login(app, user.email);
    const { access_token: other } = await login(app, user.email);
    const change = () =>
      app.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: bearer(token),
        payload: { password: NEW_PASSWORD, current_password: PASSWORD },
      });
    const faulted = await failWritesOf('password_changed');
    const refused = await change();
    expect(refused.statusCode, refused.body).toBe(503);
    expect(refused.json()).toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Rolled back whole: the old password still signs in, the other session still works.
    expect((await login(app, user.email, PASSWORD)).access_token).toEqual(expect.any(String));
    expect(await works(other)).toBe(true);
    expect(await entriesOf('password_changed', user.id)).toEqual([]);

    await faulted.heal();
    expect((await change()).statusCode).toBe(200);
    expect(await works(other)).toBe(false);
    expect(await entriesOf('password_changed', user.id)).toHaveLength(1);
  });

  it('"log out everywhere" whose entry cannot be written ends no session', async () => {
    const user = await createUser(app);
    const { access_token: token } = await login(app, user.email);
    const logoutAll = () => app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(token) });
    const faulted = await failWritesOf('logout_all');
    expect((await logoutAll()).statusCode).toBe(503);
    expect(await works(token)).toBe(true);
    expect(await entriesOf('logout_all', user.id)).toEqual([]);

    await faulted.heal();
    expect((await logoutAll()).statusCode).toBe(204);
    expect(await works(token)).toBe(false);
    expect(await entriesOf('logout_all', user.id)).toMatchObject([{ details: { sessions: 1 } }]);
  });

  it('a browser logout and ending one session carry their entries the same way', async () => {
    const user = await createUser(app);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    const { access_token: token } = await login(app, user.email);
    const sessionStore = gatehouseCore(app.gatehouse).sessionStore;
    const [bearerSession] = (await sessionStore.listLiveSessions(user.id, Date.now())).filter(
      (session) => session.transport === 'bearer',
    );

    let faulted = await failWritesOf('session_revoked');
    const end = () =>
      app.inject({
        method: 'DELETE',
        url: `/users/me/sessions/${bearerSession?.id}`,
        headers: bearer(token),
      });
    expect((await end()).statusCode).toBe(503);
    expect(await works(token)).toBe(true);
    await faulted.heal();
    expect((await end()).statusCode).toBe(204);
    expect(await works(token)).toBe(false);
    expect(await entriesOf('session_revoked', user.id)).toHaveLength(1);

    faulted = await failWritesOf('logout');
    const logout = async () => {
      const csrf = await browser.csrf();
      return browser.request('POST', '/auth/logout', { headers: { 'x-csrf-token': csrf } });
    };
    expect((await logout()).statusCode).toBe(503);
    expect((await browser.request('GET', '/users/me')).statusCode).toBe(200);
    await faulted.heal();
    expect((await logout()).statusCode).toBe(204);
    expect((await browser.request('GET', '/users/me')).statusCode).toBe(401);
    expect(await entriesOf('logout', user.id)).toHaveLength(1);
  });

  it('a reused refresh token and an RFC 7009 revocation end the session only with their entries', async () => {
    const user = await createUser(app);
    const first = await login(app, user.email);
    const refresh = async (token: string) =>
      postToken(app, { grant_type: 'refresh_token', refresh_token: token });
    const second = (await refresh(first.refresh_token)).json();
    const third = (await refresh(second.refresh_token)).json();
    // `first` is spent, and its row pruned by the second rotation: its family tag still names the session.
    let faulted = await failWritesOf('refresh_token_reused');
    const replayed = await refresh(first.refresh_token);
    expect(replayed.statusCode, replayed.body).toBe(503);
    expect(replayed.json()).toMatchObject({ error: 'temporarily_unavailable' });
    expect(await works(third.access_token)).toBe(true);
    expect(await entriesOf('refresh_token_reused', user.id)).toEqual([]);
    await faulted.heal();
    expect((await refresh(first.refresh_token)).json()).toMatchObject({ error: 'invalid_grant' });
    expect(await works(third.access_token)).toBe(false);
    expect(await entriesOf('refresh_token_reused', user.id)).toMatchObject([
      { details: { action: 'session revoked' } },
    ]);

    const other = await login(app, user.email);
    const revoke = () =>
      app.inject({
        method: 'POST',
        url: '/revoke',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ token: other.refresh_token, client_id: 'gatehouse' }).toString(),
      });
    faulted = await failWritesOf('session_revoked');
    expect((await revoke()).statusCode).toBe(503);
    expect(await works(other.access_token)).toBe(true);
    await faulted.heal();
    expect((await revoke()).statusCode).toBe(200);
    expect(await works(other.access_token)).toBe(false);
    expect(await entriesOf('session_revoked', user.id)).toMatchObject([{ details: { via: 'revoke' } }]);
    // Revoked already: a second request changes nothing and records nothing.
    expect((await revoke()).statusCode).toBe(200);
    expect(await entriesOf('session_revoked', user.id)).toHaveLength(1);
  });

  const connectedApps = async (browser: Browser) =>
    (await browser.request('GET', '/users/me/connected-apps')).json() as unknown[];

  it('a remembered consent whose entry cannot be written is not saved; disconnecting likewise ends nothing', async () => {
    const user = await createUser(app);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);

    let faulted = await failWritesOf('oauth_consent_granted');
    const refused = await authorizationAnswer(app, browser, client, pkce().challenge);
    expect(refused.statusCode, refused.body).toBe(503);
    expect(await connectedApps(browser)).toEqual([]);
    await faulted.heal();
    const tokens = await tokensFor(app, browser, client);
    expect(await connectedApps(browser)).toHaveLength(1);
    expect(await entriesOf('oauth_consent_granted', user.id)).toHaveLength(1);

    const appWorks = async () =>
      (await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(tokens.access_token) }))
        .statusCode === 200;
    const disconnect = async () =>
      browser.request('DELETE', `/users/me/connected-apps/${client.clientId}`, {
        headers: { 'x-csrf-token': await browser.csrf() },
      });
    faulted = await failWritesOf('oauth_consent_revoked');
    expect((await disconnect()).statusCode).toBe(503);
    // Rolled back whole: the consent is still there and the app's session still works.
    expect(await connectedApps(browser)).toHaveLength(1);
    expect(await appWorks()).toBe(true);
    await faulted.heal();
    expect((await disconnect()).statusCode).toBe(204);
    expect(await connectedApps(browser)).toEqual([]);
    expect(await appWorks()).toBe(false);
    expect(await entriesOf('oauth_consent_revoked', user.id)).toMatchObject([
      { details: { sessions_ended: 1 } },
    ]);
  });

  it('a re-authentication whose entry cannot be written does not move auth_time', async () => {
    const user = await createUser(app);
    const { access_token: token } = await login(app, user.email);
    const [session] = await gatehouseCore(app.gatehouse).sessionStore.listLiveSessions(user.id, Date.now());
    const authTime = session?.authTime;
    const step = () =>
      app.inject({
        method: 'POST',
        url: '/auth/reauthenticate',
        headers: bearer(token),
        payload: { current_password: PASSWORD },
      });
    const faulted = await failWritesOf('reauthenticated');
    expect((await step()).statusCode).toBe(503);
    expect((await gatehouseCore(app.gatehouse).sessionStore.findSession(session?.id ?? ''))?.authTime).toBe(
      authTime,
    );
    expect(await entriesOf('reauthenticated', user.id)).toEqual([]);
    await faulted.heal();
    expect((await step()).statusCode).toBe(200);
    expect(await entriesOf('reauthenticated', user.id)).toHaveLength(1);
  });

  it('a replayed authorization code ends the session it started only with its alarm', async () => {
    const user = await createUser(app);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    const { verifier, challenge } = pkce();
    const code = String(
      (await authorizationResponse(app, browser, client, challenge)).searchParams.get('code'),
    );
    const exchange = () => exchangeCode(app, client, code, verifier);
    const first = await exchange();
    expect(first.statusCode, first.body).toBe(200);
    const appWorks = async () =>
      (await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(first.json().access_token) }))
        .statusCode === 200;

    const faulted = await failWritesOf('oauth_code_replayed');
    const refused = await exchange();
    // Before: the session was revoked and the alarm's loss only logged; the replay answered 400.
    expect(refused.statusCode, refused.body).toBe(503);
    expect(await appWorks()).toBe(true);
    expect(await entriesOf('oauth_code_replayed', user.id)).toEqual([]);
    await faulted.heal();
    const replayed = await exchange();
    expect(replayed.statusCode).toBe(400);
    expect(replayed.json()).toMatchObject({ error: 'invalid_grant' });
    expect(await appWorks()).toBe(false);
    expect(await entriesOf('oauth_code_replayed', user.id)).toMatchObject([
      { details: { client_id: client.clientId, action: 'session revoked' } },
    ]);
  });
});
