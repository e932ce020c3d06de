import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { outboxDirectory, readOutbox } from '../../src/mail/outbox.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { MFA_OTP_GRANT_TYPE } from '../../src/sessions/token-grants.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, cookiesOf, createUser, login, PASSWORD, postToken } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { enrolTotpSignedIn } from '../support/mfa.js';

const STEP = 30_000;

describe('second factors: TOTP, recovery codes, MFA login', () => {
  let app: FastifyInstance;
  let clock: TestClock;

  beforeAll(async () => {
    clock = createTestClock();
    app = await buildTestServer(
      { mfaMaxFailuresPerToken: 3, mfaMaxFailuresPerAccount: 6, loginMaxFailuresPerDevice: 5 },
      { clock, scheduler: clock },
    );
  });
  afterAll(async () => app.close());

  /** A new account with a confirmed authenticator; its confirming code used up the current step. */
  const enrolled = () => enrolTotpSignedIn(app, clock());

  const passwordGrant = (email: string, extra: Record<string, string> = {}) =>
    postToken(app, { grant_type: 'password', username: email, password: PASSWORD, ...extra });

  const mfaToken = async (email: string, extra: Record<string, string> = {}) => {
    const response = await passwordGrant(email, extra);
    expect(response.statusCode).toBe(400);
    return response.json<{ mfa_token: string }>().mfa_token;
  };

  const mfaGrant = (token: string, otp: string) =>
    postToken(app, { grant_type: MFA_OTP_GRANT_TYPE, mfa_token: token, otp });

  it('enrols: a secret and otpauth URI, pending until a first code confirms it', async () => {
    const user = await createUser(app, { verified: true });
    const { access_token: token } = await login(app, user.email);
    const started = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(token) });
    expect(started.statusCode).toBe(201);
    expect(started.headers['cache-control']).toBe('no-store');
    const { secret, otpauth_uri: uri } = started.json<{ secret: string; otpauth_uri: string }>();
    expect(uri).toMatch(/^otpauth:\/\/totp\//);
    expect(new URL(uri).searchParams.get('secret')).toBe(secret);
    const status = await app.inject({ method: 'GET', url: '/users/me/mfa', headers: bearer(token) });
    expect(status.json()).toEqual({ totp: 'pending', recovery_codes_left: 0, passkeys: 0 });
    // A pending enrolment changes nothing at login.
    expect((await passwordGrant(user.email)).statusCode).toBe(200);

    const wrong = await app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp/confirm',
      headers: bearer(token),
      payload: { code: generateTotpCode(secret, clock() + 10 * STEP) },
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().code).toBe('INVALID_OTP');
    const confirmed = await app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp/confirm',
      headers: bearer(token),
      payload: { code: generateTotpCode(secret, clock()) },
    });
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.json().recovery_codes).toHaveLength(10);
    const after = await app.inject({ method: 'GET', url: '/users/me/mfa', headers: bearer(token) });
    expect(after.json()).toEqual({ totp: 'on', recovery_codes_left: 10, passkeys: 0 });
  });

  it('refuses a second enrolment while an authenticator is on, and a confirmation without one', async () => {
    const { user, token, secret } = await enrolled();
    // The session that enrolled signed in with the password alone: it may not change the factors
    // any more (requireFactorChangeAuthentication); a session signed in with a code may.
    const stale = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(token) });
    expect(stale.statusCode).toBe(401);
    expect(stale.json().code).toBe('STEP_UP_REQUIRED');
    clock.advance(STEP);
    const signedIn = await mfaGrant(await mfaToken(user.email), generateTotpCode(secret, clock()));
    expect(signedIn.statusCode).toBe(200);
    const again = await app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp',
      headers: bearer(signedIn.json().access_token),
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('MFA_ALREADY_ENABLED');
    // A proven address (an unproven one is refused first: EMAIL_NOT_VERIFIED, red team 2026-12d I4).
    const other = await createUser(app, { verified: true });
    const { access_token: otherToken } = await login(app, other.email);
    const confirm = await app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp/confirm',
      headers: bearer(otherToken),
      payload: { code: '123456' },
    });
    expect(confirm.statusCode).toBe(409);
    expect(confirm.json().code).toBe('MFA_ENROLMENT_NOT_STARTED');
  });

  it('the password grant answers mfa_required with an mfa_token, no tokens and no device token', async () => {
    const { user } = await enrolled();
    const response = await passwordGrant(user.email);
    expect(response.statusCode).toBe(400);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json();
    expect(body).toMatchObject({ error: 'mfa_required', code: 'MFA_REQUIRED' });
    expect(typeof body.mfa_token).toBe('string');
    expect(body).not.toHaveProperty('access_token');
    expect(body).not.toHaveProperty('device_token');
  });

  it('the mfa-otp grant completes the login with the next code, and then hands out the device token', async () => {
    const { user, secret } = await enrolled();
    const token = await mfaToken(user.email);
    const response = await mfaGrant(token, generateTotpCode(secret, clock() + STEP));
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.device_token).toEqual(expect.any(String));
    expect(body.scope).toContain('me');
    const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(body.access_token) });
    expect(me.json().id).toBe(user.id);
    // Single use: the same mfa_token cannot mint a second session, even with a valid recovery code.
    const again = await mfaGrant(token, generateTotpCode(secret, clock() + STEP));
    expect(again.statusCode).toBe(400);
    expect(again.json().error).toBe('invalid_grant');
  });

  it('refuses a replayed code: the one that confirmed enrolment, and one already used to log in', async () => {
    const { user, secret } = await enrolled();
    const used = generateTotpCode(secret, clock());
    const replay = await mfaGrant(await mfaToken(user.email), used);
    expect(replay.statusCode).toBe(400);
    expect(replay.json().error).toBe('invalid_grant');
    const next = generateTotpCode(secret, clock() + STEP);
    expect((await mfaGrant(await mfaToken(user.email), next)).statusCode).toBe(200);
    expect((await mfaGrant(await mfaToken(user.email), next)).statusCode).toBe(400);
  });

  it('accepts each recovery code once, in any case and with spaces', async () => {
    const { user, token, recoveryCodes } = await enrolled();
    const [code = ''] = recoveryCodes;
    const first = await mfaGrant(await mfaToken(user.email), ` ${code.toUpperCase()} `);
    expect(first.statusCode).toBe(200);
    const second = await mfaGrant(await mfaToken(user.email), code);
    expect(second.statusCode).toBe(400);
    const status = await app.inject({ method: 'GET', url: '/users/me/mfa', headers: bearer(token) });
    expect(status.json().recovery_codes_left).toBe(9);
    const audit = await gatehouseCore(app.gatehouse).audit.list({
      limit: 5,
      offset: 0,
      event: 'mfa_recovery_code_used',
    });
    expect(audit.items.some((item) => item.targetId === user.id)).toBe(true);
  });

  it('kills an mfa_token after MFA_MAX_FAILURES_PER_TOKEN wrong codes, even for the right one', async () => {
    const { user, secret } = await enrolled();
    const token = await mfaToken(user.email);
    for (let i = 0; i < 3; i++) {
      const wrong = await mfaGrant(token, '000000');
      expect(wrong.json().error).toBe('invalid_grant');
    }
    const right = await mfaGrant(token, generateTotpCode(secret, clock() + STEP));
    expect(right.statusCode).toBe(400);
    expect(right.json().error).toBe('invalid_grant');
    // A new password login gets a new token with its own tries.
    expect(
      (await mfaGrant(await mfaToken(user.email), generateTotpCode(secret, clock() + STEP))).statusCode,
    ).toBe(200);
  });

  it('caps wrong codes per account, but never for a client that completed a login there before', async () => {
    const { user, secret } = await enrolled();
    // A second later: a device token from the very second of the confirmation is not trusted
    // (tokens carry whole seconds, so it may predate it: red-team 2026-12h M4).
    clock.advance(1000);
    // The owner's phone signed in fully once: it holds a device token.
    const ownerLogin = await mfaGrant(await mfaToken(user.email), generateTotpCode(secret, clock() + STEP));
    const deviceToken = ownerLogin.json().device_token as string;
    // Someone who knows the password spends the account's allowance over fresh tokens.
    for (let round = 0; round < 2; round++) {
      const token = await mfaToken(user.email);
      for (let i = 0; i < 3; i++) await mfaGrant(token, '000000');
    }
    clock.advance(STEP); // the owner's login spent the next step
    const locked = await mfaGrant(await mfaToken(user.email), generateTotpCode(secret, clock() + STEP));
    expect(locked.statusCode).toBe(429);
    expect(locked.json()).toMatchObject({
      error: 'temporarily_unavailable',
      code: 'TOO_MANY_LOGIN_ATTEMPTS',
    });
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    // The owner's device is charged to its own counter: it still gets in.
    const owner = await mfaGrant(
      await mfaToken(user.email, { device_token: deviceToken }),
      generateTotpCode(secret, clock() + STEP),
    );
    expect(owner.statusCode).toBe(200);
  });

  it('refuses forged, tampered and browser-flow mfa_tokens', async () => {
    const { user, secret } = await enrolled();
    const token = await mfaToken(user.email);
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    for (const bad of ['v1.AAAA', 'nonsense', tampered]) {
      const response = await mfaGrant(bad, generateTotpCode(secret, clock() + STEP));
      expect(response.statusCode).toBe(400);
      expect(response.json().error).toBe('invalid_grant');
    }
    const missing = await postToken(app, { grant_type: MFA_OTP_GRANT_TYPE, mfa_token: token });
    expect(missing.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('an mfa_token opens only for its own flow, and only within MFA_TOKEN_TTL', async () => {
    const { user, secret } = await enrolled();
    const token = await mfaToken(user.email);
    const otherFlow = await gatehouseCore(app.gatehouse).mfa.completeChallenge(
      token,
      generateTotpCode(secret, clock() + STEP),
      'cookie',
      async () => expect.unreachable('a token of the other flow never reaches the session'),
    );
    expect(otherFlow).toEqual({ ok: false, reason: 'invalid_token' });
    clock.advance(app.gatehouse.config.mfaTokenTtl * 1000);
    const expired = await mfaGrant(token, generateTotpCode(secret, clock()));
    expect(expired.statusCode).toBe(400);
    expect(expired.json().error).toBe('invalid_grant');
  });

  it('turning the authenticator off needs a current code; a password and token alone cannot', async () => {
    const { user, token, recoveryCodes } = await enrolled();
    const none = await app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      headers: bearer(token),
      payload: {},
    });
    expect(none.statusCode).toBe(400);
    expect(none.json().code).toBe('VALIDATION_FAILED');
    const wrong = await app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      headers: bearer(token),
      payload: { code: '000000' },
    });
    expect(wrong.json().code).toBe('INVALID_OTP');
    const off = await app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      headers: bearer(token),
      payload: { code: recoveryCodes[0] },
    });
    expect(off.statusCode).toBe(204);
    expect((await passwordGrant(user.email)).statusCode).toBe(200);
    const status = await app.inject({ method: 'GET', url: '/users/me/mfa', headers: bearer(token) });
    expect(status.json()).toEqual({ totp: 'off', recovery_codes_left: 0, passkeys: 0 });
    const again = await app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      headers: bearer(token),
      payload: { code: recoveryCodes[1] },
    });
    expect(again.json().code).toBe('MFA_NOT_ENABLED');
  });

  // Red-team 2026-12s M1, the authenticator's side: turning it off ended nothing, so whoever had
  // signed in with it (and the password) stayed in.
  it('turning the authenticator off ends every other session of the account, not the one that did it', async () => {
    const { user, token, secret } = await enrolled();
    const other = new Browser(app);
    const first = await other.login(user.email);
    const second = await other.request('POST', '/auth/login/mfa', {
      headers: { 'x-csrf-token': await other.csrf() },
      payload: { mfa_token: first.json().mfa_token, otp: generateTotpCode(secret, clock() + STEP) },
    });
    expect(second.statusCode).toBe(204);
    expect((await other.request('GET', '/users/me')).statusCode).toBe(200);
    clock.advance(STEP);
    const elsewhere = await mfaGrant(await mfaToken(user.email), generateTotpCode(secret, clock() + STEP));
    expect(elsewhere.statusCode).toBe(200);
    const bearerElsewhere = elsewhere.json<{ access_token: string }>().access_token;
    clock.advance(STEP);
    const off = await app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      headers: bearer(token),
      payload: { code: generateTotpCode(secret, clock() + STEP) },
    });
    expect(off.statusCode).toBe(204);
    expect((await other.request('GET', '/users/me')).statusCode).toBe(401);
    expect(
      (await app.inject({ method: 'GET', url: '/users/me', headers: bearer(bearerElsewhere) })).statusCode,
    ).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })).statusCode).toBe(
      200,
    );
  });

  it('mails the owner when an authenticator app is turned on (ASVS V2.5.5), not when an enrolment only starts', async () => {
    const added = async (email: string) => {
      await gatehouseCore(app.gatehouse).lifecycle.idle();
      const mail = await readOutbox(outboxDirectory(app.gatehouse.config.dataDir), 1000);
      return mail.filter((m) => m.to === email && /new way to sign in was added/.test(m.subject));
    };
    const user = await createUser(app, { verified: true });
    const { access_token: token } = await login(app, user.email);
    const started = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(token) });
    expect(await added(user.email)).toHaveLength(0);
    const { secret } = started.json<{ secret: string }>();
    const confirmed = await app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp/confirm',
      headers: bearer(token),
      payload: { code: generateTotpCode(secret, clock()) },
    });
    expect(confirmed.statusCode).toBe(200);
    const [notice] = await added(user.email);
    expect(notice?.text).toMatch(/An authenticator app was added to your account at .*If this was not you/);
  });

  // Red-team 2026-12s M2: someone holding the password and one recovery code (a found printout, a
  // phished code) signed in, and days later replaced the ten codes with their own; the owner was told
  // neither (OWASP MFA, ASVS V2.5.5).
  it('mails the owner when a recovery code signs in (with the count left) and when the codes are replaced', async () => {
    const { user, secret, recoveryCodes } = await enrolTotpSignedIn(app, clock());
    const subjects = async () => {
      await gatehouseCore(app.gatehouse).lifecycle.idle();
      return (await readOutbox(outboxDirectory(app.gatehouse.config.dataDir), 1000))
        .filter((m) => m.to === user.email)
        .map((m) => `${m.subject} | ${m.text}`);
    };
    const browser = new Browser(app);
    const first = await browser.login(user.email);
    const second = await browser.request('POST', '/auth/login/mfa', {
      headers: { 'x-csrf-token': await browser.csrf() },
      payload: { mfa_token: first.json().mfa_token, otp: recoveryCodes[0] },
    });
    expect(second.statusCode).toBe(204);
    expect((await subjects()).filter((m) => m.startsWith('A recovery code was used to sign in'))).toEqual([
      expect.stringMatching(/ 9 of your codes remain/),
    ]);
    // The token endpoint's step too.
    expect((await mfaGrant(await mfaToken(user.email), recoveryCodes[1] ?? '')).statusCode).toBe(200);
    expect((await subjects()).filter((m) => / 8 of your codes remain/.test(m))).toHaveLength(1);
    // An authenticator-app code is no news.
    clock.advance(STEP);
    expect((await mfaGrant(await mfaToken(user.email), generateTotpCode(secret, clock()))).statusCode).toBe(
      200,
    );
    expect((await subjects()).filter((m) => m.startsWith('A recovery code was used'))).toHaveLength(2);

    clock.advance(2 * 24 * 3600_000);
    const replaced = await browser.request('POST', '/users/me/mfa/recovery-codes', {
      headers: { 'x-csrf-token': await browser.csrf() },
      payload: { code: generateTotpCode(secret, clock()) },
    });
    expect(replaced.statusCode).toBe(200);
    expect((await subjects()).filter((m) => m.startsWith('Your recovery codes were replaced'))).toHaveLength(
      1,
    );
  });

  it('mails the owner when a second factor is removed (turned off, or reset by an admin); not on a refused attempt', async () => {
    const core = gatehouseCore(app.gatehouse);
    const removals = async (email: string) => {
      await core.lifecycle.idle();
      const mail = await readOutbox(outboxDirectory(app.gatehouse.config.dataDir), 1000);
      return mail.filter((m) => m.to === email && /second factor was removed/.test(m.subject));
    };
    const first = await enrolled();
    await app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      headers: bearer(first.token),
      payload: { code: '000000' },
    });
    expect(await removals(first.user.email)).toHaveLength(0);
    const off = await app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      headers: bearer(first.token),
      payload: { code: first.recoveryCodes[0] },
    });
    expect(off.statusCode).toBe(204);
    const [notice] = await removals(first.user.email);
    expect(notice?.text).toMatch(/If this was not you, reset your password/);

    const second = await enrolled();
    const audit = { actorId: second.user.id, targetId: second.user.id, ip: '127.0.0.1' };
    expect((await core.mfa.reset(second.user.id, audit)).removed).toBe(true);
    expect(await removals(second.user.email)).toHaveLength(1);
    // Nothing left to remove: no second notice.
    expect((await core.mfa.reset(second.user.id, audit)).removed).toBe(false);
    expect(await removals(second.user.email)).toHaveLength(1);
  });

  it('limits wrong codes per session when turning the authenticator off', async () => {
    const { token, secret } = await enrolled();
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) {
      const response = await app.inject({
        method: 'DELETE',
        url: '/users/me/mfa/totp',
        headers: bearer(token),
        payload: { code: '000000' },
      });
      codes.push(response.statusCode);
    }
    expect(codes).toEqual([400, 400, 400, 400, 400, 429]);
    const right = await app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      headers: bearer(token),
      payload: { code: generateTotpCode(secret, clock() + STEP) },
    });
    expect(right.statusCode).toBe(429);
  });

  it('regenerated recovery codes replace the old ones', async () => {
    const { user, token, secret, recoveryCodes } = await enrolled();
    const renewed = await app.inject({
      method: 'POST',
      url: '/users/me/mfa/recovery-codes',
      headers: bearer(token),
      payload: { code: generateTotpCode(secret, clock() + STEP) },
    });
    expect(renewed.statusCode).toBe(200);
    const fresh = renewed.json<{ recovery_codes: string[] }>().recovery_codes;
    expect(fresh).toHaveLength(10);
    expect((await mfaGrant(await mfaToken(user.email), recoveryCodes[2] ?? '')).statusCode).toBe(400);
    expect((await mfaGrant(await mfaToken(user.email), fresh[0] ?? '')).statusCode).toBe(200);
  });

  it('signs a browser in in two steps: no cookie before the second factor, then session and device cookies', async () => {
    const { user, secret } = await enrolled();
    const browser = new Browser(app);
    const first = await browser.login(user.email);
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ mfa_required: true });
    expect(cookiesOf(first).has('__Host-gatehouse_session')).toBe(false);
    expect(cookiesOf(first).has('__Host-gatehouse_device')).toBe(false);
    const csrf = await browser.csrf();
    const wrong = await browser.request('POST', '/auth/login/mfa', {
      headers: { 'x-csrf-token': csrf },
      payload: { mfa_token: first.json().mfa_token, otp: '000000' },
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().code).toBe('INVALID_OTP');
    const second = await browser.request('POST', '/auth/login/mfa', {
      headers: { 'x-csrf-token': csrf },
      payload: { mfa_token: first.json().mfa_token, otp: generateTotpCode(secret, clock() + STEP) },
    });
    expect(second.statusCode).toBe(204);
    expect(cookiesOf(second).has('__Host-gatehouse_session')).toBe(true);
    expect(cookiesOf(second).has('__Host-gatehouse_device')).toBe(true);
    const me = await browser.request('GET', '/users/me');
    expect(me.json().id).toBe(user.id);
  });

  it('the browser step refuses a token-endpoint mfa_token and one without CSRF', async () => {
    const { user, secret } = await enrolled();
    const browser = new Browser(app);
    const csrf = await browser.csrf();
    const response = await browser.request('POST', '/auth/login/mfa', {
      headers: { 'x-csrf-token': csrf },
      payload: { mfa_token: await mfaToken(user.email), otp: generateTotpCode(secret, clock() + STEP) },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('MFA_TOKEN_INVALID');
    const noCsrf = await browser.request('POST', '/auth/login/mfa', {
      payload: { mfa_token: 'x', otp: '123456' },
    });
    expect(noCsrf.statusCode).toBe(403);
  });

  it('a flood of other counter keys cannot make a spent mfa_token usable again', async () => {
    const { user, secret, recoveryCodes } = await enrolled();
    const token = await mfaToken(user.email);
    expect((await mfaGrant(token, generateTotpCode(secret, clock() + STEP))).statusCode).toBe(200);
    // What many clients failing logins from many addresses do to the in-memory counter store.
    // The store the MFA and passkey counters live in (login failures fill it).
    const { securityCounters: counters, config } = gatehouseCore(app.gatehouse);
    for (let i = 0; i <= config.rateLimitMaxKeys; i++)
      await counters.increment(`login:ip:flood-${i}`, 60_000);
    const replay = await mfaGrant(token, recoveryCodes[0] ?? '');
    expect(replay.statusCode).toBe(400);
    expect(replay.json().error).toBe('invalid_grant');
  });
});
