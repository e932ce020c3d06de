import { describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { bearer, createUser, login } from '../support/accounts.js';
import { engines } from '../support/databases.js';
import { holdNextCall, someoneWaitsOnALock } from '../support/lock-waits.js';
import { createSoftAuthenticator, type PasskeyOptions } from '../support/soft-authenticator.js';
import { useTestServer } from '../support/test-server.js';

const ORIGIN = 'https://auth.example.org';

/**
 * Red team 2026-12t S2: adding a second factor needs a session that proved one once the account
 * holds one (`StepUpPolicy.requireFactorChangeAuthentication`), but that was checked before the
 * write's transaction. Two additions racing from a password-only session (an authenticator's
 * confirmation and a passkey's registration, or two passkeys) each passed the check on an account
 * with no factor yet, and each added one: 17 of 153 rounds on PostgreSQL in the stress run. The
 * write now checks again under the account's row lock, which both additions take in a mode that
 * conflicts with itself.
 */
describe.each(engines)('factor additions racing from a password-only session ($name)', ({ name }) => {
  const app = useTestServer(name, { publicUrl: ORIGIN });

  /** A verified account with one password-only session, and an authenticator enrolment started. */
  const account = async () => {
    const user = await createUser(app(), { verified: true });
    const { access_token: token } = await login(app(), user.email);
    const started = await app().inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(token) });
    expect(started.statusCode, started.body).toBe(201);
    const { secret } = started.json<{ secret: string }>();
    const passkeyOptions = await app().inject({
      method: 'POST',
      url: '/users/me/passkeys/options',
      headers: bearer(token),
    });
    expect(passkeyOptions.statusCode, passkeyOptions.body).toBe(200);
    const options = passkeyOptions.json<PasskeyOptions>();
    const authenticator = createSoftAuthenticator(ORIGIN);
    return {
      user,
      confirm: () =>
        app().inject({
          method: 'POST',
          url: '/users/me/mfa/totp/confirm',
          headers: bearer(token),
          payload: { code: generateTotpCode(secret, Date.now()) },
        }),
      register: () =>
        app().inject({
          method: 'POST',
          url: '/users/me/passkeys',
          headers: bearer(token),
          payload: {
            passkey_token: options.passkey_token,
            credential: authenticator.register(options.options),
          },
        }),
    };
  };

  const factors = async (userId: string) => {
    const core = gatehouseCore(app().gatehouse);
    return { totp: await core.mfa.isEnrolled(userId), passkeys: (await core.passkeys.list(userId)).length };
  };

  it.each([
    {
      held: 'register',
      meanwhile: 'confirm',
      meanwhileStatus: 200,
      left: { totp: true, passkeys: 0 },
      title:
        'an authenticator confirmed while a passkey registration is past its check: the registration is refused',
    },
    {
      held: 'confirm',
      meanwhile: 'register',
      meanwhileStatus: 201,
      left: { totp: false, passkeys: 1 },
      title: 'a passkey registered while the confirmation is past its check: the confirmation is refused',
    },
  ] as const)('$title', async ({ held, meanwhile, meanwhileStatus, left }) => {
    const requests = await account();
    const check = holdNextCall(gatehouseCore(app().gatehouse).stepUp, 'requireFactorChangeAuthentication');
    try {
      const pending = requests[held]();
      await check.reached;
      const done = await requests[meanwhile]();
      expect(done.statusCode, done.body).toBe(meanwhileStatus);
      check.release();
      const refused = await pending;
      expect(refused.statusCode, refused.body).toBe(401);
      expect(refused.json()).toMatchObject({ code: 'STEP_UP_REQUIRED' });
    } finally {
      check.restore();
    }
    expect(await factors(requests.user.id)).toEqual(left);
  });

  it("a passkey registered while the authenticator's confirmation holds the account waits for it, and is refused", async () => {
    const { user, confirm, register } = await account();
    // Held inside the confirmation's transaction, after its own check, holding the account's lock.
    const recheck = holdNextCall(gatehouseCore(app().gatehouse).stepUp, 'recheckFactorAddition');
    try {
      const confirming = confirm();
      await recheck.reached;
      const registering = register();
      // PostgreSQL: the registration's insert waits on the account's row lock. (Without the
      // confirmation taking it FOR NO KEY UPDATE, the registration did not wait, saw no
      // authenticator yet, and both committed.) SQLite: it queues behind the open transaction.
      await someoneWaitsOnALock(gatehouseCore(app().gatehouse).database, registering);
      recheck.release();
      const confirmed = await confirming;
      expect(confirmed.statusCode, confirmed.body).toBe(200);
      const registered = await registering;
      expect(registered.statusCode, registered.body).toBe(401);
      expect(registered.json()).toMatchObject({ code: 'STEP_UP_REQUIRED' });
    } finally {
      recheck.restore();
    }
    expect(await factors(user.id)).toEqual({ totp: true, passkeys: 0 });
  });
});
