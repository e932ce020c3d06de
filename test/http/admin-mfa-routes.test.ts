import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/accounts/roles.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { MFA_OTP_GRANT_TYPE } from '../../src/sessions/token-grants.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, createUser, form, login, PASSWORD, postToken } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';

describe('admins and second factors (issue 13)', () => {
  let app: FastifyInstance;
  let clock: TestClock;

  beforeAll(async () => {
    clock = createTestClock();
    app = await buildTestServer(
      { requireMfaForRoles: ['super_admin'], mailOutboxHttp: true },
      { clock, scheduler: clock, webUi: false },
    );
  });
  afterAll(async () => app.close());

  const core = () => gatehouseCore(app.gatehouse);

  /** An account of `role` with a confirmed authenticator; answers its secret. */
  const enrolled = async (role: Role = 'user') => {
    const user = await createUser(app, { role, verified: true });
    const started = await core().sessions.startBearerSession(user.id, ['me'], { ip: null, userAgent: null });
    const { secret } = await core().mfa.startTotpEnrolment(user, started.session.id);
    await core().mfa.confirmTotp(user.id, started.session.id, generateTotpCode(secret, clock()), {
      actorId: user.id,
    });
    clock.advance(30_000);
    return { user, secret };
  };

  /** A bearer token from the password grant and the mfa-otp grant. */
  const mfaLogin = async (email: string, secret: string) => {
    const first = await postToken(app, { grant_type: 'password', username: email, password: PASSWORD });
    expect(first.json().error).toBe('mfa_required');
    const second = await postToken(app, {
      grant_type: MFA_OTP_GRANT_TYPE,
      mfa_token: first.json().mfa_token,
      otp: generateTotpCode(secret, clock()),
    });
    expect(second.statusCode).toBe(200);
    clock.advance(30_000);
    return second.json<{ access_token: string; scope: string }>();
  };

  it('shows an admin whether an account has second factors', async () => {
    const admin = await createUser(app, { role: 'admin' });
    const { access_token: token } = await login(app, admin.email);
    const plain = await createUser(app);
    const { user } = await enrolled();
    const none = await app.inject({ url: `/users/${plain.id}/mfa`, headers: bearer(token) });
    expect(none.json()).toEqual({ mfa_enabled: false, totp: 'off', recovery_codes_left: 0, passkeys: 0 });
    const some = await app.inject({ url: `/users/${user.id}/mfa`, headers: bearer(token) });
    expect(some.json()).toEqual({ mfa_enabled: true, totp: 'on', recovery_codes_left: 10, passkeys: 0 });
    const { access_token: userToken } = await login(app, plain.email);
    const refused = await app.inject({ url: `/users/${user.id}/mfa`, headers: bearer(userToken) });
    expect(refused.statusCode).toBe(403);
    const missing = await app.inject({
      url: '/users/00000000-0000-4000-8000-000000000000/mfa',
      headers: bearer(token),
    });
    expect(missing.statusCode).toBe(404);
  });

  // Red-team 2026-12-04: the admin route skipped what the self-service one asks for (a current
  // code), so a super_admin's stolen token and password stripped its owner's second factor.
  it("refuses a super_admin's reset of their own second factors: that is /users/me/mfa, with a code", async () => {
    const { user, secret } = await enrolled('super_admin');
    const { access_token: token } = await mfaLogin(user.email, secret);
    const reset = await app.inject({
      method: 'DELETE',
      url: `/users/${user.id}/mfa`,
      headers: bearer(token),
    });
    expect(reset.statusCode).toBe(403);
    expect(reset.json()).toMatchObject({ code: 'FORBIDDEN' });
    expect((await core().mfa.status(user.id)).totp).toBe('on');
    expect((await app.inject({ url: '/users/me', headers: bearer(token) })).statusCode).toBe(200);
  });

  it('resets a user’s second factors: audited, every session ended; password logins work again', async () => {
    const admin = await createUser(app, { role: 'admin' });
    const { access_token: adminToken } = await login(app, admin.email);
    const { user, secret } = await enrolled();
    const { access_token: victimToken } = await mfaLogin(user.email, secret);

    const reset = await app.inject({
      method: 'DELETE',
      url: `/users/${user.id}/mfa`,
      headers: bearer(adminToken),
    });
    expect(reset.statusCode).toBe(200);
    expect(reset.json()).toEqual({ removed: true });
    expect((await app.inject({ url: '/users/me', headers: bearer(victimToken) })).statusCode).toBe(401);
    expect(await core().mfa.status(user.id)).toEqual({ totp: 'off', recoveryCodesLeft: 0, passkeys: 0 });
    const audit = await core().audit.list({ limit: 10, offset: 0, event: 'mfa_reset', targetId: user.id });
    expect(audit.items).toHaveLength(1);
    expect(audit.items[0]).toMatchObject({ actorId: admin.id });
    // The password alone signs in again (the owner sets a new authenticator up from there).
    const again = await postToken(app, { grant_type: 'password', username: user.email, password: PASSWORD });
    expect(again.statusCode).toBe(200);
    // Nothing left: removed is false, and it is not audited twice.
    const twice = await app.inject({
      method: 'DELETE',
      url: `/users/${user.id}/mfa`,
      headers: bearer(adminToken),
    });
    expect(twice.json()).toEqual({ removed: false });
    expect(
      (await core().audit.list({ limit: 10, offset: 0, event: 'mfa_reset', targetId: user.id })).total,
    ).toBe(1);
  });

  it('an admin whose own account holds a second factor resets others’ only from a session that proved it, recently', async () => {
    const { user: admin, secret } = await enrolled('admin');
    const { user: target } = await enrolled('user');
    const reset = (token: string) =>
      app.inject({ method: 'DELETE', url: `/users/${target.id}/mfa`, headers: bearer(token) });
    // A password-only session of this admin (one started before its factor, or a passkey-only
    // admin's password sign-in): a password alone never removes a factor, not even someone else's.
    const passwordOnly = await core().sessions.startBearerSession(
      admin.id,
      ['me', 'users:read', 'users:write'],
      {
        ip: null,
        userAgent: null,
      },
    );
    const refused = await reset(passwordOnly.accessToken);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().code).toBe('STEP_UP_REQUIRED');
    expect(await core().mfa.isEnrolled(target.id)).toBe(true);
    const { access_token: proved } = await mfaLogin(admin.email, secret);
    expect((await reset(proved)).json()).toEqual({ removed: true });
  });

  it('a password-only admin resets others’ second factors only from a recent sign-in (STEP_UP_MAX_AGE)', async () => {
    // Red-team 2026-12h M1: requireSecondFactorAuthentication passes at once for an actor with no
    // second factor, so a stale (leaked) admin token that may not enrol its own authenticator
    // stripped any user's: the password (stuffed or phished) then signed the victim in alone.
    const admin = await createUser(app, { role: 'admin' });
    const { access_token: adminToken } = await login(app, admin.email);
    const { user: target } = await enrolled('user');
    const reset = (token: string) =>
      app.inject({ method: 'DELETE', url: `/users/${target.id}/mfa`, headers: bearer(token) });
    clock.advance((core().stepUp.maxAgeSeconds + 1) * 1000);
    const stale = await reset(adminToken);
    expect(stale.statusCode).toBe(401);
    expect(stale.json().code).toBe('STEP_UP_REQUIRED');
    expect(stale.headers['www-authenticate']).toContain('insufficient_user_authentication');
    expect(await core().mfa.isEnrolled(target.id)).toBe(true);
    // Signing in again (here a fresh login; POST /auth/reauthenticate does the same) lets it.
    const { access_token: fresh } = await login(app, admin.email);
    expect((await reset(fresh)).json()).toEqual({ removed: true });
  });

  it('an admin cannot reset another admin’s second factors; a super_admin can', async () => {
    const admin = await createUser(app, { role: 'admin' });
    const { access_token: adminToken } = await login(app, admin.email);
    const { user: other } = await enrolled('admin');
    const refused = await app.inject({
      method: 'DELETE',
      url: `/users/${other.id}/mfa`,
      headers: bearer(adminToken),
    });
    expect(refused.statusCode).toBe(403);
    expect(await core().mfa.isEnrolled(other.id)).toBe(true);
    const { user: boss, secret } = await enrolled('super_admin');
    const { access_token: bossToken } = await mfaLogin(boss.email, secret);
    const done = await app.inject({
      method: 'DELETE',
      url: `/users/${other.id}/mfa`,
      headers: bearer(bossToken),
    });
    expect(done.json()).toEqual({ removed: true });
  });

  it('REQUIRE_MFA_FOR_ROLES: a super_admin without a second factor gets only user scopes until it signs in with one', async () => {
    const boss = await createUser(app, { role: 'super_admin', verified: true });
    // Password only: the role's scopes are refused by name, the default grant is the user's.
    const asked = await postToken(app, {
      grant_type: 'password',
      username: boss.email,
      password: PASSWORD,
      scope: 'audit:read',
    });
    expect(asked.json()).toMatchObject({ error: 'invalid_scope' });
    expect(asked.json().error_description).toContain('second factor');
    const plain = await login(app, boss.email);
    expect(plain.scope.split(' ').sort()).toEqual(['clothes:read', 'me', 'rooms:host']);
    const audit = await app.inject({ url: '/audit', headers: bearer(plain.access_token) });
    expect(audit.statusCode).toBe(403);
    // A browser session likewise; and the outbox (role, `users:write`) refuses it for the second factor.
    const browser = new Browser(app);
    expect((await browser.login(boss.email)).statusCode).toBe(204);
    expect((await browser.request('GET', '/audit')).statusCode).toBe(403);
    const outbox = await app.inject({ url: '/admin/outbox', headers: bearer(plain.access_token) });
    expect(outbox.statusCode).toBe(403);
    expect(outbox.json().detail).toContain('second factor');
    // The enrolment routes stay open to it.
    const started = await app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp',
      headers: bearer(plain.access_token),
    });
    expect(started.statusCode).toBe(201);
    const { secret } = started.json<{ secret: string }>();
    const confirmed = await app.inject({
      method: 'POST',
      url: '/users/me/mfa/totp/confirm',
      headers: bearer(plain.access_token),
      payload: { code: generateTotpCode(secret, clock()) },
    });
    expect(confirmed.statusCode).toBe(200);
    clock.advance(30_000);
    // Signed in with both factors: the whole role.
    const full = await mfaLogin(boss.email, secret);
    expect(full.scope.split(' ')).toContain('audit:read');
    expect((await app.inject({ url: '/audit', headers: bearer(full.access_token) })).statusCode).toBe(200);
    expect((await app.inject({ url: '/admin/outbox', headers: bearer(full.access_token) })).statusCode).toBe(
      200,
    );
    // Roles not listed are unaffected.
    const admin = await createUser(app, { role: 'admin' });
    expect((await login(app, admin.email)).scope.split(' ')).toContain('users:write');
  });

  it('REQUIRE_MFA_FOR_ROLES holds through /authorize: a password-only browser cannot hand its role to an OAuth client', async () => {
    const redirect = 'https://app.example/callback';
    const { client } = await core().oauthClients.create(
      { name: 'Console', redirectUris: [redirect], scopes: ['openid', 'me', 'audit:read'] },
      { actorId: null },
    );
    const boss = await createUser(app, { role: 'super_admin' });
    const browser = new Browser(app);
    expect((await browser.login(boss.email)).statusCode).toBe(204);
    const verifier = randomBytes(32).toString('base64url');
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: client.clientId,
      redirect_uri: redirect,
      scope: 'openid audit:read',
      state: 'st',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    });
    const page = await browser.request('GET', `/authorize?${query.toString()}`);
    expect(page.statusCode).toBe(200);
    const field = (name: string) => {
      const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(page.body);
      if (match?.[1] === undefined) throw new Error(`no ${name} field`);
      return match[1].replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#39;', "'");
    };
    const body: Record<string, string> = { decision: 'allow' };
    for (const name of [...query.keys(), 'csrf_token']) body[name] = field(name);
    const allowed = await app.inject({
      method: 'POST',
      url: '/authorize',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: browser.cookieHeader() },
      payload: form(body),
    });
    expect(allowed.statusCode).toBe(303);
    const code = new URL(String(allowed.headers.location)).searchParams.get('code');
    expect(code).not.toBeNull();
    const tokens = await postToken(app, {
      grant_type: 'authorization_code',
      client_id: client.clientId,
      code: String(code),
      redirect_uri: redirect,
      code_verifier: verifier,
    });
    expect(tokens.statusCode).toBe(200);
    expect(tokens.json<{ scope: string }>().scope.split(' ')).not.toContain('audit:read');
    const audit = await app.inject({ url: '/audit', headers: bearer(tokens.json().access_token) });
    expect(audit.statusCode).toBe(403);
  });
});
