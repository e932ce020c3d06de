import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { MFA_OTP_GRANT_TYPE } from '../../src/sessions/token-grants.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD, postToken } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';

const STEP = 30_000;
const NEW_PASSWORD = 'a brand new passphrase';

describe('step-up: recent authentication for sensitive changes (RFC 9470)', () => {
  let app: FastifyInstance;
  let clock: TestClock;
  let maxAgeMs: number;

  beforeAll(async () => {
    clock = createTestClock();
    app = await buildTestServer({}, { clock, scheduler: clock });
    maxAgeMs = app.gatehouse.config.stepUpMaxAge * 1000;
  });
  afterAll(async () => app.close());

  /** An account with a confirmed authenticator, signed in with both factors. */
  const enrolled = async () => {
    const user = await createUser(app, { verified: true });
    const { access_token: setup } = await login(app, user.email);
    const { secret } = (
      await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(setup) })
    ).json<{ secret: string }>();
    await app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp/confirm',
      headers: bearer(setup),
      payload: { code: generateTotpCode(secret, clock()) },
    });
    const challenge = await postToken(app, {
      grant_type: 'password',
      username: user.email,
      password: PASSWORD,
    });
    const tokens = await postToken(app, {
      grant_type: MFA_OTP_GRANT_TYPE,
      mfa_token: challenge.json().mfa_token,
      otp: generateTotpCode(secret, clock() + STEP),
    });
    expect(tokens.statusCode).toBe(200);
    return { user, secret, token: tokens.json<{ access_token: string }>().access_token };
  };

  const changePassword = (token: string) =>
    app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: bearer(token),
      payload: { password: NEW_PASSWORD, current_password: PASSWORD },
    });

  it('refuses a password change from a session older than STEP_UP_MAX_AGE with RFC 9470 insufficient_user_authentication', async () => {
    const { token } = await enrolled();
    clock.advance(maxAgeMs + 1000);
    const response = await changePassword(token);
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('STEP_UP_REQUIRED');
    const challenge = response.headers['www-authenticate'];
    expect(challenge).toMatch(/^Bearer realm="gatehouse", error="insufficient_user_authentication"/);
    expect(challenge).toContain(`max_age=${maxAgeMs / 1000}`);
  });

  it('accepts the change after re-authenticating with every factor (password alone is not enough)', async () => {
    const { secret, token } = await enrolled();
    clock.advance(maxAgeMs + 1000);
    const passwordOnly = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate',
      headers: bearer(token),
      payload: { current_password: PASSWORD },
    });
    expect(passwordOnly.statusCode).toBe(400);
    expect(passwordOnly.json().code).toBe('INVALID_OTP');
    const reauth = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate',
      headers: bearer(token),
      payload: { current_password: PASSWORD, otp: generateTotpCode(secret, clock()) },
    });
    expect(reauth.statusCode).toBe(200);
    expect(reauth.json()).toEqual({ auth_time: Math.floor(clock() / 1000), amr: ['pwd', 'otp', 'mfa'] });
    expect((await changePassword(token)).statusCode).toBe(200);
  });

  it('counts current_password as step-up for an account without a second factor', async () => {
    const user = await createUser(app);
    const { access_token: token } = await login(app, user.email);
    clock.advance(maxAgeMs + 1000);
    expect((await changePassword(token)).statusCode).toBe(200);
  });

  // Red-team 2026-12c H2: with a second factor only recency was checked, and a wrong
  // current_password deleted the account (or started an email change) all the same.
  it('needs the right current_password as well as a recent authentication to delete an account with a second factor', async () => {
    const { user, token } = await enrolled();
    const remove = (currentPassword: string) =>
      app.inject({
        method: 'DELETE',
        url: '/users/me',
        headers: bearer(token),
        payload: { current_password: currentPassword },
      });
    const wrong = await remove('not-the-password');
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().code).toBe('INVALID_CURRENT_PASSWORD');
    const emailChange = await app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: bearer(token),
      payload: { email: `moved-${user.email}`, current_password: 'not-the-password' },
    });
    expect(emailChange.json().code).toBe('INVALID_CURRENT_PASSWORD');
    // Recency is still checked first: an old session gets STEP_UP_REQUIRED, even with the password.
    clock.advance(maxAgeMs + 1000);
    expect((await remove(PASSWORD)).json().code).toBe('STEP_UP_REQUIRED');
    expect(await gatehouseCore(app.gatehouse).users.findUserById(user.id)).toBeDefined();
  });

  it('deletes an account with a second factor given a recent authentication and the right password', async () => {
    const { user, token } = await enrolled();
    const response = await app.inject({
      method: 'DELETE',
      url: '/users/me',
      headers: bearer(token),
      payload: { current_password: PASSWORD },
    });
    expect(response.statusCode).toBe(204);
    expect(await gatehouseCore(app.gatehouse).users.findUserById(user.id)).toBeUndefined();
  });

  it('asks for a recent authentication before setting up an authenticator', async () => {
    const user = await createUser(app, { verified: true });
    const { access_token: token } = await login(app, user.email);
    clock.advance(maxAgeMs + 1000);
    const stale = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(token) });
    expect(stale.statusCode).toBe(401);
    expect(stale.json().code).toBe('STEP_UP_REQUIRED');
    const reauth = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate',
      headers: bearer(token),
      payload: { current_password: PASSWORD },
    });
    expect(reauth.json().amr).toEqual(['pwd']);
    const fresh = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(token) });
    expect(fresh.statusCode).toBe(201);
  });

  it('puts auth_time and amr in access tokens: pwd for a password, otp and mfa with a second factor', async () => {
    const plain = await createUser(app);
    const claims = decodeJwt((await login(app, plain.email)).access_token);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.auth_time).toBe(Math.floor(clock() / 1000));
    const { token } = await enrolled();
    expect(decodeJwt(token).amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('limits wrong passwords at re-authentication per session', async () => {
    const user = await createUser(app);
    const { access_token: token } = await login(app, user.email);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const response = await app.inject({
        method: 'POST',
        url: '/auth/reauthenticate',
        headers: bearer(token),
        payload: { current_password: 'not the password at all' },
      });
      statuses.push(response.statusCode);
    }
    expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
    expect(statuses[5]).toBe(429);
  });

  it('re-authenticates a cookie session (with its CSRF token) and refuses anonymous callers', async () => {
    const user = await createUser(app);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    const csrf = await browser.csrf();
    const response = await browser.request('POST', '/auth/reauthenticate', {
      headers: { 'x-csrf-token': csrf },
      payload: { current_password: PASSWORD },
    });
    expect(response.statusCode).toBe(200);
    const anonymous = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate',
      payload: { current_password: PASSWORD },
    });
    expect(anonymous.statusCode).toBe(401);
  });

  it('exposes the check to the core’s modules: gatehouseCore(gatehouse).stepUp.requireRecentAuthentication', async () => {
    const user = await createUser(app);
    const { access_token: token } = await login(app, user.email);
    const sid = decodeJwt(token).sid as string;
    await expect(
      gatehouseCore(app.gatehouse).stepUp.requireRecentAuthentication(sid),
    ).resolves.toBeUndefined();
    clock.advance(maxAgeMs + 1000);
    await expect(gatehouseCore(app.gatehouse).stepUp.requireRecentAuthentication(sid)).rejects.toMatchObject({
      code: 'STEP_UP_REQUIRED',
    });
  });
});
