import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { createSessionStore } from '../../src/storage/session-store.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login, postToken } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { enrolTotp } from '../support/mfa.js';

// Review of dd334eb (revoke-all replacing SECRET_KEY under a running instance): the superseded
// instance refused every token it had signed, and went on signing new ones. `POST /token` answered
// 200 with an access token that no instance accepts (its own cut-off is infinite, the others have
// another key), spending the client's refresh token on it: a client behind a load balancer that
// does not read /readyz looped refresh → 401 → refresh. Apps' tokens (a Dicery seat) the same.
describe('an instance whose SECRET_KEY revoke-all replaced', () => {
  let app: FastifyInstance;
  let email: string;
  let refreshToken: string;
  // A browser half-way through a sign-in with a second factor when the secret was replaced: its
  // mfa_token and CSRF token are what anyone holding the leaked secret can forge for any account.
  let browser: Browser;
  let mfaToken: string;
  let csrfToken: string;
  let totpSecret: string;
  beforeAll(async () => {
    app = await buildTestServer();
    email = (await createUser(app)).email;
    refreshToken = (await login(app, email)).refresh_token;
    const enrolled = await enrolTotp(app, Date.now());
    totpSecret = enrolled.secret;
    browser = new Browser(app);
    mfaToken = (await browser.login(enrolled.user.email)).json<{ mfa_token: string }>().mfa_token;
    csrfToken = await browser.csrf();
    const core = gatehouseCore(app.gatehouse);
    // What revoke-all with another secret leaves in the database: another fingerprint, a cut-off.
    await core.database.db
      .updateTable('secret_key_check')
      .set({ fingerprint: 'another-secret' })
      .where('id', '=', 1)
      .execute();
    await createSessionStore(core.database.db).raiseRevocationCutoff(Math.ceil(Date.now() / 1000) * 1000);
    await core.revocations.reload();
    for (let i = 0; i < 500 && !core.secretSuperseded(); i += 1) await new Promise((r) => setTimeout(r, 10));
    if (!core.secretSuperseded()) throw new Error('the instance did not find its secret superseded');
  });
  afterAll(() => app.close());

  it('refuses /token with 503 temporarily_unavailable and Retry-After, and spends no refresh token', async () => {
    const password = await postToken(app, {
      grant_type: 'password',
      username: email,
      password: 'correct horse battery',
    });
    expect(password.statusCode).toBe(503);
    expect(password.headers['retry-after']).toBeDefined();
    expect(password.json()).toMatchObject({ error: 'temporarily_unavailable' });

    const refreshed = await postToken(app, { grant_type: 'refresh_token', refresh_token: refreshToken });
    expect(refreshed.statusCode).toBe(503);
    // The refresh token was not rotated: its family still has it unspent.
    const core = gatehouseCore(app.gatehouse);
    const { hashOpaqueToken } = await import('../../src/tokens/opaque-token.js');
    const row = await createSessionStore(core.database.db).findRefreshToken(hashOpaqueToken(refreshToken));
    expect(row).toMatchObject({ spentAt: null });
  });

  it('mints no app token (a Dicery seat would renew, be refused, and renew again)', async () => {
    const tokens = app.gatehouse.appTokens;
    await expect(
      tokens.sign(
        { typ: 'room+jwt', audience: 'dicery' },
        { sub: 'p', exp: Math.floor(Date.now() / 1000) + 60 },
      ),
    ).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    // Our own routes answer 503 before any token is read (the last test); the seat's refusal above is
    // what apps' routes, registered outside the plugin, get.
    expect((await app.inject({ method: 'GET', url: '/users/me', headers: bearer('x') })).statusCode).toBe(
      503,
    );
  });

  // Red-team 2026-12r R4's remainder: mfa_tokens, CSRF tokens, passkey challenges, consent forms
  // and device tokens carry no `iat`, so the infinite cut-off never reached them. Before the fix the
  // browser step below answered 204 with a session cookie: a password-free sign-in for whoever
  // forges the mfa_token, with a session (a database row) that every instance honours.
  it('serves none of its secret-keyed routes: a browser sign-in step, CSRF, logins answer 503', async () => {
    const step = await browser.request('POST', '/auth/login/mfa', {
      headers: { 'x-csrf-token': csrfToken },
      payload: { mfa_token: mfaToken, otp: generateTotpCode(totpSecret, Date.now() + 30_000) },
    });
    expect(step.statusCode).toBe(503);
    expect(step.headers['retry-after']).toBe('5');
    expect(step.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(step.headers['set-cookie']).toBeUndefined();
    for (const [method, url] of [
      ['GET', '/auth/csrf'],
      ['POST', '/auth/login'],
      ['GET', '/users/me'],
      ['GET', '/.well-known/oauth-authorization-server'],
    ] as const) {
      const response = await app.inject({ method, url, payload: method === 'POST' ? {} : undefined });
      expect({ url, status: response.statusCode }).toEqual({ url, status: 503 });
    }
  });

  it('still answers liveness, readiness (503, superseded) and its public keys', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ secret_key: 'superseded' });
    expect((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode).toBe(200);
  });
});
