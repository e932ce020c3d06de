import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CURRENT_PASSWORD_CHECKS_WAITING } from '../../src/accounts/account-service.js';
import { createDeviceTokens } from '../../src/accounts/device-token.js';
import { CURRENT_PASSWORD_CHECKS_PER_SESSION } from '../../src/accounts/login-throttle.js';
import type { GatehouseConfig } from '../../src/config/config.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { buildTestServer, createTestClock } from '../../src/testing.js';
import { bearer, cookiesOf, createUser, form, login, PASSWORD, uniqueEmail } from '../support/accounts.js';
import { enrolTotp, enrolTotpAs, postMfaGrant } from '../support/mfa.js';

const WRONG = 'wrong password!';
const DEVICE_COOKIE = '__Host-gatehouse_device';

/** POST /token (password grant) from `ip`, optionally presenting a device token. */
function grant(
  app: FastifyInstance,
  username: string,
  password: string,
  options: { ip?: string; device?: string } = {},
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/token',
    remoteAddress: options.ip ?? '127.0.0.1',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: form({
      grant_type: 'password',
      username,
      password,
      ...(options.device === undefined ? {} : { device_token: options.device }),
    }),
  });
}

/** The cookie login of a fresh browser from `ip`, optionally holding a device cookie. */
async function cookieLogin(
  app: FastifyInstance,
  email: string,
  password: string,
  options: { ip?: string; device?: string } = {},
): Promise<LightMyRequestResponse> {
  const remoteAddress = options.ip ?? '127.0.0.1';
  const csrf = await app.inject({ method: 'GET', url: '/auth/csrf', remoteAddress });
  const jar = [...cookiesOf(csrf)].map(([name, { value }]) => `${name}=${value}`);
  if (options.device !== undefined) jar.push(`${DEVICE_COOKIE}=${options.device}`);
  return app.inject({
    method: 'POST',
    url: '/auth/login',
    remoteAddress,
    headers: { cookie: jar.join('; '), 'x-csrf-token': csrf.json().csrf_token },
    payload: { email, password },
  });
}

/** Signs in once (so the client becomes trusted) and returns its device token. */
async function trustedDevice(app: FastifyInstance, email: string): Promise<string> {
  const response = await grant(app, email, PASSWORD, { ip: '192.0.2.1' });
  expect(response.statusCode).toBe(200);
  return response.json().device_token;
}

/** `n` wrong passwords for `email`, each from a different address (an attacker's botnet). */
async function guessFromMany(app: FastifyInstance, email: string, n: number, subnet = 10): Promise<void> {
  for (let i = 0; i < n; i++) {
    const response = await grant(app, email, WRONG, { ip: `10.${subnet}.0.${i + 1}` });
    expect(response.statusCode).toBe(400);
  }
}

describe('failed-login limits that cannot be aimed at a victim (issue 8, OWASP device cookies)', () => {
  let app: FastifyInstance;
  afterEach(async () => app.close());

  const build = (overrides: Partial<GatehouseConfig> = {}, clock?: ReturnType<typeof createTestClock>) =>
    buildTestServer(overrides, clock === undefined ? {} : { clock });

  it('locks untrusted clients of an account, still refuses the right password while locked, and lifts on its own', async () => {
    const clock = createTestClock();
    app = await build({ loginMaxFailuresPerAccount: 3, loginFailureWindow: 600 }, clock);
    const user = await createUser(app);
    for (let i = 0; i < 3; i++) expect((await grant(app, user.email, WRONG)).statusCode).toBe(400);
    const limited = await grant(app, user.email, PASSWORD);
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(600);
    // Another account from the same IP is not affected by this account's limit.
    const other = await createUser(app);
    expect((await grant(app, other.email, PASSWORD)).statusCode).toBe(200);
    clock.advance(601_000);
    expect((await grant(app, user.email, PASSWORD)).statusCode).toBe(200);
  });

  it('answers 429 on /token as an RFC 6749 §5.2 body with our code, Retry-After and no-store', async () => {
    app = await build({ loginMaxFailuresPerAccount: 1, loginFailureWindow: 600 });
    const user = await createUser(app);
    await grant(app, user.email, WRONG);
    const limited = await grant(app, user.email, PASSWORD);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/json/);
    expect(limited.headers['cache-control']).toBe('no-store');
    expect(limited.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(limited.json()).toEqual({
      error: 'temporarily_unavailable',
      error_description: 'Too many failed logins; try again later.',
      code: 'TOO_MANY_LOGIN_ATTEMPTS',
    });
  });

  it('answers 429 on the cookie login as problem+json with Retry-After', async () => {
    app = await build({ loginMaxFailuresPerAccount: 1, loginFailureWindow: 600 });
    const user = await createUser(app);
    expect((await cookieLogin(app, user.email, WRONG)).statusCode).toBe(400);
    const limited = await cookieLogin(app, user.email, PASSWORD);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(limited.json()).toMatchObject({ status: 429, code: 'TOO_MANY_LOGIN_ATTEMPTS' });
  });

  it('6 wrong passwords from elsewhere lock out untrusted clients of the account, never its trusted device', async () => {
    app = await build({ loginMaxFailuresPerAccount: 5 });
    const victim = await createUser(app);
    const device = await trustedDevice(app, victim.email);
    await guessFromMany(app, victim.email, 5);
    expect((await grant(app, victim.email, WRONG, { ip: '10.10.0.99' })).statusCode).toBe(429);
    // Decision (README "Brute-force protection"): a client that never signed in to this account
    // is limited with the account, even with the right password: the server cannot tell it from
    // the attacker. The victim's own device is not.
    const fromNewClient = await grant(app, victim.email, PASSWORD, { ip: '198.51.100.7' });
    expect(fromNewClient.statusCode).toBe(429);
    const fromDevice = await grant(app, victim.email, PASSWORD, { ip: '198.51.100.7', device });
    expect(fromDevice.statusCode).toBe(200);
    // Each success hands out a fresh device token for the next login.
    expect(fromDevice.json().device_token).toMatch(/^[A-Za-z0-9_-]{98}$/);
    expect(fromDevice.json().device_token).not.toBe(device);
  });

  it('gives browsers a __Host- HttpOnly Secure SameSite=Strict device cookie that keeps them out of the lockout', async () => {
    app = await build({ loginMaxFailuresPerAccount: 2 });
    const victim = await createUser(app);
    const first = await cookieLogin(app, victim.email, PASSWORD);
    expect(first.statusCode).toBe(204);
    const cookie = cookiesOf(first).get(DEVICE_COOKIE);
    expect(cookie?.value).toMatch(/^[A-Za-z0-9_-]{98}$/);
    expect(cookie?.attributes).toEqual(
      expect.arrayContaining(['httponly', 'secure', 'samesite=strict', 'path=/', `max-age=${90 * 86400}`]),
    );
    expect(cookie?.attributes.some((a) => a.startsWith('domain'))).toBe(false);
    await guessFromMany(app, victim.email, 2);
    expect((await cookieLogin(app, victim.email, PASSWORD, { ip: '198.51.100.7' })).statusCode).toBe(429);
    const trusted = await cookieLogin(app, victim.email, PASSWORD, {
      ip: '198.51.100.7',
      device: cookie?.value,
    });
    expect(trusted.statusCode).toBe(204);
  });

  it('lets the victim in from a trusted device while a flood from many addresses fills the hash queue', async () => {
    // One shared hash slot: 64 can wait, the rest get 503. The reserved slot is the victim's.
    app = await build({
      passwordHashConcurrency: 1,
      passwordHashReservedSlots: 1,
      loginMaxFailuresPerAccount: 3,
    });
    const victim = await createUser(app);
    const device = await trustedDevice(app, victim.email);
    await guessFromMany(app, victim.email, 3);
    // Unknown addresses verify against a dummy hash made on first use: make it now, so the flood
    // below goes straight into the hash queue.
    await grant(app, uniqueEmail('warm-up'), WRONG, { ip: '10.19.0.1' });
    const finished: string[] = [];
    const flood = Array.from({ length: 90 }, (_, i) =>
      grant(app, uniqueEmail('made-up'), WRONG, { ip: `10.${20 + (i % 50)}.${i}.1` }).then((response) => {
        finished.push(`flood:${response.statusCode}`);
        return response;
      }),
    );
    // The first 503 means the shared queue is full: only now does the victim try.
    await expect.poll(() => finished.includes('flood:503')).toBe(true);
    const mine = grant(app, victim.email, PASSWORD, { ip: '198.51.100.7', device }).then((response) => {
      finished.push('victim');
      return response;
    });
    const [responses, victimResponse] = await Promise.all([Promise.all(flood), mine]);
    expect(victimResponse.statusCode).toBe(200);
    const codes = responses.map((response) => response.statusCode);
    expect(codes.filter((code) => code === 503).length).toBeGreaterThan(0);
    expect(codes.every((code) => code === 400 || code === 503)).toBe(true);
    // It did not wait behind the queue: most of the flood was still waiting when it finished.
    expect(finished.length - finished.indexOf('victim')).toBeGreaterThan(30);
  });

  it('a stolen device token is limited by its own counter, then by the untrusted ones', async () => {
    app = await build({ loginMaxFailuresPerDevice: 3, loginMaxFailuresPerAccount: 3 });
    const victim = await createUser(app);
    const device = await trustedDevice(app, victim.email);
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await grant(app, victim.email, WRONG, { device })).statusCode);
    // 3 on the device's counter, then (OWASP: a locked-out device is an untrusted client) 3 more.
    expect(codes).toEqual([400, 400, 400, 400, 400, 400, 429]);
  });

  it('treats a forged, truncated, foreign-key, other-account or expired device token as untrusted', async () => {
    const clock = createTestClock();
    app = await build({ loginMaxFailuresPerAccount: 2, loginFailureWindow: 600 }, clock);
    const victim = await createUser(app);
    const other = await createUser(app);
    const old = await trustedDevice(app, victim.email);
    clock.advance(90 * 86400 * 1000 + 1000);
    const valid = await trustedDevice(app, victim.email);
    const otherAccounts = await trustedDevice(app, other.email);
    await guessFromMany(app, victim.email, 2);
    const flipped = `${valid.slice(0, 50)}${valid[50] === 'A' ? 'B' : 'A'}${valid.slice(51)}`;
    const victimRecord = await gatehouseCore(app.gatehouse).users.findUserById(victim.id);
    if (victimRecord === undefined) throw new Error('the victim was just created');
    const foreign = createDeviceTokens({
      secretKey: new Uint8Array(32).map((_, i) => (i * 7 + 7) % 256),
      ttlSeconds: 86400,
      clock,
      // Signed with another key over the victim's id and current hash: only the key is wrong.
    }).issue(victimRecord);
    for (const token of [flipped, valid.slice(0, 97), `${valid}A`, foreign, otherAccounts, old, 'x']) {
      const response = await grant(app, victim.email, PASSWORD, { device: token });
      expect(response.statusCode, token).toBe(429);
    }
    expect((await grant(app, victim.email, PASSWORD, { device: valid })).statusCode).toBe(200);
  });

  it('answers 16 concurrent logins with the right password all with 200 (and counts none as failures)', async () => {
    app = await build({ loginMaxFailuresPerAccount: 5, loginMaxFailuresPerIp: 5 });
    const user = await createUser(app);
    const responses = await Promise.all(Array.from({ length: 16 }, () => grant(app, user.email, PASSWORD)));
    expect(responses.map((response) => response.statusCode)).toEqual(Array(16).fill(200));
    // Nothing was held against the IP either: another account still logs in from it.
    const other = await createUser(app);
    expect((await grant(app, other.email, PASSWORD)).statusCode).toBe(200);
  });

  // Attack: only failures were limited, so one free account could log in with its own (right)
  // password without end: every login an argon2id hash in the shared lane and a session row kept
  // for SESSION_ABSOLUTE_TTL; with the device tokens those logins collect, the same flood took the
  // hash slots reserved for trusted devices, and victims' trusted logins queued or got 503.
  it('limits successful logins per account (trusted or not) before any hash; only the password holder can spend it', async () => {
    app = await build({ loginMaxSuccessesPerAccount: 3 });
    const attacker = await createUser(app);
    const device = await trustedDevice(app, attacker.email);
    expect((await grant(app, attacker.email, PASSWORD)).statusCode).toBe(200);
    expect((await grant(app, attacker.email, PASSWORD, { device, ip: '10.50.0.1' })).statusCode).toBe(200);
    const { hasher } = gatehouseCore(app.gatehouse);
    const verify = vi.spyOn(hasher, 'verify');
    for (const options of [{}, { device }, { ip: '10.50.0.2' }]) {
      const refused = await grant(app, attacker.email, PASSWORD, options);
      expect(refused.statusCode).toBe(429);
      expect(refused.json()).toMatchObject({ error: 'temporarily_unavailable' });
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect((await cookieLogin(app, attacker.email, PASSWORD)).statusCode).toBe(429);
    expect(verify).not.toHaveBeenCalled();
    verify.mockRestore();
    // Failures never count toward it, so nobody without the password can aim it at an account.
    const victim = await createUser(app);
    await guessFromMany(app, victim.email, 4, 51);
    const victimDevice = await trustedDevice(app, victim.email);
    expect((await grant(app, victim.email, PASSWORD, { device: victimDevice })).statusCode).toBe(200);
  });

  // Attack (red-team 2026-12e MFA #4): on an account with a second factor the password alone is
  // what a thief has, and each right password (answered mfa_required) spent one of the account's
  // logins; LOGIN_MAX_SUCCESSES_PER_ACCOUNT of them kept the owner out, trusted devices included,
  // for as long as the thief repeated it.
  it("a thief holding only the password of a second-factor account cannot spend its owner's trusted logins", async () => {
    const clock = createTestClock();
    app = await build({ loginMaxSuccessesPerAccount: 3 }, clock);
    const { user, secret } = await enrolTotp(app, clock());
    // The owner's earlier full sign-in gave this device its token.
    clock.advance(30_000);
    const first = await grant(app, user.email, PASSWORD, { ip: '192.0.2.1' });
    expect(first.json().error).toBe('mfa_required');
    const completed = await postMfaGrant(app, first.json().mfa_token, generateTotpCode(secret, clock()));
    expect(completed.statusCode).toBe(200);
    const device = completed.json().device_token as string;
    // The thief's right passwords stop at the second factor, until untrusted clients are refused.
    for (let i = 0; i < 2; i++) {
      const stopped = await grant(app, user.email, PASSWORD, { ip: `10.60.0.${i + 1}` });
      expect(stopped.json().error).toBe('mfa_required');
    }
    const refused = await grant(app, user.email, PASSWORD, { ip: '10.60.0.9' });
    expect(refused.statusCode).toBe(429);
    // The owner's trusted device still signs in, with its second factor.
    clock.advance(30_000);
    const owner = await grant(app, user.email, PASSWORD, { device });
    expect(owner.json().error).toBe('mfa_required');
    expect(
      (await postMfaGrant(app, owner.json().mfa_token, generateTotpCode(secret, clock()))).statusCode,
    ).toBe(200);
  });

  // Red-team 2026-12e MFA #2: a device token is trust earned by every factor; one issued before the
  // owner turned an authenticator app on was earned by the password alone (perhaps a thief's), and
  // kept a guessing lane of its own past the account's lockout.
  it('a device token issued before the authenticator app was turned on is no longer trusted', async () => {
    const clock = createTestClock();
    app = await build({ loginMaxFailuresPerAccount: 3 }, clock);
    const user = await createUser(app, { verified: true });
    const before = await trustedDevice(app, user.email);
    clock.advance(2_000);
    const { access_token: token } = await login(app, user.email);
    const { secret } = await enrolTotpAs(app, token, clock());
    clock.advance(30_000);
    // The owner's full sign-in after it earns a token that is trusted.
    const first = await grant(app, user.email, PASSWORD, { ip: '192.0.2.1' });
    const after = (await postMfaGrant(app, first.json().mfa_token, generateTotpCode(secret, clock()))).json()
      .device_token as string;
    // Untrusted clients are locked out of the account...
    await guessFromMany(app, user.email, 3, 61);
    expect((await grant(app, user.email, PASSWORD)).statusCode).toBe(429);
    // ...and the token from before the app is one of them now; the one from after is not.
    expect((await grant(app, user.email, PASSWORD, { device: before })).statusCode).toBe(429);
    expect((await grant(app, user.email, PASSWORD, { device: after })).json().error).toBe('mfa_required');
  });

  // Red-team 2026-12h M4: tokens carry whole seconds, and one issued in the very second the app was
  // confirmed (before it, by a thief with the password) stayed trusted.
  it('a device token issued in the same second as the confirmation is not trusted either', async () => {
    const clock = createTestClock(Math.floor(Date.now() / 1000) * 1000 + 100);
    app = await build({ loginMaxFailuresPerAccount: 3 }, clock);
    const user = await createUser(app, { verified: true });
    const { access_token: token } = await login(app, user.email);
    const sameSecond = await trustedDevice(app, user.email);
    await enrolTotpAs(app, token, clock());
    clock.advance(30_000);
    await guessFromMany(app, user.email, 3, 61);
    expect((await grant(app, user.email, PASSWORD)).statusCode).toBe(429);
    expect((await grant(app, user.email, PASSWORD, { device: sameSecond })).statusCode).toBe(429);
  });

  it('lets exactly the limit of a parallel burst of wrong guesses reach the password check', async () => {
    app = await build({ loginMaxFailuresPerAccount: 5 });
    const user = await createUser(app);
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) => grant(app, user.email, WRONG, { ip: `10.30.0.${i + 1}` })),
    );
    const codes = burst.map((response) => response.statusCode);
    expect(codes.filter((code) => code === 400)).toHaveLength(5);
    expect(codes.filter((code) => code === 429)).toHaveLength(15);
  });

  it('refuses a throttled attempt before any hash and without touching a counter', async () => {
    app = await build({ loginMaxFailuresPerAccount: 2, loginMaxFailuresPerIp: 4 });
    const user = await createUser(app);
    await guessFromMany(app, user.email, 2);
    const { hasher, counters: routeCounters, securityCounters: counters } = gatehouseCore(app.gatehouse);
    const spies = [
      vi.spyOn(hasher, 'verify'),
      vi.spyOn(hasher, 'dummyHash'),
      vi.spyOn(hasher, 'hash'),
      vi.spyOn(counters, 'increment'),
      vi.spyOn(counters, 'decrement'),
      vi.spyOn(counters, 'reset'),
      vi.spyOn(routeCounters, 'increment'),
    ];
    expect((await grant(app, user.email, PASSWORD)).statusCode).toBe(429);
    expect((await cookieLogin(app, user.email, PASSWORD)).statusCode).toBe(429);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();

    // Once an IP is blocked, its requests for any other address create no new state either.
    for (const spy of spies) spy.mockRestore();
    for (let i = 0; i < 4; i++) await grant(app, uniqueEmail('spray'), WRONG, { ip: '10.40.0.1' });
    const increments = vi.spyOn(counters, 'increment');
    const verifies = vi.spyOn(hasher, 'verify');
    for (let i = 0; i < 10; i++) {
      expect((await grant(app, uniqueEmail('spray'), WRONG, { ip: '10.40.0.1' })).statusCode).toBe(429);
      expect((await grant(app, `not an email ${i}`, WRONG, { ip: '10.40.0.1' })).statusCode).toBe(429);
    }
    expect(increments).not.toHaveBeenCalled();
    expect(verifies).not.toHaveBeenCalled();
  });

  it('gives usernames that are not emails no per-account counter, and counts unknown addresses like real ones', async () => {
    app = await build({ loginMaxFailuresPerAccount: 2 });
    const increments = vi.spyOn(gatehouseCore(app.gatehouse).securityCounters, 'increment');
    for (const name of ['not an email', 'x'.repeat(300), 'a@', '@b.example']) {
      expect((await grant(app, name, WRONG, { ip: '10.50.0.1' })).statusCode).toBe(400);
    }
    const keys = increments.mock.calls.map(([key]) => (typeof key === 'string' ? key : key.key));
    expect(keys.some((key) => key.startsWith('login:account:'))).toBe(false);
    // Keys are fixed-size digests, never the identifier itself.
    for (const key of keys) expect(key).toMatch(/^login:(?:global|[a-z]+:[\w-]{22})$/);

    const real = await createUser(app);
    const ghost = uniqueEmail('ghost');
    const answers: LightMyRequestResponse[] = [];
    for (const email of [real.email, ghost]) {
      await guessFromMany(app, email, 2, email === ghost ? 61 : 60);
      answers.push(await grant(app, email, WRONG, { ip: '10.62.0.1' }));
    }
    expect(answers.map((response) => response.statusCode)).toEqual([429, 429]);
    expect(answers[0]?.json()).toEqual(answers[1]?.json());
  });

  it('limits guesses at the current password per session, and a lockout elsewhere does not stop the change', async () => {
    app = await build({ loginMaxFailuresPerDevice: 3, loginMaxFailuresPerAccount: 2 });
    const user = await createUser(app);
    const { access_token } = await login(app, user.email);
    await guessFromMany(app, user.email, 2);
    expect((await grant(app, user.email, PASSWORD, { ip: '10.70.0.1' })).statusCode).toBe(429);
    const change = (current: string, password = 'a brand new secret') =>
      app.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: bearer(access_token),
        payload: { password, current_password: current },
      });
    // The owner, signed in, can still change the password while the account is locked elsewhere...
    expect((await change(PASSWORD, 'first new secret phrase')).statusCode).toBe(200);
    // ...and a thief holding the token gets a small budget of guesses.
    for (let i = 0; i < 3; i++)
      expect((await change('not the password')).json().code).toBe('INVALID_CURRENT_PASSWORD');
    const limited = await change('first new secret phrase');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(limited.json().code).toBe('TOO_MANY_LOGIN_ATTEMPTS');
  });

  // Attack (red-team 2026-12g A1): a right current password reset the session's counter, so a
  // free account's sessions re-checked it without end (a weak new password, or their own address
  // as the new one, changed nothing), each check an argon2 hash in the lane kept for trusted
  // devices: ten sessions stalled every other login on the server.
  it("A1: every current-password check counts on its session's allowance, no other session's; a change refused anyway hashes nothing", async () => {
    app = await build({ loginMaxSuccessesPerAccount: 3 });
    const user = await createUser(app);
    const owner = (await login(app, user.email)).access_token;
    const { hasher } = gatehouseCore(app.gatehouse);
    const verify = vi.spyOn(hasher, 'verify');
    const patch = (token: string, payload: Record<string, string>) =>
      app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(token), payload });
    // Refused on what the request asks for, before any hash of the current password.
    const weak = await patch(owner, { password: 'x', current_password: PASSWORD });
    expect(weak.json().code).toBe('WEAK_PASSWORD');
    const same = await patch(owner, { email: user.email, current_password: PASSWORD });
    expect(same.json().code).toBe('VALIDATION_FAILED');
    expect(verify).not.toHaveBeenCalled();
    verify.mockRestore();
    // A thief with the password signs in (spending the account's logins) and spends their
    // session's checks: the owner's session keeps its own.
    const thief = (await login(app, user.email)).access_token;
    const reauthenticate = (token: string) =>
      app.inject({
        method: 'POST',
        url: '/auth/reauthenticate',
        headers: bearer(token),
        payload: { current_password: PASSWORD },
      });
    for (let i = 0; i < CURRENT_PASSWORD_CHECKS_PER_SESSION; i++)
      expect((await reauthenticate(thief)).statusCode).toBe(200);
    const refused = await reauthenticate(thief);
    expect(refused.statusCode).toBe(429);
    expect(refused.json().code).toBe('TOO_MANY_REQUESTS');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect((await grant(app, user.email, PASSWORD)).statusCode).toBe(200);
    expect((await grant(app, user.email, PASSWORD)).statusCode).toBe(429);
    const changed = await patch(owner, { password: 'the owner takes it back', current_password: PASSWORD });
    expect(changed.statusCode).toBe(200);
  });

  it('A1: current-password checks hash one at a time on the instance, whatever sessions ask', async () => {
    app = await build();
    const user = await createUser(app);
    const sessions = [];
    for (let i = 0; i < 3; i++) sessions.push((await login(app, user.email)).access_token);
    const { hasher } = gatehouseCore(app.gatehouse);
    let running = 0;
    let most = 0;
    const verify = vi.spyOn(hasher, 'verify').mockImplementation(async () => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running -= 1;
      return true;
    });
    const answers = await Promise.all(
      sessions.map((token) =>
        app.inject({
          method: 'POST',
          url: '/auth/reauthenticate',
          headers: bearer(token),
          payload: { current_password: PASSWORD },
        }),
      ),
    );
    expect(answers.map((answer) => answer.statusCode)).toEqual([200, 200, 200]);
    expect(most).toBe(1);
    verify.mockRestore();
  });

  it('A1: beyond CURRENT_PASSWORD_CHECKS_WAITING waiting checks, the next is 429 at once, and the slot serves the rest', async () => {
    app = await build();
    const user = await createUser(app);
    const sessions: string[] = [];
    for (let i = 0; i < CURRENT_PASSWORD_CHECKS_WAITING + 2; i++)
      sessions.push((await login(app, user.email)).access_token);
    const { hasher } = gatehouseCore(app.gatehouse);
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const verify = vi.spyOn(hasher, 'verify').mockImplementation(async () => {
      await held;
      return true;
    });
    const reauthenticate = (token: string) =>
      app.inject({
        method: 'POST',
        url: '/auth/reauthenticate',
        headers: bearer(token),
        payload: { current_password: PASSWORD },
      });
    // One running and CURRENT_PASSWORD_CHECKS_WAITING waiting: the last is refused without waiting.
    const checks = vi.spyOn(gatehouseCore(app.gatehouse).throttle, 'checkSessionChecks');
    const pending = sessions.slice(0, -1).map(reauthenticate);
    // Each reads its allowance twice, the second time inside its gate just before the slot.
    await vi.waitFor(() => expect(checks).toHaveBeenCalledTimes(2 * (CURRENT_PASSWORD_CHECKS_WAITING + 1)));
    expect(verify).toHaveBeenCalledTimes(1);
    const refused = await reauthenticate(sessions.at(-1) ?? '');
    expect(refused.statusCode).toBe(429);
    expect(refused.json().code).toBe('TOO_MANY_REQUESTS');
    release();
    expect((await Promise.all(pending)).every((answer) => answer.statusCode === 200)).toBe(true);
    verify.mockRestore();
    checks.mockRestore();
  });

  it("A3: a disabled account's right password counts as a failure, so its holder cannot hash (and be audited) without end", async () => {
    app = await build({ loginMaxFailuresPerAccount: 3, loginMaxFailuresPerIp: 100 });
    const user = await createUser(app);
    await gatehouseCore(app.gatehouse).accounts.applyUserChange(user.id, { isActive: false });
    for (let i = 0; i < 3; i++) {
      const refused = await grant(app, user.email, PASSWORD, { ip: `10.80.0.${i + 1}` });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error).toBe('invalid_grant');
    }
    const { hasher } = gatehouseCore(app.gatehouse);
    const verify = vi.spyOn(hasher, 'verify');
    expect((await grant(app, user.email, PASSWORD, { ip: '10.80.0.9' })).statusCode).toBe(429);
    expect(verify).not.toHaveBeenCalled();
    verify.mockRestore();
    // Enabled again by an admin, the owner starts with a clean slate (review of A3).
    const admin = await createUser(app, { role: 'super_admin' });
    const enabled = await app.inject({
      method: 'PATCH',
      url: `/users/${user.id}`,
      headers: bearer((await login(app, admin.email)).access_token),
      payload: { is_active: true },
    });
    expect(enabled.statusCode).toBe(200);
    expect((await grant(app, user.email, PASSWORD, { ip: '10.80.0.10' })).statusCode).toBe(200);
  });

  it('limits a client IP across accounts (untrusted clients only)', async () => {
    app = await build({ loginMaxFailuresPerIp: 2, loginMaxFailuresPerAccount: 100 });
    const user = await createUser(app);
    const device = await trustedDevice(app, user.email);
    await grant(app, 'a@example.com', WRONG);
    await grant(app, 'b@example.com', WRONG);
    expect((await grant(app, 'c@example.com', WRONG)).statusCode).toBe(429);
    expect((await grant(app, user.email, PASSWORD)).statusCode).toBe(429);
    expect((await grant(app, user.email, PASSWORD, { device })).statusCode).toBe(200);
  });

  it('limits untrusted failures server-wide, never trusted devices', async () => {
    app = await build({ loginMaxFailuresGlobal: 4, loginMaxFailuresPerAccount: 100 });
    const user = await createUser(app);
    const device = await trustedDevice(app, user.email);
    const victim = uniqueEmail('g');
    for (let i = 0; i < 4; i++) await grant(app, victim, WRONG, { ip: `10.80.0.${i}` });
    // The breaker is open: an address is refused after fewer failures than with it closed...
    for (let i = 0; i < 3; i++) await grant(app, uniqueEmail('g'), WRONG, { ip: '10.81.0.1' });
    expect((await grant(app, victim, WRONG, { ip: '10.81.0.1' })).statusCode).toBe(429);
    expect((await grant(app, victim, PASSWORD, { ip: '10.81.0.1' })).statusCode).toBe(429);
    // ...and so is a username that is no email (no account counter to judge it by).
    expect((await grant(app, 'not an email', WRONG, { ip: '10.81.0.3' })).statusCode).toBe(429);
    expect((await grant(app, user.email, PASSWORD, { ip: '10.81.0.2', device })).statusCode).toBe(200);
  });

  // Red-team F9: the breaker refused every untrusted login server-wide, a lock-out lever anyone with
  // LOGIN_MAX_FAILURES_GLOBAL wrong passwords (≈ 200 addresses, one IPv6 /56) could pull.
  it('degrades when the breaker is open: a clean account still signs in, a stuffing run is throttled', async () => {
    app = await build({
      loginMaxFailuresGlobal: 4,
      loginMaxFailuresPerAccount: 100,
      loginMaxFailuresPerIp: 50,
    });
    const owner = await createUser(app);
    for (let i = 0; i < 4; i++) await grant(app, uniqueEmail('flood'), WRONG, { ip: `10.90.0.${i}` });
    expect((await grant(app, uniqueEmail('flood'), WRONG, { ip: '10.90.0.9' })).statusCode).toBe(400);

    // The owner's first login on a new device, from an address of their own, goes through.
    expect((await grant(app, owner.email, PASSWORD, { ip: '198.51.100.20' })).statusCode).toBe(200);

    // Credential stuffing from one address: one try per account, but only a few per address.
    const stuffing: number[] = [];
    for (let i = 0; i < 6; i++) {
      stuffing.push((await grant(app, uniqueEmail('stuffed'), WRONG, { ip: '203.0.113.5' })).statusCode);
    }
    expect(stuffing).toEqual([400, 400, 400, 429, 429, 429]);
  });

  // F9's remainder: while the breaker was open, one wrong guess by anyone made an account "unclean"
  // and shut its owner's new devices out for the window.
  it('does not let a stranger lock an owner out while the breaker is open', async () => {
    app = await build({ loginMaxFailuresGlobal: 4, loginMaxFailuresPerAccount: 3 });
    const owner = await createUser(app);
    for (let i = 0; i < 4; i++) await grant(app, uniqueEmail('flood'), WRONG, { ip: `10.91.0.${i}` });
    expect((await grant(app, uniqueEmail('flood'), WRONG, { ip: '10.91.0.9' })).statusCode).toBe(400);
    // A stranger's wrong guess from their own address...
    expect((await grant(app, owner.email, WRONG, { ip: '203.0.113.66' })).statusCode).toBe(400);
    // ...leaves the owner's first login on a new device, from their address, alone.
    expect((await grant(app, owner.email, PASSWORD, { ip: '198.51.100.21' })).statusCode).toBe(200);
    // The account's own limit still holds against a guesser with many addresses, breaker or not.
    for (let i = 0; i < 3; i++) {
      expect((await grant(app, owner.email, WRONG, { ip: `203.0.113.${70 + i}` })).statusCode).toBe(400);
    }
    expect((await grant(app, owner.email, WRONG, { ip: '203.0.113.80' })).statusCode).toBe(429);
  });

  it('counts an IPv6 /48 as one client towards the breaker', async () => {
    app = await build({
      loginMaxFailuresGlobal: 4,
      loginMaxFailuresPerAccount: 100,
      loginMaxFailuresPerIp: 2,
    });
    // Eight /64s of one /48 (sixteen failures): the /48 adds two to the global count, not sixteen.
    for (let net = 0; net < 8; net++) {
      for (let i = 0; i < 2; i++)
        await grant(app, uniqueEmail('v6'), WRONG, { ip: `2001:db8:7:${net}::${i + 1}` });
    }
    // The breaker is still closed: an account with failures in the window is not refused by it.
    const account = uniqueEmail('v6b');
    expect((await grant(app, account, WRONG, { ip: '10.70.0.1' })).statusCode).toBe(400);
    expect((await grant(app, account, WRONG, { ip: '10.70.0.2' })).statusCode).toBe(400);
  });

  it('ignores X-Forwarded-For unless TRUST_PROXY is set', async () => {
    app = await build({ loginMaxFailuresPerIp: 2, loginMaxFailuresPerAccount: 100 });
    const viaProxy = (username: string, ip: string) =>
      app.inject({
        method: 'POST',
        url: '/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip },
        payload: form({ grant_type: 'password', username, password: WRONG }),
      });
    for (const ip of ['10.0.0.1', '10.0.0.2']) await viaProxy(`${ip}@example.com`, ip);
    // Spoofed addresses did not buy fresh budgets: the real peer is limited.
    expect((await viaProxy('z@example.com', '10.0.0.3')).statusCode).toBe(429);
    await app.close();

    app = await build({ loginMaxFailuresPerIp: 2, loginMaxFailuresPerAccount: 100, trustProxy: 1 });
    for (let i = 0; i < 2; i++) await viaProxy('p@example.com', '10.0.0.1');
    expect((await viaProxy('q@example.com', '10.0.0.2')).statusCode).toBe(400);
    expect((await viaProxy('q@example.com', '10.0.0.1')).statusCode).toBe(429);
  });

  it('tallies failed logins per account and hour instead of writing one audit row each', async () => {
    // A frozen clock keeps every attempt inside one hour's tally.
    app = await build({ loginMaxFailuresPerAccount: 100, loginMaxFailuresPerIp: 100 }, createTestClock());
    const user = await createUser(app);
    await guessFromMany(app, user.email, 7);
    for (let i = 0; i < 3; i++) await grant(app, uniqueEmail('nobody'), WRONG);
    expect((await cookieLogin(app, user.email, WRONG)).statusCode).toBe(400);
    const { auditRetention, audit } = gatehouseCore(app.gatehouse);
    expect(await auditRetention.listLoginFailures({ subjectId: user.id, limit: 10 })).toEqual([
      expect.objectContaining({ subjectId: user.id, failures: 8, lastIp: '127.0.0.1' }),
    ]);
    expect(await auditRetention.listLoginFailures({ subjectId: null, limit: 10 })).toEqual([
      expect.objectContaining({ subjectId: null, failures: 3 }),
    ]);
    expect((await audit.list({ limit: 10, offset: 0, event: 'login_failed' })).total).toBe(0);
  });
});

describe('a lock-out survives a flood of other counter keys (red-team 2026-12l N1)', () => {
  let app: FastifyInstance;
  afterEach(async () => app.close());

  it('keeps an account locked while one IPv6 /48 and many IPv4 addresses flood route limits', async () => {
    // A small store, so a few thousand requests are the 110 000 of the report (RATE_LIMIT_MAX_KEYS
    // 100 000 by default): every counter key beyond it evicts the least recently used one.
    app = await buildTestServer({ rateLimitMaxKeys: 1_000, loginMaxFailuresPerAccount: 5 });
    const victim = await createUser(app);
    for (let i = 0; i < 5; i++) {
      expect((await grant(app, victim.email, WRONG, { ip: '2001:db8:99::1' })).statusCode).toBe(400);
    }
    expect((await grant(app, victim.email, WRONG, { ip: '2001:db8:99::1' })).statusCode).toBe(429);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 1_500; i++) {
      const fromV6 = await app.inject({
        method: 'POST',
        url: '/rooms/ZZZZZZZZ/join',
        payload: { player: 'x' },
        remoteAddress: `2001:db8:77:${i.toString(16)}::1`,
      });
      const fromV4 = await app.inject({
        method: 'POST',
        url: '/auth/forgot-password',
        payload: { email: 'nobody@example.org' },
        remoteAddress: `10.77.${i >> 8}.${i & 255}`,
      });
      for (const { statusCode } of [fromV6, fromV4])
        statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
    }
    // The /48 is refused once over its allowance (429), the IPv4 addresses are not.
    expect(statuses.get(429)).toBeGreaterThan(1_400);
    // Before: the flood's 3 000 keys evicted the account's counter, and the next guess was a 400.
    expect((await grant(app, victim.email, WRONG, { ip: '2001:db8:99::1' })).statusCode).toBe(429);
    expect((await grant(app, victim.email, WRONG, { ip: '198.51.100.7' })).statusCode).toBe(429);
  });
});
