import { describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { bearer, createUser, login } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { engines } from '../support/databases.js';
import { gate } from '../support/lock-waits.js';
import { createSoftAuthenticator, type PasskeyOptions } from '../support/soft-authenticator.js';
import { useTestServer } from '../support/test-server.js';

const ORIGIN = 'https://auth.example.org';

/**
 * Race review 2026-12-06 P2: a passkey sign-in recorded the passkey's use (a compare-and-set on its
 * counter), then read the account, whose credentials version the session check compares. A removal
 * of the passkey (which ends the other sessions and moves the version) that committed between the
 * two went unseen: the thief signing in with a copy of the passkey got a session after the owner
 * removed it (what red-team 2026-12s M1 meant to end).
 */
describe.each(engines)('passkey removal against a passkey sign-in in flight ($name)', ({ name }) => {
  const app = useTestServer(name, { publicUrl: ORIGIN });

  it('a sign-in whose signature was checked before the removal opens no session after it', async () => {
    const user = await createUser(app(), { verified: true });
    const { access_token: token } = await login(app(), user.email);
    const authenticator = createSoftAuthenticator(ORIGIN);
    const started = (
      await app().inject({ method: 'POST', url: '/users/me/passkeys/options', headers: bearer(token) })
    ).json<PasskeyOptions>();
    const registered = await app().inject({
      method: 'POST',
      url: '/users/me/passkeys',
      headers: bearer(token),
      payload: { passkey_token: started.passkey_token, credential: authenticator.register(started.options) },
    });
    expect(registered.statusCode).toBe(201);
    const passkey = registered.json<{ id: string }>();
    // The owner's step-up, which removing a passkey asks for.
    const reauth = (
      await app().inject({
        method: 'POST',
        url: '/auth/reauthenticate/passkey/options',
        headers: bearer(token),
      })
    ).json<PasskeyOptions>();
    const steppedUp = await app().inject({
      method: 'POST',
      url: '/auth/reauthenticate/passkey',
      headers: bearer(token),
      payload: {
        passkey_token: reauth.passkey_token,
        credential: authenticator.authenticate(reauth.options),
      },
    });
    expect(steppedUp.statusCode).toBe(200);

    // The thief's sign-in is held where it reads the account: before the use is recorded now,
    // after it before the fix. Either way the removal commits while it waits.
    const users = gatehouseCore(app().gatehouse).users;
    const findUserById = users.findUserById;
    const reached = gate();
    const held = gate();
    let armed = true;
    users.findUserById = async (id) => {
      if (armed && id === user.id) {
        armed = false;
        reached.open();
        await held.opened;
      }
      return findUserById.call(users, id);
    };
    const thief = new Browser(app());
    try {
      const options = (await thief.request('POST', '/auth/passkey/options')).json<PasskeyOptions>();
      const signingIn = thief.request('POST', '/auth/passkey/login', {
        headers: { 'x-csrf-token': await thief.csrf() },
        payload: {
          passkey_token: options.passkey_token,
          credential: authenticator.authenticate(options.options),
        },
      });
      await reached.opened;
      users.findUserById = findUserById;
      const removed = await app().inject({
        method: 'DELETE',
        url: `/users/me/passkeys/${passkey.id}`,
        headers: bearer(token),
      });
      expect(removed.statusCode, removed.body).toBe(204);
      held.open();
      const answer = await signingIn;
      expect(answer.statusCode, answer.body).not.toBe(204);
    } finally {
      users.findUserById = findUserById;
      held.open();
    }
    expect((await thief.request('GET', '/users/me')).statusCode).toBe(401);
  });
});
