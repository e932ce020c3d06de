import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashLinkToken } from '../../src/accounts/account-lifecycle.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { createAccountTokenStore } from '../../src/storage/account-token-store.js';
import { accountGateLabel } from '../../src/storage/lock-user-row.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD, postToken, signIn } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { someoneWaitsOnALock } from '../support/lock-waits.js';
import { enrolTotpSignedIn } from '../support/mfa.js';
import {
  authorizationAnswer,
  authorizationResponse,
  PUBLIC_URL,
  pkce,
  REDIRECT,
  tokensFor,
} from '../support/oauth-provider.js';
import { createRoom } from '../support/rooms.js';

/**
 * The lock order (ARCHITECTURE.md, "Lock order"): every transaction that touches an account's
 * rows takes the user row first. Each test holds, on a second raw connection, the locks one side
 * of a real inversion takes first (the statements that side runs, in its order), starts the other
 * side through the HTTP routes, waits until PostgreSQL reports that side blocked on a lock
 * (`pg_stat_activity`, never a sleep), and then runs the raw side's next statement. Before the fix
 * the two waited for each other and PostgreSQL ended one with 40P01 after `deadlock_timeout`:
 * either the raw statement threw, or the request answered 500. Now the request waits at its first
 * statement, holding nothing the raw side needs.
 *
 * PostgreSQL only: on SQLite a transaction holds the one connection, so nothing interleaves.
 */
describe.runIf(engines.some((engine) => engine.name === 'postgres'))(
  'lock order on PostgreSQL',
  { timeout: 30_000 },
  () => {
    let app: FastifyInstance;
    let url: string;
    let drop: () => Promise<void> = async () => {};
    let client: OAuthClient;
    let raw: pg.Client | undefined;

    beforeAll(async () => {
      const database = await createTestDatabaseUrl('postgres');
      url = database.url;
      drop = database.drop;
      app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, databaseUrl: url });
      client = (
        await gatehouseCore(app.gatehouse).oauthClients.create(
          { name: 'Locks', redirectUris: [REDIRECT] },
          { actorId: null },
        )
      ).client;
    });
    afterEach(async () => {
      // A failed test may leave its transaction open: ending the connection rolls it back.
      await raw?.end();
      raw = undefined;
    });
    afterAll(async () => {
      await app?.close();
      await drop();
    });

    /** A second connection to the server's database, in a transaction of its own. */
    const rawTransaction = async (): Promise<pg.Client> => {
      raw = new pg.Client({ connectionString: url });
      await raw.connect();
      await raw.query('begin');
      return raw;
    };

    const waitsOnALock = (request: Promise<unknown>) =>
      someoneWaitsOnALock(gatehouseCore(app.gatehouse).database, request);

    /** A signed-in account with an authorization code for the test client, and how to exchange it. */
    const accountWithCode = async () => {
      const user = await createUser(app);
      const browser = new Browser(app);
      expect((await browser.login(user.email)).statusCode).toBe(204);
      const { verifier, challenge } = pkce();
      const location = await authorizationResponse(app, browser, client, challenge);
      const exchange = () =>
        postToken(app, {
          grant_type: 'authorization_code',
          client_id: client.clientId,
          code: String(location.searchParams.get('code')),
          redirect_uri: REDIRECT,
          code_verifier: verifier,
        });
      return { user, exchange };
    };

    /** `DELETE /users/me/mfa/totp` as the holder of bearer `token`, paid with `code`. */
    const turnAuthenticatorOff = (token: string, code: string) =>
      app.inject({ method: 'DELETE', url: '/users/me/mfa/totp', headers: bearer(token), payload: { code } });

    const liveBearerSessions = async (userId: string) =>
      (await gatehouseCore(app.gatehouse).sessionStore.listLiveSessions(userId, Date.now())).filter(
        (session) => session.transport === 'bearer',
      );

    it('a code exchange waits for an admin disable that holds the account row, instead of deadlocking with it', async () => {
      const { user, exchange } = await accountWithCode();
      // The admin's disable: `lockParties` (FOR UPDATE), then `revokeUserSessions`.
      const admin = await rawTransaction();
      await admin.query('select id from users where id = $1 for update', [user.id]);
      const exchanged = exchange();
      // Before: the exchange spent its code (the code row's lock), then waited at its session
      // insert (the foreign key's KEY SHARE on the user row). Now: at its first statement.
      await waitsOnALock(exchanged);
      // Before: this waited for the exchange's code row: a deadlock (40P01).
      await admin.query('delete from oauth_codes where user_id = $1 and used_at is null', [user.id]);
      await admin.query('update users set is_active = 0 where id = $1', [user.id]);
      await admin.query('commit');
      const answer = await exchanged;
      expect(answer.statusCode, answer.body).toBe(400);
      expect(answer.json()).toMatchObject({ error: 'invalid_grant' });
      expect(await liveBearerSessions(user.id)).toEqual([]);
    });

    it('"log out everywhere" takes the account row before the codes, so an exchange in progress finishes first and its session is ended', async () => {
      const { user } = await accountWithCode();
      const { access_token: token } = await login(app, user.email);
      // An exchange in progress, as it runs now: the user row's share first (`lockUser`).
      const exchange = await rawTransaction();
      await exchange.query('select id from users where id = $1 for key share', [user.id]);
      const logoutAll = app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(token) });
      // Before: "log out everywhere" deleted the codes (their row locks) and then waited for the
      // user row. Now: it waits for the user row first.
      await waitsOnALock(logoutAll);
      // The exchange spends its code and writes its session. Before: this waited for the code row
      // the logout had deleted: a deadlock (40P01).
      const spent = await exchange.query(
        'update oauth_codes set used_at = $2 where user_id = $1 and used_at is null',
        [user.id, Date.now()],
      );
      expect(spent.rowCount).toBe(1);
      const sessionId = randomUUID();
      const now = Date.now();
      await exchange.query(
        `insert into sessions (id, user_id, transport, scope, created_at, last_used_at, expires_at,
           revoked_at, user_agent, ip, cookie_token_hash, auth_time, amr)
         values ($1, $2, 'bearer', 'openid', $3, $3, $4, null, null, null, null, $3, 'pwd')`,
        [sessionId, user.id, now, now + 3_600_000],
      );
      await exchange.query('commit');
      const answer = await logoutAll;
      expect(answer.statusCode, answer.body).toBe(204);
      // The logout read the sessions after the exchange committed: its session is ended too.
      const session = await gatehouseCore(app.gatehouse).sessionStore.findSession(sessionId);
      expect(session?.revokedAt).not.toBeNull();
      expect(await liveBearerSessions(user.id)).toEqual([]);
    });

    it('a refresh waits for an account deletion that holds the account row, instead of deadlocking with it', async () => {
      const user = await createUser(app);
      const { refresh_token: refreshToken } = await login(app, user.email);
      // The deletion (`deleteOwnAccount`): `lockAccount` (FOR UPDATE), `revokeUserSessions`.
      const deletion = await rawTransaction();
      await deletion.query('select id from users where id = $1 for update', [user.id]);
      await deletion.query('update sessions set revoked_at = $2 where user_id = $1 and revoked_at is null', [
        user.id,
        Date.now(),
      ]);
      const refreshed = postToken(app, { grant_type: 'refresh_token', refresh_token: refreshToken });
      // Before: the refresh spent its token, inserted its successor (KEY SHARE on the session
      // row) and waited to touch the session. Now: it waits for the user row, holding nothing.
      await waitsOnALock(refreshed);
      // Before: the cascade waited for the session row's KEY SHARE: a deadlock (40P01).
      await deletion.query('delete from users where id = $1', [user.id]);
      await deletion.query('commit');
      const answer = await refreshed;
      expect(answer.statusCode, answer.body).toBe(400);
      expect(answer.json()).toMatchObject({ error: 'invalid_grant' });
    });

    it('a refresh that waited for "log out everywhere" does not hand out tokens of the session it ended', async () => {
      const user = await createUser(app);
      const { refresh_token: refreshToken } = await login(app, user.email);
      // "Log out everywhere" (`revokeUserSessions`): the account FOR UPDATE, then its sessions.
      const logoutAll = await rawTransaction();
      await logoutAll.query('select id from users where id = $1 for update', [user.id]);
      await logoutAll.query('update sessions set revoked_at = $2 where user_id = $1 and revoked_at is null', [
        user.id,
        Date.now(),
      ]);
      const refreshed = postToken(app, { grant_type: 'refresh_token', refresh_token: refreshToken });
      // The refresh read the session (live, before the commit) and waits for the account.
      await waitsOnALock(refreshed);
      await logoutAll.query('commit');
      const answer = await refreshed;
      // Before: it went on with the session it had read and answered 200 with tokens of it.
      expect(answer.statusCode, answer.body).toBe(400);
      expect(answer.json()).toMatchObject({ error: 'invalid_grant' });
    });

    it('disconnecting an app deletes its codes before its consent, the order in which removing the client cascades', async () => {
      const { user } = await accountWithCode();
      const browser = new Browser(app);
      expect((await browser.login(user.email)).statusCode).toBe(204);
      // The client's removal: its cascade deletes the codes (oauth_codes' trigger fires first),
      // then the consents; here it holds the codes and is about to take the consent.
      const removal = await rawTransaction();
      await removal.query('delete from oauth_codes where client_id = $1', [client.clientId]);
      const disconnect = browser.request('DELETE', `/users/me/connected-apps/${client.clientId}`, {
        headers: { 'x-csrf-token': await browser.csrf() },
      });
      // Before: the disconnect deleted the consent first, then waited for the codes: a deadlock
      // once the removal reached the consent. Now it waits at the codes, holding no consent.
      await waitsOnALock(disconnect);
      await removal.query('delete from oauth_consents where client_id = $1', [client.clientId]);
      await removal.query('rollback');
      expect((await disconnect).statusCode).toBe(204);
    });

    it('an exchange whose code a disconnect deleted meanwhile is refused without a false replay alarm', async () => {
      const { user, exchange } = await accountWithCode();
      // The disconnect: the account FOR UPDATE, then the app's unexchanged codes.
      const disconnect = await rawTransaction();
      await disconnect.query('select id from users where id = $1 for update', [user.id]);
      await disconnect.query('delete from oauth_codes where user_id = $1 and used_at is null', [user.id]);
      // The exchange read its code (the delete not yet committed) and waits for the account.
      const exchanged = exchange();
      await waitsOnALock(exchanged);
      await disconnect.query('commit');
      const answer = await exchanged;
      expect(answer.statusCode, answer.body).toBe(400);
      expect(answer.json()).toMatchObject({ error: 'invalid_grant' });
      // Before: the spend that found no row was taken for a replay and audited as one.
      const alarms = await gatehouseCore(app.gatehouse).audit.list({
        event: 'oauth_code_replayed',
        limit: 100,
        offset: 0,
      });
      expect(alarms.items.filter((item) => item.targetId === user.id)).toEqual([]);
    });

    it('a password reset waits for an account deletion that holds the account row, instead of deadlocking with it', async () => {
      const user = await createUser(app);
      const token = randomUUID();
      const now = Date.now();
      await createAccountTokenStore(gatehouseCore(app.gatehouse).database.db).storeToken(
        {
          tokenHash: hashLinkToken(token),
          userId: user.id,
          purpose: 'reset_password',
          emailKey: user.emailKey,
          email: user.email,
          createdAt: now,
          expiresAt: now + 600_000,
          sessionId: null,
        },
        1,
      );
      // The deletion: `lockAccount` (FOR UPDATE) first.
      const deletion = await rawTransaction();
      await deletion.query('select id from users where id = $1 for update', [user.id]);
      const reset = app.inject({
        method: 'POST',
        url: '/auth/reset-password',
        payload: { token, password: 'a brand new passphrase 4417' },
      });
      // Before: the reset spent its link (the link row's lock), then waited to update the user
      // row. Now: it waits for the user row, holding nothing.
      await waitsOnALock(reset);
      // Before: the cascade waited for the link's row: a deadlock (40P01).
      await deletion.query('delete from users where id = $1', [user.id]);
      await deletion.query('commit');
      const answer = await reset;
      expect(answer.statusCode, answer.body).toBe(400);
      expect(answer.json()).toMatchObject({ code: 'INVALID_LINK_TOKEN' });
    });

    // One live email change per account (migration 026a's partial unique index): two requests
    // released together both deleted the pending link and both inserted one; the second insert met
    // the first's row and answered 500 (23505). Now the later one replaces the earlier.
    it('two email changes released together leave one pending change, with no 500', async () => {
      const user = await createUser(app);
      const { access_token } = await login(app, user.email);
      // Hold the account so both requests reach their link's transaction and wait there together.
      const holder = await rawTransaction();
      await holder.query('select id from users where id = $1 for update', [user.id]);
      const requests = Promise.all(
        ['a', 'b'].map((letter) =>
          app.inject({
            method: 'PATCH',
            url: '/users/me',
            headers: bearer(access_token),
            payload: { email: `race-${letter}-${randomUUID()}@example.com`, current_password: PASSWORD },
          }),
        ),
      );
      await someoneWaitsOnALock(gatehouseCore(app.gatehouse).database, requests, 2);
      await holder.query('commit');
      for (const answer of await requests) expect(answer.statusCode, answer.body).toBe(202);
      const pending = await gatehouseCore(app.gatehouse)
        .database.db.selectFrom('account_tokens')
        .select('token_hash')
        .where('user_id', '=', user.id)
        .where('purpose', '=', 'change_email')
        .execute();
      expect(pending).toHaveLength(1);
    });

    // Helper audit 2026-12-04: a write naming a row a concurrent request deleted after it was read
    // hit the foreign key (23503) and answered 500. Each case: the deletion holds the row (not yet
    // committed), the request reads the committed row, then waits on the key check, and fails.
    it('an approval whose app is removed meanwhile shows the error page, not a 500 or a redirect', async () => {
      const doomed = (
        await gatehouseCore(app.gatehouse).oauthClients.create(
          { name: 'Doomed', redirectUris: [REDIRECT] },
          { actorId: null },
        )
      ).client;
      const user = await createUser(app);
      const browser = new Browser(app);
      expect((await browser.login(user.email)).statusCode).toBe(204);
      const removal = await rawTransaction();
      await removal.query('delete from oauth_clients where client_id = $1', [doomed.clientId]);
      const answer = authorizationAnswer(app, browser, doomed, pkce().challenge);
      await waitsOnALock(answer);
      await removal.query('commit');
      const page = await answer;
      expect(page.statusCode, page.body).toBe(409);
      expect(page.headers.location).toBeUndefined();
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.body).toContain('CONCURRENT_DELETION');
    });

    it("an admin's reset link for an account deleted meanwhile answers 404, not a 500", async () => {
      const admin = await createUser(app, { role: 'admin' });
      const { access_token } = await login(app, admin.email);
      const user = await createUser(app);
      const deletion = await rawTransaction();
      await deletion.query('delete from users where id = $1', [user.id]);
      const reset = app.inject({
        method: 'POST',
        url: `/users/${user.id}/password-reset`,
        headers: bearer(access_token),
      });
      await waitsOnALock(reset);
      await deletion.query('commit');
      const answer = await reset;
      expect(answer.statusCode, answer.body).toBe(404);
      expect(answer.json()).toMatchObject({ code: 'USER_NOT_FOUND' });
    });

    it('a Dicery join to a room deleted meanwhile (its host deleted) answers 404, not a 500', async () => {
      const host = await signIn(app);
      const room = await createRoom(app, host);
      const deletion = await rawTransaction();
      await deletion.query('delete from rooms where code = $1', [room.code]);
      const join = app.inject({
        method: 'POST',
        url: `/rooms/${room.code}/join`,
        payload: { player: 'Late', transport: 'bearer' },
      });
      await waitsOnALock(join);
      await deletion.query('commit');
      const answer = await join;
      expect(answer.statusCode, answer.body).toBe(404);
      expect(answer.json()).toMatchObject({ code: 'ROOM_NOT_FOUND' });
    });

    it('a replayed code waits for an account deletion that holds the account row, instead of deadlocking with it', async () => {
      const { user, exchange } = await accountWithCode();
      expect((await exchange()).statusCode).toBe(200);
      // The deletion (`deleteAccount`): the account FOR UPDATE, then its sessions (the session the
      // code started among them).
      const deletion = await rawTransaction();
      await deletion.query('select id from users where id = $1 for update', [user.id]);
      await deletion.query('update sessions set revoked_at = $2 where user_id = $1 and revoked_at is null', [
        user.id,
        Date.now(),
      ]);
      const replayed = exchange();
      // Before: the replay marked the code (its row's lock), then waited for the session's row.
      // Now it waits for the account, holding nothing.
      await waitsOnALock(replayed);
      // Before: the cascade waited for the code's row: a deadlock (40P01), and the deletion failed.
      await deletion.query('delete from users where id = $1', [user.id]);
      await deletion.query('commit');
      const answer = await replayed;
      expect(answer.statusCode, answer.body).toBe(400);
      expect(answer.json()).toMatchObject({ error: 'invalid_grant' });
    });

    // Review of 7974bf5 (red-team 2026-12s M1's fix): turning the app off took the account KEY SHARE
    // (and its gate shared), spent the code, and only then ended the sessions, which takes the gate
    // exclusive and the row FOR UPDATE. A sign-in in progress (gate shared, account KEY SHARE) that
    // then spent its TOTP step waited for the authenticator's row: 40P01, answered 503.
    it('turning the authenticator off waits for a sign-in in progress, instead of deadlocking with it', async () => {
      const { user, token, recoveryCodes } = await enrolTotpSignedIn(app, Date.now());
      const signIn = await rawTransaction();
      // A sign-in's first statements: the account's gate (shared), the account KEY SHARE.
      await signIn.query('select pg_advisory_xact_lock_shared(hashtextextended($1, 0))', [
        accountGateLabel(user.id),
      ]);
      await signIn.query('select id from users where id = $1 for key share', [user.id]);
      const disable = turnAuthenticatorOff(token, String(recoveryCodes[0]));
      // It waits for the gate before it spends anything.
      await waitsOnALock(disable);
      // The sign-in spends its TOTP step, and commits.
      await signIn.query('update mfa_totp set last_step = coalesce(last_step, 0) + 1 where user_id = $1', [
        user.id,
      ]);
      await signIn.query('commit');
      const answer = await disable;
      expect(answer.statusCode, answer.body).toBe(204);
    });

    it('an MFA change with a recovery code waits for an account deletion that holds the account row, instead of deadlocking with it', async () => {
      const { user, token, recoveryCodes } = await enrolTotpSignedIn(app, Date.now());
      // The deletion (`deleteOwnAccount`): the account FOR UPDATE first.
      const deletion = await rawTransaction();
      await deletion.query('select id from users where id = $1 for update', [user.id]);
      const disable = turnAuthenticatorOff(token, String(recoveryCodes[0]));
      // It waits for the account before it spends the code (the code row's lock).
      await waitsOnALock(disable);
      // The cascade deletes the recovery codes: had the change spent one first, this waited for
      // its row, a deadlock (40P01).
      await deletion.query('delete from users where id = $1', [user.id]);
      await deletion.query('commit');
      const answer = await disable;
      // Then it finds its session gone with the account (re-read under the account's lock since
      // red-team 2026-12t; before that, the account's codes: 400 INVALID_OTP). Before the lock
      // order: 503 TRANSACTION_CONFLICT.
      expect(answer.statusCode, answer.body).toBe(401);
      expect(answer.json()).toMatchObject({ code: 'INVALID_TOKEN' });
    });

    // A change paid with a TOTP code (new recovery codes, turning the app off) takes the account
    // (KEY SHARE), then the step on the authenticator's row, then the recovery codes. A change paid
    // with a recovery code must take the authenticator's row before the code too: had it used the
    // code first, each would wait for the other (40P01, answered 503 TRANSACTION_CONFLICT).
    it.each([
      // A run of wrong codes to end (MFA_MAX_CONSECUTIVE_FAILURES): new recovery codes.
      { run: 1, change: 'new recovery codes', method: 'POST' as const, url: '/users/me/mfa/recovery-codes' },
      // No run pending, the common case: turning the app off (deleteFactors deletes the row after).
      { run: 0, change: 'turning the app off', method: 'DELETE' as const, url: '/users/me/mfa/totp' },
    ])(
      "a recovery code's spending ($change, run of wrong codes: $run) takes the authenticator's row before the codes instead of deadlocking with a TOTP-paid change",
      async ({ run, method, url }) => {
        const { user, token, recoveryCodes } = await enrolTotpSignedIn(app, Date.now());
        await gatehouseCore(app.gatehouse)
          .database.db.updateTable('mfa_totp')
          .set({ consecutive_failures: run })
          .where('user_id', '=', user.id)
          .execute();
        const totpChange = await rawTransaction();
        await totpChange.query('select id from users where id = $1 for key share', [user.id]);
        await totpChange.query(
          'update mfa_totp set last_step = coalesce(last_step, 0) + 1 where user_id = $1',
          [user.id],
        );
        const change = app.inject({
          method,
          url,
          headers: bearer(token),
          payload: { code: recoveryCodes[0] },
        });
        // It waits at the authenticator's row, holding no recovery code's lock.
        await waitsOnALock(change);
        await totpChange.query('delete from mfa_recovery_codes where user_id = $1', [user.id]);
        await totpChange.query('commit');
        const answer = await change;
        // Then it finds the codes replaced: a wrong code, not 503 TRANSACTION_CONFLICT.
        expect(answer.statusCode, answer.body).toBe(400);
        expect(answer.json()).toMatchObject({ code: 'INVALID_OTP' });
      },
    );

    it("an admin change that waited while a super admin was promoted takes the new super admin's gate before its row", async () => {
      const boss = await signIn(app, 'super_admin');
      const target = await createUser(app);
      const promoted = await createUser(app);
      const { refresh_token: refreshToken } = await login(app, promoted.email);
      const gateKey = async (userId: string) => {
        const { rows } = await (raw as pg.Client).query<{ key: string }>(
          'select hashtextextended($1, 0)::text as key',
          [accountGateLabel(userId)],
        );
        return String(rows[0]?.key);
      };
      /**
       * Resolves once `n` lock waits match `where` (pg_locks; `$1` is `key`), or `settled` settles.
       */
      const waits = async (where: string, key: string, n: number, settled: Promise<unknown>) => {
        let done = false;
        void settled.finally(() => {
          done = true;
        });
        while (!done) {
          const { rows } = await (raw as pg.Client).query<{ n: string }>(
            `select count(*) as n from pg_locks where not granted and ${where}`,
            [key],
          );
          if (Number(rows[0]?.n) >= n) return;
          await new Promise((resolve) => setImmediate(resolve));
        }
      };
      const AT_GATE = `locktype = 'advisory' and ((classid::bigint << 32) | objid::bigint)::text = $1`;
      // A promotion in progress (`lockParties`): every super admin's gate, then the update.
      const promotion = await rawTransaction();
      await promotion.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [
        accountGateLabel(boss.user.id),
      ]);
      await promotion.query(`update users set role = 'super_admin' where id = $1`, [promoted.id]);
      // The promoted account's refresh in flight, on a connection of its own.
      const inFlight = new pg.Client({ connectionString: url });
      await inFlight.connect();
      try {
        await inFlight.query('begin');
        await inFlight.query('select pg_advisory_xact_lock_shared(hashtextextended($1, 0))', [
          accountGateLabel(promoted.id),
        ]);
        await inFlight.query('select id from users where id = $1 for key share', [promoted.id]);
        // The boss disables someone: it reads the super admins (the promotion not yet committed)
        // and waits for the boss's gate.
        const change = app.inject({
          method: 'PATCH',
          url: `/users/${target.id}`,
          headers: boss.headers,
          payload: { is_active: false },
        });
        const bossGate = await gateKey(boss.user.id);
        await waits(AT_GATE, bossGate, 1, change);
        await promotion.query('commit');
        // Now a super admin too: the change waits for the refresh, at the new super admin's gate
        // (before: at its row, having skipped the gate).
        await waits(`not (${AT_GATE})`, bossGate, 1, change);
        let refreshAnswered = false;
        const refreshed = postToken(app, {
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
        }).finally(() => {
          refreshAnswered = true;
        });
        // Before: the change locked the new super admin's row without its gate, so this refresh
        // passed it (row shares do not queue) and answered while the change still waited.
        await waits(AT_GATE, await gateKey(promoted.id), 2, refreshed);
        expect(refreshAnswered).toBe(false);
        await inFlight.query('commit');
        expect((await change).statusCode).toBe(200);
        expect((await refreshed).statusCode).toBe(200);
      } finally {
        await inFlight.end();
      }
    });

    /**
     * What a thief holding a refresh token could keep from ending: "log out everywhere" (the
     * account's own bearer session), a password change, an admin's disable, and disconnecting the
     * app (the app's session).
     */
    const revocations = [
      {
        name: '"log out everywhere"',
        setUp: async (email: string) => {
          const { access_token: token, refresh_token: refreshToken } = await login(app, email);
          const revoke = () =>
            app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(token) });
          return { refresh: { refresh_token: refreshToken }, revoke, done: 204 };
        },
      },
      {
        name: 'a password change',
        setUp: async (email: string) => {
          const { refresh_token: refreshToken } = await login(app, email);
          const { access_token: token } = await login(app, email);
          // Ends the account's other sessions, the thief's among them.
          const revoke = () =>
            app.inject({
              method: 'PATCH',
              url: '/users/me',
              headers: bearer(token),
              payload: { password: 'a brand new passphrase 4417', current_password: PASSWORD },
            });
          return { refresh: { refresh_token: refreshToken }, revoke, done: 200 };
        },
      },
      {
        name: 'an admin disabling the account',
        setUp: async (email: string) => {
          const { refresh_token: refreshToken, access_token: token } = await login(app, email);
          const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
          const admin = await signIn(app, 'admin');
          const revoke = () =>
            app.inject({
              method: 'PATCH',
              url: `/users/${me.json().id}`,
              headers: admin.headers,
              payload: { is_active: false },
            });
          return { refresh: { refresh_token: refreshToken }, revoke, done: 200 };
        },
      },
      {
        name: 'disconnecting an app',
        setUp: async (email: string) => {
          const browser = new Browser(app);
          expect((await browser.login(email)).statusCode).toBe(204);
          const { refresh_token: refreshToken } = await tokensFor(app, browser, client);
          const revoke = async () =>
            browser.request('DELETE', `/users/me/connected-apps/${client.clientId}`, {
              headers: { 'x-csrf-token': await browser.csrf() },
            });
          // The app's refresh names its client (RFC 6749 §6).
          return { refresh: { refresh_token: refreshToken, client_id: client.clientId }, revoke, done: 204 };
        },
      },
    ];

    it.each(revocations)(
      'a refresh arriving while $name waits for the account queues behind it, so a stream of refreshes cannot keep it waiting',
      async ({ setUp }) => {
        const user = await createUser(app);
        const { refresh, revoke, done } = await setUp(user.email);
        // A sign-in or refresh in flight, as `lockUser` takes it: the account's gate shared, then
        // the row's share. The revocation then queues at the gate, and the refresh behind it.
        const inFlight = await rawTransaction();
        await inFlight.query('select pg_advisory_xact_lock_shared(hashtextextended($1, 0))', [
          accountGateLabel(user.id),
        ]);
        await inFlight.query('select id from users where id = $1 for key share', [user.id]);
        const revoked = revoke();
        await waitsOnALock(revoked);
        let refreshAnswered = false;
        const refreshed = postToken(app, { grant_type: 'refresh_token', ...refresh }).finally(() => {
          refreshAnswered = true;
        });
        // Before: PostgreSQL granted the refresh's KEY SHARE beside the one in flight, past the
        // waiting FOR UPDATE (row locks do not queue), so it answered 200 while the revocation
        // still waited; refreshes overlapping without end kept it waiting until statement_timeout.
        // Now the refresh waits at the account's gate, behind the revocation.
        await someoneWaitsOnALock(gatehouseCore(app.gatehouse).database, refreshed, 2);
        expect(refreshAnswered).toBe(false);
        await inFlight.query('commit');
        expect((await revoked).statusCode).toBe(done);
        const answer = await refreshed;
        expect(answer.statusCode, answer.body).toBe(400);
        expect(answer.json()).toMatchObject({ error: 'invalid_grant' });
      },
    );
  },
);
