import { describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { bearer, createUser, login } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { engines } from '../support/databases.js';
import { holdNextCall, someoneWaitsOnALock } from '../support/lock-waits.js';
import { createSoftAuthenticator, type PasskeyOptions } from '../support/soft-authenticator.js';
import { useTestServer } from '../support/test-server.js';

const ORIGIN = 'https://auth.example.org';

/**
 * Red-team 2026-12u F1: the admin's MFA reset (`DELETE /users/{id}/mfa`) must leave the account
 * with no second factor and every session ended. Its transaction took no lock on the account's
 * row, and the sessions ended only after it committed, so a passkey registration from a session
 * the reset was meant to end (a thief who signed in with a copy of the owner's passkey, no
 * password) that landed in between survived the reset, and the thief signed in with it after.
 * The reset now locks the account's row first and ends the sessions in its own transaction.
 */
describe.each(engines)('admin MFA reset against a passkey registration ($name)', ({ name }) => {
  const app = useTestServer(name, { publicUrl: ORIGIN });

  const core = () => gatehouseCore(app().gatehouse);

  /**
   * An owner with one passkey; a thief signed in with a copy of it (passwordless, so its session
   * proved `mfa`) holding registration options for a passkey of its own; an admin who may reset.
   */
  const scene = async () => {
    const owner = await createUser(app(), { verified: true });
    const { access_token: ownerToken } = await login(app(), owner.email);
    const ownerKey = createSoftAuthenticator(ORIGIN);
    const options = (
      await app().inject({ method: 'POST', url: '/users/me/passkeys/options', headers: bearer(ownerToken) })
    ).json<PasskeyOptions>();
    const registered = await app().inject({
      method: 'POST',
      url: '/users/me/passkeys',
      headers: bearer(ownerToken),
      payload: { passkey_token: options.passkey_token, credential: ownerKey.register(options.options) },
    });
    expect(registered.statusCode, registered.body).toBe(201);

    const thief = new Browser(app());
    const signIn = (await thief.request('POST', '/auth/passkey/options')).json<PasskeyOptions>();
    const signedIn = await thief.request('POST', '/auth/passkey/login', {
      headers: { 'x-csrf-token': await thief.csrf() },
      payload: { passkey_token: signIn.passkey_token, credential: ownerKey.authenticate(signIn.options) },
    });
    expect(signedIn.statusCode, signedIn.body).toBeLessThan(300);
    const thiefKey = createSoftAuthenticator(ORIGIN);
    const csrf = await thief.csrf();
    const thiefOptions = (
      await thief.request('POST', '/users/me/passkeys/options', { headers: { 'x-csrf-token': csrf } })
    ).json<PasskeyOptions>();
    expect(thiefOptions.passkey_token).toBeDefined();
    const plant = () =>
      thief.request('POST', '/users/me/passkeys', {
        headers: { 'x-csrf-token': csrf },
        payload: {
          passkey_token: thiefOptions.passkey_token,
          credential: thiefKey.register(thiefOptions.options),
        },
      });

    const admin = await createUser(app(), { role: 'admin' });
    const { access_token: adminToken } = await login(app(), admin.email);
    const reset = () =>
      app().inject({ method: 'DELETE', url: `/users/${owner.id}/mfa`, headers: bearer(adminToken) });

    /** Whether the thief's own passkey signs in after the reset. */
    const thiefSignsIn = async () => {
      const later = new Browser(app());
      const again = (await later.request('POST', '/auth/passkey/options')).json<PasskeyOptions>();
      const answer = await later.request('POST', '/auth/passkey/login', {
        headers: { 'x-csrf-token': await later.csrf() },
        payload: { passkey_token: again.passkey_token, credential: thiefKey.authenticate(again.options) },
      });
      return answer.statusCode < 300;
    };
    return { owner, thief, plant, reset, thiefSignsIn };
  };

  it('a passkey registered between the reset’s commit and the end of the sessions does not survive the reset', async () => {
    const { owner, plant, reset, thiefSignsIn } = await scene();
    // Held after the reset's transaction committed (where MfaAdministration ended the sessions before).
    const resetCall = holdNextCall(core().mfa, 'reset');
    let planted: Awaited<ReturnType<typeof plant>> | undefined;
    try {
      const resetting = reset();
      await resetCall.reached;
      planted = await plant();
      resetCall.release();
      const done = await resetting;
      expect(done.statusCode, done.body).toBe(200);
    } finally {
      resetCall.restore();
    }
    // The reset answered 200 and says it ended every session: the account must hold no factor.
    expect
      .soft(
        { planted: planted?.statusCode, passkeys: (await core().passkeys.list(owner.id)).length },
        'the thief registered a passkey after the reset removed them, and it is still there',
      )
      .toEqual({ planted: planted?.statusCode, passkeys: 0 });
    expect(await thiefSignsIn(), 'the thief signs in with its own passkey after the reset').toBe(false);
  });

  it('a passkey registration in its transaction while the reset runs does not survive the reset', async () => {
    const { owner, plant, reset, thiefSignsIn } = await scene();
    // Held inside the registration's transaction: its passkey inserted, not yet committed.
    const recheck = holdNextCall(core().stepUp, 'recheckFactorAddition');
    let planted: Awaited<ReturnType<typeof plant>> | undefined;
    try {
      const planting = plant();
      await recheck.reached;
      const resetting = reset();
      // The reset waits for the account's row (SQLite: for the one writer). Before, on PostgreSQL,
      // its deletes did not see the uncommitted passkey and did not wait.
      await someoneWaitsOnALock(core().database, resetting);
      recheck.release();
      planted = await planting;
      const done = await resetting;
      expect(done.statusCode, done.body).toBe(200);
    } finally {
      recheck.restore();
    }
    expect
      .soft(
        { planted: planted?.statusCode, passkeys: (await core().passkeys.list(owner.id)).length },
        'the thief’s passkey, inserted before the reset and committed after, is still there',
      )
      .toEqual({ planted: planted?.statusCode, passkeys: 0 });
    expect(await thiefSignsIn(), 'the thief signs in with its own passkey after the reset').toBe(false);
  });
});
