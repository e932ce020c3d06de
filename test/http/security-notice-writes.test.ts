import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { outboxDirectory, readOutbox } from '../../src/mail/outbox.js';
import { createSecurityNotices, NOTICE_KINDS } from '../../src/mail/security-notices.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { enrolTotpSignedIn, postMfaGrant, requestMfaToken } from '../support/mfa.js';
import { linkToken } from '../support/smtp-sink.js';
import { createSoftAuthenticator } from '../support/soft-authenticator.js';

const ORIGIN = 'https://auth.example.org';
const NEW_PASSWORD = 'a brand new passphrase';
const CAP = 3;

/**
 * Every change that mails its owner a security notice writes it in its own transaction
 * (`pending_notices`), never only to the in-memory mail queue: with the instance's sender stopped
 * (as if the process died right after each commit), each notice is found stored and none was
 * mailed; a new sender over the same database then mails them all.
 */
describe.each(engines)('security notices are stored with their change ($name)', ({ name }) => {
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
    // The sender "dies": what the changes below commit stays stored.
    await core().securityNotices.close();
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  const core = () => gatehouseCore(app.gatehouse);
  const mails = async () => {
    await core().lifecycle.idle();
    return readOutbox(outboxDirectory(app.gatehouse.config.dataDir), 1000);
  };
  const stored = async (to: string) =>
    (
      await core()
        .database.db.selectFrom('pending_notices')
        .select(['kind', 'recipient'])
        .where('recipient', '=', to)
        .orderBy('created_at')
        .execute()
    ).map((row) => row.kind);
  const patchMe = (token: string, payload: object) =>
    app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(token), payload });

  const written: Record<string, string[]> = {};
  const expectStored = async (to: string, kinds: string[]) => {
    expect(await stored(to)).toEqual(kinds);
    written[to] = kinds;
  };

  const passwordChangeAndReset = async () => {
    const owner = await createUser(app, { verified: true });
    const { access_token: token } = await login(app, owner.email);
    expect((await patchMe(token, { password: NEW_PASSWORD, current_password: PASSWORD })).statusCode).toBe(
      200,
    );
    await expectStored(owner.email, ['password_changed']);

    const other = await createUser(app, { verified: true });
    expect(
      (await app.inject({ method: 'POST', url: '/auth/forgot-password', payload: { email: other.email } }))
        .statusCode,
    ).toBe(202);
    const reset = (await mails()).find((mail) => mail.to === other.email && /Reset/.test(mail.subject));
    const link = linkToken(reset?.text ?? '');
    const done = await app.inject({
      method: 'POST',
      url: '/auth/reset-password',
      payload: { token: link, password: NEW_PASSWORD },
    });
    expect(done.statusCode).toBe(204);
    await expectStored(other.email, ['password_changed']);
  };

  const emailChange = async () => {
    const owner = await createUser(app, { verified: true });
    const { access_token: token } = await login(app, owner.email);
    const newEmail = `moved-${owner.id}@example.com`;
    expect((await patchMe(token, { email: newEmail, current_password: PASSWORD })).statusCode).toBe(202);
    const confirmation = (await mails()).find((mail) => mail.to === newEmail);
    const confirmed = await app.inject({
      method: 'POST',
      url: '/auth/email-change/confirm',
      headers: bearer(token),
      payload: { token: linkToken(confirmation?.text ?? '') },
    });
    expect(confirmed.statusCode).toBe(204);
    await expectStored(owner.email, ['email_change_requested', 'email_changed']);
    await expectStored(newEmail, []);
  };

  const authenticatorApp = async () => {
    const { user, token, recoveryCodes } = await enrolTotpSignedIn(app, clock());
    const mfaToken = await requestMfaToken(app, user.email);
    for (let i = 0; i < CAP; i++) await postMfaGrant(app, mfaToken, '000000');
    const removed = await app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      headers: bearer(token),
      // A recovery code: the run of wrong codes refuses the app's codes on this session now.
      payload: { code: recoveryCodes[0] },
    });
    expect(removed.statusCode).toBe(204);
    await expectStored(user.email, ['second_factor_added', 'second_factor_locked', 'second_factor_removed']);

    // A sign-in with a recovery code, and the codes replaced (red-team 2026-12s M2).
    const other = await enrolTotpSignedIn(app, clock());
    const recovered = await postMfaGrant(
      app,
      await requestMfaToken(app, other.user.email),
      other.recoveryCodes[0] ?? '',
    );
    expect(recovered.statusCode).toBe(200);
    const replaced = await app.inject({
      method: 'POST',
      url: '/users/me/mfa/recovery-codes',
      headers: bearer(other.token),
      payload: { code: other.recoveryCodes[1] },
    });
    expect(replaced.statusCode).toBe(200);
    await expectStored(other.user.email, [
      'second_factor_added',
      'recovery_code_used',
      'recovery_codes_replaced',
    ]);

    const admin = await createUser(app, { role: 'super_admin', verified: true });
    const { access_token: adminToken } = await login(app, admin.email);
    const target = await enrolTotpSignedIn(app, clock());
    const reset = await app.inject({
      method: 'DELETE',
      url: `/users/${target.user.id}/mfa`,
      headers: bearer(adminToken),
    });
    expect(reset.json()).toEqual({ removed: true });
    await expectStored(target.user.email, ['second_factor_added', 'second_factor_removed']);
  };

  const passkey = async () => {
    const owner = await createUser(app, { verified: true });
    const { access_token: token } = await login(app, owner.email);
    const authenticator = createSoftAuthenticator(ORIGIN);
    const started = await app.inject({
      method: 'POST',
      url: '/users/me/passkeys/options',
      headers: bearer(token),
    });
    const { options, passkey_token } = started.json();
    const registered = await app.inject({
      method: 'POST',
      url: '/users/me/passkeys',
      headers: bearer(token),
      payload: { passkey_token, credential: authenticator.register(options), name: 'Laptop' },
    });
    expect(registered.statusCode).toBe(201);
    // The account now holds a second factor: removing one needs a session that proved it.
    const reauth = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate/passkey/options',
      headers: bearer(token),
    });
    const challenge = reauth.json();
    const proved = await app.inject({
      method: 'POST',
      url: '/auth/reauthenticate/passkey',
      headers: bearer(token),
      payload: {
        passkey_token: challenge.passkey_token,
        credential: authenticator.authenticate(challenge.options),
      },
    });
    expect(proved.statusCode).toBe(200);
    const removed = await app.inject({
      method: 'DELETE',
      url: `/users/me/passkeys/${registered.json().id}`,
      headers: bearer(token),
    });
    expect(removed.statusCode).toBe(204);
    await expectStored(owner.email, ['second_factor_added', 'second_factor_removed']);
  };

  /** The notice outlives the account. */
  const accountDeletion = async () => {
    const owner = await createUser(app, { verified: true });
    const { access_token: token } = await login(app, owner.email);
    const deleted = await app.inject({
      method: 'DELETE',
      url: '/users/me',
      headers: bearer(token),
      payload: { current_password: PASSWORD },
    });
    expect(deleted.statusCode).toBe(204);
    await expectStored(owner.email, ['account_deleted']);
  };

  it('each change stores its notice; none is mailed from memory; a new sender mails each once', async () => {
    await passwordChangeAndReset();
    await emailChange();
    await authenticatorApp();
    await passkey();
    await accountDeletion();
    const isNotice = (subject: string) =>
      /password was changed|about to change|address was changed|new way to sign in|second factor was removed|Too many wrong|recovery code|was deleted/i.test(
        subject,
      );
    expect((await mails()).filter((mail) => isNotice(mail.subject))).toEqual([]);
    expect(new Set(Object.values(written).flat())).toEqual(new Set(NOTICE_KINDS));

    const restarted = createSecurityNotices({
      database: core().database,
      mailer: core().mailer,
      maxQueued: app.gatehouse.config.mailQueueMax,
      clock,
      scheduler: clock,
      warn: () => {},
    });
    try {
      await restarted.sweep();
      await restarted.idle();
    } finally {
      await restarted.close();
    }
    const sent = (await mails()).filter((mail) => isNotice(mail.subject));
    const expected = Object.entries(written).flatMap(([to, kinds]) => kinds.map(() => to));
    expect(sent.map((mail) => mail.to).sort()).toEqual(expected.sort());
    expect(await core().database.db.selectFrom('pending_notices').select('id').execute()).toEqual([]);
  });
});
