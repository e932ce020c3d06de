import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { outboxDirectory, readOutbox } from '../../src/mail/outbox.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, form, login, PASSWORD, uniqueEmail } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { linkToken } from '../support/smtp-sink.js';
import { createSoftAuthenticator, type PasskeyOptions } from '../support/soft-authenticator.js';

const NEW_PASSWORD = 'a brand new passphrase';

/**
 * Red-team 2026-12-06 RTL1: a stranger who knows an address locks its password sign-in for every
 * client without a device cookie (accepted, README "Login throttling"), and the owner's remedies
 * made it total: a reset (which clears the lockout) and "log out everywhere" end every device
 * token of the account and gave none back, so the stranger re-locked the account at once and the
 * owner's own browser was locked out with everyone else's.
 */
describe('the device cookie after the owner ends every session or changes a credential', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer();
  });
  afterAll(async () => app.close());

  /** Five wrong passwords from five addresses: the account's lockout for untrusted clients. */
  const lockOut = async (email: string, network: string) => {
    for (let i = 1; i <= 5; i += 1) {
      const refused = await app.inject({
        method: 'POST',
        url: '/token',
        remoteAddress: `${network}.${i}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: form({ grant_type: 'password', username: email, password: 'not the password' }),
      });
      expect(refused.statusCode).toBe(400);
    }
    // A client without a device cookie is locked out now.
    expect((await new Browser(app).login(email)).statusCode).toBe(429);
  };

  const resetLink = async (to: string) => {
    await gatehouseCore(app.gatehouse).lifecycle.idle();
    const mails = await readOutbox(outboxDirectory(app.gatehouse.config.dataDir), 1000);
    const mail = mails.filter((each) => each.to === to && /reset/i.test(each.subject)).at(-1);
    if (mail === undefined) throw new Error(`no reset mail to ${to}`);
    return linkToken(mail.text);
  };

  it('a reset gives the browser that made it a device cookie: the stranger re-locking at once does not keep its owner out', async () => {
    const owner = await createUser(app, { email: uniqueEmail('relock') });
    await lockOut(owner.email, '198.51.100');
    // A browser that never signed in here: the owner's new laptop.
    const browser = new Browser(app);
    expect((await browser.login(owner.email)).statusCode).toBe(429);
    expect(
      (await browser.request('POST', '/auth/forgot-password', { payload: { email: owner.email } }))
        .statusCode,
    ).toBe(202);
    const reset = await browser.request('POST', '/auth/reset-password', {
      payload: { token: await resetLink(owner.email), password: NEW_PASSWORD },
    });
    expect(reset.statusCode, reset.body).toBe(204);
    const cookie = String(reset.headers['set-cookie']);
    expect(cookie).toMatch(/gatehouse_device=[^;]+;.*HttpOnly/);
    expect(cookie).toMatch(/gatehouse_device=[^;]+;.*SameSite=Strict/);
    await lockOut(owner.email, '203.0.113');
    const signedIn = await browser.login(owner.email, NEW_PASSWORD);
    expect(signedIn.statusCode, signedIn.body).toBe(204);
  });

  it('a reset still answers 204 when the account cannot be read after it (its link is spent)', async () => {
    const owner = await createUser(app, { email: uniqueEmail('resetread') });
    const browser = new Browser(app);
    expect(
      (await browser.request('POST', '/auth/forgot-password', { payload: { email: owner.email } }))
        .statusCode,
    ).toBe(202);
    const token = await resetLink(owner.email);
    // The link's own look-up reads the account first; the read after the commit fails.
    const users = gatehouseCore(app.gatehouse).users;
    const findUserById = users.findUserById;
    let reads = 0;
    users.findUserById = async (id) => {
      if (id === owner.id && ++reads === 2) throw new Error('the database went away');
      return findUserById.call(users, id);
    };
    try {
      const reset = await browser.request('POST', '/auth/reset-password', {
        payload: { token, password: NEW_PASSWORD },
      });
      expect(reset.statusCode, reset.body).toBe(204);
      expect(String(reset.headers['set-cookie'] ?? '')).not.toMatch(/gatehouse_device=[^;]/);
    } finally {
      users.findUserById = findUserById;
    }
    expect(reads).toBe(2);
    expect((await browser.login(owner.email, NEW_PASSWORD)).statusCode).toBe(204);
  });

  it('"log out everywhere" renews the device cookie of the browser that asked', async () => {
    const owner = await createUser(app, { email: uniqueEmail('logoutall') });
    const laptop = new Browser(app);
    expect((await laptop.login(owner.email)).statusCode).toBe(204);
    const out = await laptop.request('POST', '/auth/logout-all', {
      headers: { 'x-csrf-token': await laptop.csrf() },
    });
    expect(out.statusCode, out.body).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/gatehouse_device=[^;]+;.*Max-Age=\d+/);
    await lockOut(owner.email, '198.51.100');
    const again = await laptop.login(owner.email);
    expect(again.statusCode, again.body).toBe(204);
  });

  it('"log out everywhere" gives no device cookie to a session that held none (a stolen session cookie alone)', async () => {
    const owner = await createUser(app, { email: uniqueEmail('stolen') });
    const browser = new Browser(app);
    expect((await browser.login(owner.email)).statusCode).toBe(204);
    // The thief copied the session and CSRF cookies, not the device cookie.
    const thief = new Browser(app);
    for (const [name, value] of browser.jar)
      if (!name.endsWith('gatehouse_device')) thief.jar.set(name, value);
    const out = await thief.request('POST', '/auth/logout-all', {
      headers: { 'x-csrf-token': await thief.csrf() },
    });
    expect(out.statusCode, out.body).toBe(204);
    expect(String(out.headers['set-cookie'] ?? '')).not.toMatch(/gatehouse_device=[^;]/);
  });

  it('"log out everywhere" still answers 204 when the renewed cookie cannot be issued (the change committed)', async () => {
    const owner = await createUser(app, { email: uniqueEmail('renewfails') });
    const laptop = new Browser(app);
    expect((await laptop.login(owner.email)).statusCode).toBe(204);
    const selfService = gatehouseCore(app.gatehouse).selfService;
    const deviceTokenFor = selfService.deviceTokenFor;
    selfService.deviceTokenFor = async () => {
      throw new Error('the database went away');
    };
    try {
      const out = await laptop.request('POST', '/auth/logout-all', {
        headers: { 'x-csrf-token': await laptop.csrf() },
      });
      expect(out.statusCode, out.body).toBe(204);
    } finally {
      selfService.deviceTokenFor = deviceTokenFor;
    }
    expect((await laptop.request('GET', '/users/me')).statusCode).toBe(401);
  });

  it('a password change renews it too; a bearer client gets no cookie', async () => {
    const owner = await createUser(app, { email: uniqueEmail('change') });
    const browser = new Browser(app);
    expect((await browser.login(owner.email)).statusCode).toBe(204);
    const changed = await browser.request('PATCH', '/users/me', {
      headers: { 'x-csrf-token': await browser.csrf() },
      payload: { password: NEW_PASSWORD, current_password: PASSWORD },
    });
    expect(changed.statusCode, changed.body).toBe(200);
    await lockOut(owner.email, '192.0.2');
    expect((await browser.login(owner.email, NEW_PASSWORD)).statusCode).toBe(204);

    const api = await createUser(app, { email: uniqueEmail('api') });
    const { access_token } = await login(app, api.email);
    const out = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(access_token) });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'] ?? '')).not.toMatch(/gatehouse_device=/);
  });
});

// The review of RTL1: a stolen session alone (no device cookie) could add a passkey of its own,
// step up with it, remove it, and leave with 90 days of device trust.
describe('the device cookie after a passkey removal by a session that held none', () => {
  const ORIGIN = 'https://auth.example.org';
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildTestServer({ publicUrl: ORIGIN });
  });
  afterAll(async () => app.close());

  it('is not given', async () => {
    const owner = await createUser(app, { verified: true });
    const browser = new Browser(app);
    expect((await browser.login(owner.email)).statusCode).toBe(204);
    const thief = new Browser(app);
    for (const [name, value] of browser.jar)
      if (!name.endsWith('gatehouse_device')) thief.jar.set(name, value);
    const csrf = { 'x-csrf-token': await thief.csrf() };
    const authenticator = createSoftAuthenticator(ORIGIN);
    const started = (
      await thief.request('POST', '/users/me/passkeys/options', { headers: csrf })
    ).json<PasskeyOptions>();
    const added = await thief.request('POST', '/users/me/passkeys', {
      headers: csrf,
      payload: { passkey_token: started.passkey_token, credential: authenticator.register(started.options) },
    });
    expect(added.statusCode, added.body).toBe(201);
    const reauth = (
      await thief.request('POST', '/auth/reauthenticate/passkey/options', { headers: csrf })
    ).json<PasskeyOptions>();
    const steppedUp = await thief.request('POST', '/auth/reauthenticate/passkey', {
      headers: csrf,
      payload: {
        passkey_token: reauth.passkey_token,
        credential: authenticator.authenticate(reauth.options),
      },
    });
    expect(steppedUp.statusCode, steppedUp.body).toBe(200);
    const removed = await thief.request('DELETE', `/users/me/passkeys/${added.json<{ id: string }>().id}`, {
      headers: csrf,
    });
    expect(removed.statusCode, removed.body).toBe(204);
    expect(String(removed.headers['set-cookie'] ?? '')).not.toMatch(/gatehouse_device=[^;]/);
  });
});
