import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { outboxDirectory, readOutbox } from '../../src/mail/outbox.js';
import { createMfaStore } from '../../src/mfa/storage/mfa-store.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { createSpentChallengeStore } from '../../src/storage/spent-challenge-store.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD, postToken } from '../support/accounts.js';
import { createAuditFault } from '../support/audit-fault.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { enrolTotp, enrolTotpAs, postMfaGrant, requestMfaToken } from '../support/mfa.js';
import { linkToken } from '../support/smtp-sink.js';
import { createSoftAuthenticator } from '../support/soft-authenticator.js';

const STEP = 30_000;
/** MFA_MAX_CONSECUTIVE_FAILURES in these tests. */
const CAP = 3;
const ORIGIN = 'https://auth.example.org';
const NEW_PASSWORD = 'a brand new passphrase';

/** A WebAuthn ceremony's options, as the passkey routes answer them. */
interface Ceremony {
  options: { challenge: string; rp: { id: string }; user: { id: string }; rpId: string };
  passkey_token: string;
}

/**
 * NIST SP 800-63B §5.2.2: at most 100 consecutive wrong second-factor codes per account, counted
 * in the database (not the windowed counters, which let ~960 guesses a day through for ever). The
 * windowed limits are set wide here, so only the run of wrong codes refuses.
 */
describe.each(engines)('MFA_MAX_CONSECUTIVE_FAILURES ($name)', ({ name }) => {
  let app: FastifyInstance;
  let clock: TestClock;
  let drop: () => Promise<void> = async () => {};

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    clock = createTestClock();
    app = await buildTestServer(
      {
        databaseUrl: database.url,
        publicUrl: ORIGIN,
        mfaMaxConsecutiveFailures: CAP,
        mfaMaxFailuresPerToken: 10,
        mfaMaxFailuresPerAccount: 100,
        loginMaxFailuresPerDevice: 100,
      },
      { clock, scheduler: clock },
    );
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });
  afterEach(async () => createAuditFault(core().database.db, name).heal());

  const core = () => gatehouseCore(app.gatehouse);

  /** The authenticator's code of the next time step (each accepted step is spent). */
  const nextCode = (secret: string) => {
    clock.advance(STEP);
    return generateTotpCode(secret, clock());
  };
  const runOf = async (userId: string) =>
    (await createMfaStore(core().database.db).findTotp(userId))?.consecutiveFailures;

  /** `count` wrong codes at /token from a client without a device token, each answered as wrong. */
  const wrongCodes = async (email: string, count: number) => {
    const token = await requestMfaToken(app, email);
    for (let i = 0; i < count; i++) {
      const response = await postMfaGrant(app, token, '000000');
      expect(response.json(), response.body).toMatchObject({ error: 'invalid_grant' });
      expect(response.json().code).toBeUndefined();
    }
  };

  const expectLockedGrant = (response: LightMyRequestResponse) => {
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json()).toMatchObject({ error: 'invalid_grant', code: 'SECOND_FACTOR_LOCKED' });
    expect(response.json().error_description).toMatch(/passkey.*device that signed in.*administrator/s);
  };
  const expectLockedProblem = (response: LightMyRequestResponse) => {
    expect(response.statusCode, response.body).toBe(403);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json().code).toBe('SECOND_FACTOR_LOCKED');
  };

  const lockMails = async (email: string) => {
    await core().lifecycle.idle();
    const mail = await readOutbox(outboxDirectory(app.gatehouse.config.dataDir), 1000);
    return mail.filter((m) => m.to === email && /Too many wrong sign-in codes/.test(m.subject));
  };
  const lockAudits = async (userId: string) =>
    (await core().audit.list({ event: 'mfa_locked', limit: 100, offset: 0 })).items.filter(
      (item) => item.targetId === userId,
    );

  it('refuses an untrusted client at the cap even with the right code, unchecked; mails and audits once', async () => {
    const { user, secret } = await enrolTotp(app, clock());
    await wrongCodes(user.email, CAP);
    expect(await runOf(user.id)).toBe(CAP);

    const right = nextCode(secret);
    expectLockedGrant(await postMfaGrant(app, await requestMfaToken(app, user.email), right));
    // Refused before any check: more tries are neither counted nor told apart from the right code.
    expectLockedGrant(await postMfaGrant(app, await requestMfaToken(app, user.email), '000000'));
    expect(await runOf(user.id)).toBe(CAP);

    // The browser's second step is refused alike, as problem+json.
    const browser = new Browser(app);
    const first = await browser.login(user.email);
    expectLockedProblem(
      await browser.request('POST', '/auth/login/mfa', {
        headers: { 'x-csrf-token': await browser.csrf() },
        payload: { mfa_token: first.json<{ mfa_token: string }>().mfa_token, otp: right },
      }),
    );

    const [mail, ...more] = await lockMails(user.email);
    expect(more).toEqual([]);
    expect(mail?.text).toMatch(/3 wrong sign-in codes in a row.*recovery codes.*passkey.*does not lift it/s);
    const [entry, ...others] = await lockAudits(user.id);
    expect(others).toEqual([]);
    expect(entry).toMatchObject({
      event: 'mfa_locked',
      details: { via: 'token', consecutive_failures: CAP },
    });
    expect(entry?.ip).toEqual(expect.any(String));
  });

  it('counts wrong codes from signed-in sessions, then refuses their step-ups with the right code', async () => {
    const { user, secret, recoveryCodes } = await enrolTotp(app, clock());
    const signedIn = await postMfaGrant(app, await requestMfaToken(app, user.email), nextCode(secret));
    const { access_token: token } = signedIn.json<{ access_token: string }>();
    // One wrong code at login and two from the session: one run.
    await wrongCodes(user.email, 1);
    for (let i = 0; i < CAP - 1; i++) {
      const wrong = await app.inject({
        method: 'DELETE',
        url: '/users/me/mfa/totp',
        headers: bearer(token),
        payload: { code: '000000' },
      });
      expect(wrong.json().code).toBe('INVALID_OTP');
    }
    expectLockedProblem(
      await app.inject({
        method: 'POST',
        url: '/auth/reauthenticate',
        headers: bearer(token),
        payload: { current_password: PASSWORD, otp: nextCode(secret) },
      }),
    );
    const [entry] = await lockAudits(user.id);
    expect(entry?.details).toMatchObject({ via: 'session' });
    // A recovery code is still checked at the cap: a wrong one is a wrong code, not "locked"…
    const wrongRecovery = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate',
      headers: bearer(token),
      payload: { current_password: PASSWORD, otp: 'aaaa-bbbb-cccc-dddd' },
    });
    expect(wrongRecovery.json().code).toBe('INVALID_OTP');
    expect(await runOf(user.id)).toBe(CAP);
    // …and a right one passes and ends the run.
    const stepUp = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate',
      headers: bearer(token),
      payload: { current_password: PASSWORD, otp: recoveryCodes[0] },
    });
    expect(stepUp.statusCode, stepUp.body).toBe(200);
    expect(await runOf(user.id)).toBe(0);
    expect(await core().mfa.status(user.id)).toEqual({ totp: 'on', recoveryCodesLeft: 9, passkeys: 0 });
  });

  it('lets a trusted device try at the cap; its accepted code ends the run for everyone', async () => {
    const { user, secret } = await enrolTotp(app, clock());
    const owner = await postMfaGrant(app, await requestMfaToken(app, user.email), nextCode(secret));
    const deviceToken = owner.json<{ device_token: string }>().device_token;
    const trustedToken = () =>
      postToken(app, {
        grant_type: 'password',
        username: user.email,
        password: PASSWORD,
        device_token: deviceToken,
      }).then((response) => response.json<{ mfa_token: string }>().mfa_token);

    await wrongCodes(user.email, CAP);
    const right = nextCode(secret);
    expectLockedGrant(await postMfaGrant(app, await requestMfaToken(app, user.email), right));
    // The device's codes are still checked: a wrong one is told wrong (and counted), the right one
    // (the very code the untrusted client was refused with, unspent) signs in.
    const wrong = await postMfaGrant(app, await trustedToken(), '000000');
    expect(wrong.json()).toMatchObject({ error: 'invalid_grant' });
    expect(wrong.json().code).toBeUndefined();
    expect(await runOf(user.id)).toBe(CAP + 1);
    expect((await postMfaGrant(app, await trustedToken(), right)).statusCode).toBe(200);
    expect(await runOf(user.id)).toBe(0);
    expect(
      (await postMfaGrant(app, await requestMfaToken(app, user.email), nextCode(secret))).statusCode,
    ).toBe(200);
  });

  it('ends the run at every accepted code below the cap (TOTP and recovery code)', async () => {
    const { user, secret, recoveryCodes } = await enrolTotp(app, clock());
    const rights = [() => String(recoveryCodes[0]), () => nextCode(secret), () => String(recoveryCodes[1])];
    for (const right of rights) {
      await wrongCodes(user.email, CAP - 1);
      expect(await runOf(user.id)).toBe(CAP - 1);
      const response = await postMfaGrant(app, await requestMfaToken(app, user.email), right());
      expect(response.statusCode, response.body).toBe(200);
      expect(await runOf(user.id)).toBe(0);
    }
    expect(await lockAudits(user.id)).toEqual([]);
  });

  it('keeps the run through a password reset by mail; a recovery code still signs in at the cap; a token from before the reset counts nothing', async () => {
    const { user, secret, recoveryCodes } = await enrolTotp(app, clock());
    await wrongCodes(user.email, CAP);
    const code = nextCode(secret);
    expectLockedGrant(await postMfaGrant(app, await requestMfaToken(app, user.email), code));
    // The thief keeps a token minted with the old password.
    const thiefs = await requestMfaToken(app, user.email);
    expect(
      (await app.inject({ method: 'POST', url: '/auth/forgot-password', payload: { email: user.email } }))
        .statusCode,
    ).toBe(202);
    await core().lifecycle.idle();
    const mail = (await readOutbox(outboxDirectory(app.gatehouse.config.dataDir), 1000)).find(
      (m) => m.to === user.email && /Reset/.test(m.subject),
    );
    const reset = await app.inject({
      method: 'POST',
      url: '/auth/reset-password',
      payload: { token: linkToken(mail?.text), password: NEW_PASSWORD },
    });
    expect(reset.statusCode, reset.body).toBe(204);
    // Someone holding the password and the mailbox would otherwise get a fresh run per reset.
    expect(await runOf(user.id)).toBe(CAP);
    const newToken = async () =>
      (await postToken(app, { grant_type: 'password', username: user.email, password: NEW_PASSWORD })).json<{
        mfa_token: string;
      }>().mfa_token;
    expectLockedGrant(await postMfaGrant(app, await newToken(), code));
    // The thief's token from before the reset is dead, and its codes count nothing.
    // (Below the cap, where a wrong code would count.)
    const setRun = (n: number) =>
      core()
        .database.db.updateTable('mfa_totp')
        .set({ consecutive_failures: n })
        .where('user_id', '=', user.id)
        .execute();
    await setRun(0);
    for (let i = 0; i < CAP; i++) {
      expect((await postMfaGrant(app, thiefs, '000000')).json()).toMatchObject({ error: 'invalid_grant' });
    }
    expect(await runOf(user.id)).toBe(0);
    await setRun(CAP);
    // The owner, whose device tokens the reset ended, gets back in with a recovery code, which
    // ends the run (80 random bits: nothing to guess).
    const recovered = await postMfaGrant(app, await newToken(), String(recoveryCodes[0]));
    expect(recovered.statusCode, recovered.body).toBe(200);
    expect(await runOf(user.id)).toBe(0);
  });

  it('checks recovery codes at the cap, at /token too: a wrong or mistyped one is a wrong code there, and counts in the run below it', async () => {
    const { user, recoveryCodes } = await enrolTotp(app, clock());
    // Below the cap a wrong recovery code adds to the run, as a wrong TOTP code does.
    const token = await requestMfaToken(app, user.email);
    expect((await postMfaGrant(app, token, 'aaaa-bbbb-cccc-dddd')).json()).toMatchObject({
      error: 'invalid_grant',
    });
    expect(await runOf(user.id)).toBe(1);
    await wrongCodes(user.email, CAP - 1);
    expect(await runOf(user.id)).toBe(CAP);
    // At the cap: a well-formed wrong one, and one mistyped out of base32 (a 0 for an o), are
    // wrong codes (invalid_grant without SECOND_FACTOR_LOCKED, whose message sends the owner to
    // their recovery codes), not a lock.
    const right = String(recoveryCodes[0]);
    for (const wrong of ['aaaa-bbbb-cccc-dddd', `${right.slice(0, -1)}0`]) {
      const answer = await postMfaGrant(app, await requestMfaToken(app, user.email), wrong);
      expect(answer.json(), wrong).toMatchObject({ error: 'invalid_grant' });
      expect(answer.json().code, wrong).toBeUndefined();
    }
    expect(await runOf(user.id)).toBe(CAP);
    const signedIn = await postMfaGrant(app, await requestMfaToken(app, user.email), right);
    expect(signedIn.statusCode, signedIn.body).toBe(200);
    expect(await runOf(user.id)).toBe(0);
  });

  it('does not charge the run for a right code used twice: a replay, or requests racing with one code (red-team 2026-12-04 F2)', async () => {
    const { user, secret } = await enrolTotp(app, clock());
    const code = nextCode(secret);
    const tokens = await Promise.all(Array.from({ length: CAP + 2 }, () => requestMfaToken(app, user.email)));
    const answers = await Promise.all(tokens.map((token) => postMfaGrant(app, token, code)));
    expect(answers.filter((answer) => answer.statusCode === 200)).toHaveLength(1);
    for (const answer of answers.filter((a) => a.statusCode !== 200)) {
      expect(answer.json()).toMatchObject({ error: 'invalid_grant' });
      expect(answer.json().code).toBeUndefined();
    }
    // The same code once more, later: a replay, refused, and still no wrong code in the run.
    expect((await postMfaGrant(app, await requestMfaToken(app, user.email), code)).json()).toMatchObject({
      error: 'invalid_grant',
    });
    expect(await runOf(user.id)).toBe(0);
    // A wrong code still counts.
    await wrongCodes(user.email, 1);
    expect(await runOf(user.id)).toBe(1);
  });

  it('ends the run with a password change by a session that proved its second factor', async () => {
    const { user, secret } = await enrolTotp(app, clock());
    const signedIn = await postMfaGrant(app, await requestMfaToken(app, user.email), nextCode(secret));
    const { access_token: token } = signedIn.json<{ access_token: string }>();
    await wrongCodes(user.email, CAP);
    expectLockedGrant(await postMfaGrant(app, await requestMfaToken(app, user.email), nextCode(secret)));
    const changed = await app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: bearer(token),
      payload: { current_password: PASSWORD, password: NEW_PASSWORD },
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(await runOf(user.id)).toBe(0);
    const next = await postToken(app, {
      grant_type: 'password',
      username: user.email,
      password: NEW_PASSWORD,
    });
    const mfaToken = next.json<{ mfa_token: string }>().mfa_token;
    expect((await postMfaGrant(app, mfaToken, nextCode(secret))).statusCode).toBe(200);
  });

  it("ends the run with an admin's MFA reset: the new authenticator starts with none", async () => {
    const { user, secret } = await enrolTotp(app, clock());
    await wrongCodes(user.email, CAP);
    expectLockedGrant(await postMfaGrant(app, await requestMfaToken(app, user.email), nextCode(secret)));
    expect(
      (await core().mfa.reset(user.id, { actorId: null, targetId: user.id, ip: '127.0.0.1' })).removed,
    ).toBe(true);
    const { access_token: token } = await login(app, user.email);
    const renewed = await enrolTotpAs(app, token, clock());
    expect(await runOf(user.id)).toBe(0);
    const response = await postMfaGrant(
      app,
      await requestMfaToken(app, user.email),
      nextCode(renewed.secret),
    );
    expect(response.statusCode, response.body).toBe(200);
  });

  it('of codes sent at once, tells no more than the cap apart (the rest are locked), and mails once', async () => {
    const { user, secret } = await enrolTotp(app, clock());
    const tokens = await Promise.all([requestMfaToken(app, user.email), requestMfaToken(app, user.email)]);
    const answers = await Promise.all(
      Array.from({ length: 2 * CAP }, (_, i) => postMfaGrant(app, String(tokens[i % 2]), '000000')),
    );
    const codes = answers.map((answer) => answer.json<{ code?: string }>().code ?? 'wrong');
    expect(codes.filter((code) => code === 'wrong')).toHaveLength(CAP);
    expect(codes.filter((code) => code === 'SECOND_FACTOR_LOCKED')).toHaveLength(CAP);
    expect(await runOf(user.id)).toBe(CAP);
    expectLockedGrant(await postMfaGrant(app, await requestMfaToken(app, user.email), nextCode(secret)));
    expect(await lockMails(user.email)).toHaveLength(1);
    expect(await lockAudits(user.id)).toHaveLength(1);
  });

  it('a right code racing the wrong code that reaches the cap is accepted before it or refused after it', async () => {
    const { user, secret } = await enrolTotp(app, clock());
    await wrongCodes(user.email, CAP - 1);
    const right = nextCode(secret);
    const tokens = await Promise.all([requestMfaToken(app, user.email), requestMfaToken(app, user.email)]);
    const [wrong, raced] = await Promise.all([
      postMfaGrant(app, String(tokens[0]), '000000'),
      postMfaGrant(app, String(tokens[1]), right),
    ]);
    expect(wrong.json().code).toBeUndefined();
    if (raced.statusCode === 200) {
      // The right code first: the run restarted, and the wrong code began a new one.
      expect(await runOf(user.id)).toBe(1);
      expect(await lockAudits(user.id)).toEqual([]);
    } else {
      // The wrong code first: the cap was reached, and the right code was not spent.
      expectLockedGrant(raced);
      expect(await runOf(user.id)).toBe(CAP);
      expect(await lockAudits(user.id)).toHaveLength(1);
    }
  });

  it('does not spend a right code once a wrong code committed between its check and its spend reached the cap', async () => {
    const { user, secret } = await enrolTotp(app, clock());
    await wrongCodes(user.email, CAP - 1);
    const token = await requestMfaToken(app, user.email);
    const outcome = await core().mfa.completeChallenge(token, nextCode(secret), 'token', async (proof) => {
      // The racing wrong code commits after this one's code was read and found right.
      const charged = await createMfaStore(core().database.db).chargeConsecutiveFailure(user.id, CAP);
      expect(charged).toEqual({ charged: true, count: CAP });
      await core().database.transaction((trx) =>
        proof.spend(
          {
            mfa: createMfaStore(trx),
            spent: createSpentChallengeStore(trx),
            audit: { record: async () => {} },
            notices: { add: async () => {} },
          },
          {},
        ),
      );
      return 'started';
    });
    expect(outcome).toEqual({ ok: false, reason: 'locked' });
    expect(await runOf(user.id)).toBe(CAP);
  });

  it('an outage is not a wrong code', async () => {
    const { user, secret } = await enrolTotp(app, clock());
    await wrongCodes(user.email, CAP - 1);
    const token = await requestMfaToken(app, user.email);
    const right = nextCode(secret);
    // The login's last write (its audit row) fails: nothing is spent, and no try is counted.
    await createAuditFault(core().database.db, name).inject();
    for (let i = 0; i < CAP; i++) expect((await postMfaGrant(app, token, right)).statusCode).toBe(503);
    await createAuditFault(core().database.db, name).heal();
    expect(await runOf(user.id)).toBe(CAP - 1);
    // The last wrong code of the run is still checked, and then the cap holds.
    const last = await postMfaGrant(app, token, '000000');
    expect(last.json().code).toBeUndefined();
    expectLockedGrant(await postMfaGrant(app, token, right));
  });

  it('does not refuse a passkey sign-in at the cap, and the passkey ends the run', async () => {
    const user = await createUser(app, { verified: true });
    const { access_token: token } = await login(app, user.email);
    const authenticator = createSoftAuthenticator(ORIGIN);
    const options = await app.inject({
      method: 'POST',
      url: '/users/me/passkeys/options',
      headers: bearer(token),
    });
    const { options: creation, passkey_token: creationToken } = options.json<Ceremony>();
    const registered = await app.inject({
      method: 'POST',
      url: '/users/me/passkeys',
      headers: bearer(token),
      payload: { passkey_token: creationToken, credential: authenticator.register(creation), name: 'Laptop' },
    });
    expect(registered.statusCode).toBe(201);
    // Setting up an authenticator app on a passkey account needs a step-up with the passkey.
    const stepUp = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate/passkey/options',
      headers: bearer(token),
    });
    const stepUpCeremony = stepUp.json<Ceremony>();
    const stepped = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate/passkey',
      headers: bearer(token),
      payload: {
        passkey_token: stepUpCeremony.passkey_token,
        credential: authenticator.authenticate(stepUpCeremony.options),
      },
    });
    expect(stepped.statusCode).toBe(200);
    const { secret } = await enrolTotpAs(app, token, clock());

    await wrongCodes(user.email, CAP);
    expect(await runOf(user.id)).toBe(CAP);
    const browser = new Browser(app);
    const signIn = (await browser.request('POST', '/auth/passkey/options')).json<Ceremony>();
    const passkey = await browser.request('POST', '/auth/passkey/login', {
      headers: { 'x-csrf-token': await browser.csrf() },
      payload: {
        passkey_token: signIn.passkey_token,
        credential: authenticator.authenticate(signIn.options),
      },
    });
    expect(passkey.statusCode, passkey.body).toBe(204);
    expect(await runOf(user.id)).toBe(0);
    expect(
      (await postMfaGrant(app, await requestMfaToken(app, user.email), nextCode(secret))).statusCode,
    ).toBe(200);
  });
});
