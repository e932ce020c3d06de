import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, createUser, PASSWORD } from '../support/accounts.js';
import { createAuditFault } from '../support/audit-fault.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { enrolTotp, postMfaGrant, requestMfaToken } from '../support/mfa.js';

const STEP = 30_000;
const PARALLEL = 8;

/**
 * The second step of an MFA login spends a one-time secret (a recovery code, a TOTP step, the
 * `mfa_token`) to buy a session. Both are written in one transaction: a database failure before
 * the session is written must leave the code and the token usable, and two requests racing with
 * one token must end with exactly one session and one spent code.
 */
describe.each(engines)('MFA login completion is one transaction ($name)', ({ name }) => {
  let app: FastifyInstance;
  let clock: TestClock;
  let drop: () => Promise<void> = async () => {};

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    clock = createTestClock();
    app = await buildTestServer(
      { databaseUrl: database.url, mfaMaxFailuresPerToken: 3, mfaMaxFailuresPerAccount: 50 },
      { clock, scheduler: clock },
    );
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });
  afterEach(async () => healFault());

  /** The login's last write (its `login_succeeded` audit row) fails as in an outage. */
  const injectFault = () => createAuditFault(gatehouseCore(app.gatehouse).database.db, name).inject();
  const healFault = () => createAuditFault(gatehouseCore(app.gatehouse).database.db, name).heal();

  const enrolled = () => enrolTotp(app, clock());
  const mfaToken = (email: string) => requestMfaToken(app, email);
  const mfaGrant = (token: string, otp: string) => postMfaGrant(app, token, otp);

  const liveSessions = (userId: string) =>
    gatehouseCore(app.gatehouse).sessionStore.listLiveSessions(userId, clock());
  const recoveryCodesLeft = (userId: string) => gatehouseCore(app.gatehouse).mfa.status(userId);
  const auditOf = async (userId: string, event: 'login_succeeded' | 'mfa_recovery_code_used') => {
    const page = await gatehouseCore(app.gatehouse).audit.list({ event, limit: 100, offset: 0 });
    return page.items.filter((item) => item.targetId === userId);
  };

  const expectOutage = (response: LightMyRequestResponse) => {
    expect(response.statusCode, response.body).toBe(503);
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
    expect(response.body).not.toMatch(/injected|trigger|at .*\.js/);
  };

  it('/token: an outage before the session is written spends neither the recovery code nor the mfa_token', async () => {
    const { user, recoveryCodes } = await enrolled();
    const code = String(recoveryCodes[0]);
    const token = await mfaToken(user.email);
    await injectFault();
    expectOutage(await mfaGrant(token, code));
    await healFault();
    expect(await liveSessions(user.id)).toEqual([]);
    expect((await recoveryCodesLeft(user.id)).recoveryCodesLeft).toBe(10);
    expect(await auditOf(user.id, 'mfa_recovery_code_used')).toEqual([]);

    // The same token and the same code finish the login once the database is back.
    const retried = await mfaGrant(token, code);
    expect(retried.statusCode, retried.body).toBe(200);
    const { access_token: accessToken } = retried.json<{ access_token: string }>();
    const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(accessToken) });
    expect(me.statusCode).toBe(200);
    expect(await liveSessions(user.id)).toHaveLength(1);
    expect((await recoveryCodesLeft(user.id)).recoveryCodesLeft).toBe(9);
    expect(await auditOf(user.id, 'mfa_recovery_code_used')).toHaveLength(1);
    expect(await auditOf(user.id, 'login_succeeded')).toHaveLength(2); // the enrolling login, this one
    // And then both are spent.
    expect((await mfaGrant(token, code)).json().error).toBe('invalid_grant');
    expect((await mfaGrant(await mfaToken(user.email), code)).json().error).toBe('invalid_grant');
  });

  it('/token: an outage does not burn the TOTP step, nor count as a wrong code', async () => {
    const { user, secret } = await enrolled();
    const token = await mfaToken(user.email);
    const otp = generateTotpCode(secret, clock() + STEP);
    await injectFault();
    // More outages than the token's cap of 3 wrong codes: none of them is charged to it.
    for (let i = 0; i < 4; i++) expectOutage(await mfaGrant(token, otp));
    await healFault();
    const retried = await mfaGrant(token, otp);
    expect(retried.statusCode, retried.body).toBe(200);
    // The step is spent now: the code cannot start a second session.
    expect((await mfaGrant(await mfaToken(user.email), otp)).json().error).toBe('invalid_grant');
    expect(await liveSessions(user.id)).toHaveLength(1);
  });

  it('/token: a wrong code stays counted and audited although the login fails', async () => {
    const { user, secret } = await enrolled();
    const token = await mfaToken(user.email);
    const failedBefore = await gatehouseCore(app.gatehouse).audit.list({
      event: 'mfa_failed',
      limit: 1,
      offset: 0,
    });
    for (let i = 0; i < 3; i++) expect((await mfaGrant(token, 'AAAA-BBBB-CCCC')).statusCode).toBe(400);
    const failedAfter = await gatehouseCore(app.gatehouse).audit.list({
      event: 'mfa_failed',
      limit: 1,
      offset: 0,
    });
    expect(failedAfter.total - failedBefore.total).toBe(3);
    // Attributed to the account the token names (red-team 2026-12k P5): its owner's audit view
    // shows them, and the account's deletion erases their IP and user agent.
    const mine = await gatehouseCore(app.gatehouse).audit.list({
      event: 'mfa_failed',
      targetId: user.id,
      limit: 10,
      offset: 0,
    });
    expect(mine.total).toBe(3);
    // The token spent its 3 tries: dead, even with a right code.
    const dead = await mfaGrant(token, generateTotpCode(secret, clock() + STEP));
    expect(dead.json().error_description).toMatch(/out of tries/);
    expect(await liveSessions(user.id)).toEqual([]);
  });

  it('/auth/login/mfa: an outage keeps the recovery code, the mfa_token and the previous cookie session', async () => {
    const { user, recoveryCodes } = await enrolled();
    const code = String(recoveryCodes[1]);
    const browser = new Browser(app);
    // A browser already signed in to another account: the MFA sign-in ends that session.
    const other = await createUser(app);
    expect((await browser.login(other.email)).statusCode).toBe(204);
    expect(await liveSessions(other.id)).toHaveLength(1);

    const first = await browser.login(user.email);
    expect(first.statusCode).toBe(200);
    const token = first.json<{ mfa_token: string }>().mfa_token;
    const complete = async () =>
      browser.request('POST', '/auth/login/mfa', {
        headers: { 'x-csrf-token': await browser.csrf() },
        payload: { mfa_token: token, otp: code },
      });
    await injectFault();
    const failed = await complete();
    expectOutage(failed);
    expect(failed.headers['content-type']).toMatch(/^application\/problem\+json/);
    await healFault();
    expect(await liveSessions(user.id)).toEqual([]);
    expect(await liveSessions(other.id)).toHaveLength(1);
    expect((await recoveryCodesLeft(user.id)).recoveryCodesLeft).toBe(10);

    const retried = await complete();
    expect(retried.statusCode, retried.body).toBe(204);
    expect(await liveSessions(user.id)).toHaveLength(1);
    expect(await liveSessions(other.id)).toEqual([]);
    expect((await recoveryCodesLeft(user.id)).recoveryCodesLeft).toBe(9);
    const me = await browser.request('GET', '/users/me');
    expect(me.json().email).toBe(user.email);
  });

  /** A bearer token of `email`'s, signed in with the authenticator's next code. */
  const signedIn = async (email: string, secret: string, step: number) => {
    const response = await mfaGrant(await mfaToken(email), generateTotpCode(secret, clock() + step * STEP));
    expect(response.statusCode, response.body).toBe(200);
    return response.json<{ access_token: string }>().access_token;
  };

  it('turning the authenticator off with a recovery code: an outage spends nothing and leaves it on', async () => {
    const { user, secret, recoveryCodes } = await enrolled();
    const token = await signedIn(user.email, secret, 1);
    const turnOff = () =>
      app.inject({
        method: 'DELETE',
        url: '/users/me/mfa/totp',
        headers: bearer(token),
        payload: { code: recoveryCodes[2] },
      });
    const fault = createAuditFault(gatehouseCore(app.gatehouse).database.db, name, 'mfa_disabled');
    await fault.inject();
    try {
      expectOutage(await turnOff());
    } finally {
      await fault.heal();
    }
    expect(await recoveryCodesLeft(user.id)).toMatchObject({ totp: 'on', recoveryCodesLeft: 10 });
    expect((await turnOff()).statusCode).toBe(204);
    expect(await recoveryCodesLeft(user.id)).toMatchObject({ totp: 'off', recoveryCodesLeft: 0 });
  });

  it('re-authenticating with a recovery code: an outage spends nothing; the retry moves auth_time once', async () => {
    const { user, secret, recoveryCodes } = await enrolled();
    const token = await signedIn(user.email, secret, 1);
    const reauthenticate = () =>
      app.inject({
        method: 'POST',
        url: '/auth/reauthenticate',
        headers: bearer(token),
        payload: { current_password: PASSWORD, otp: recoveryCodes[3] },
      });
    const fault = createAuditFault(gatehouseCore(app.gatehouse).database.db, name, 'reauthenticated');
    await fault.inject();
    clock.advance(60_000);
    try {
      expectOutage(await reauthenticate());
    } finally {
      await fault.heal();
    }
    const [session] = await liveSessions(user.id);
    expect(session?.authTime).toBe(clock() - 60_000);
    expect((await recoveryCodesLeft(user.id)).recoveryCodesLeft).toBe(10);
    const retried = await reauthenticate();
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json()).toEqual({ auth_time: Math.floor(clock() / 1000), amr: ['pwd', 'mfa'] });
    expect((await recoveryCodesLeft(user.id)).recoveryCodesLeft).toBe(9);
    // Spent: the same code cannot re-authenticate twice.
    expect((await reauthenticate()).json().code).toBe('INVALID_OTP');
  });

  it(`/token: ${PARALLEL} parallel completions with one mfa_token and one code give exactly one session`, async () => {
    const { user, secret } = await enrolled();
    const token = await mfaToken(user.email);
    const otp = generateTotpCode(secret, clock() + STEP);
    const responses = await Promise.all(Array.from({ length: PARALLEL }, () => mfaGrant(token, otp)));
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([200, ...Array<number>(PARALLEL - 1).fill(400)]);
    for (const response of responses) {
      if (response.statusCode === 400) expect(response.json().error).toBe('invalid_grant');
    }
    expect(await liveSessions(user.id)).toHaveLength(1);
    expect(await auditOf(user.id, 'login_succeeded')).toHaveLength(2);
  });

  it(`/token: ${PARALLEL} parallel completions with one mfa_token and different recovery codes spend one code`, async () => {
    const { user, recoveryCodes } = await enrolled();
    const token = await mfaToken(user.email);
    const responses = await Promise.all(
      recoveryCodes.slice(0, PARALLEL).map((code) => mfaGrant(token, code)),
    );
    expect(responses.filter((response) => response.statusCode === 200)).toHaveLength(1);
    expect(await liveSessions(user.id)).toHaveLength(1);
    // The losers' codes were never spent: the token was claimed first, and their work rolled back.
    expect((await recoveryCodesLeft(user.id)).recoveryCodesLeft).toBe(9);
    expect(await auditOf(user.id, 'mfa_recovery_code_used')).toHaveLength(1);
  });
});
