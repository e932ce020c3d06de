import { describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { bearer, createUser, login } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { engines } from '../support/databases.js';
import { gate } from '../support/lock-waits.js';
import { createSoftAuthenticator, type PasskeyOptions } from '../support/soft-authenticator.js';
import { useTestServer } from '../support/test-server.js';

const ORIGIN = 'https://auth.example.org';

/**
 * The review of red-team 2026-12t P1 found its flaw in second factors too: a passkey registration
 * or an authenticator's confirmation checked the session (the step-up) and then wrote in a later
 * transaction that never looked again. A thief whose session the owner ended with "log out
 * everywhere" kept a passkey (a way in without the password) or an authenticator (which a password
 * reset leaves in place, keeping the owner out). `assertSessionLive` re-reads the session under the
 * account's lock in each such write.
 */
describe.each(engines)(
  'a session-authorized factor change straddling "log out everywhere" ($name)',
  ({ name }) => {
    const app = useTestServer(name, { publicUrl: ORIGIN });

    /** Runs `request` held just after its step-up check while the owner logs out everywhere. */
    const straddling = async (
      ownerToken: string,
      request: () => Promise<{ statusCode: number; body: string }>,
    ) => {
      const stepUp = gatehouseCore(app().gatehouse).stepUp;
      const original = stepUp.requireFactorChangeAuthentication;
      const reached = gate();
      const held = gate();
      let armed = true;
      stepUp.requireFactorChangeAuthentication = async (sessionId) => {
        const checked = await original.call(stepUp, sessionId);
        if (armed) {
          armed = false;
          reached.open();
          await held.opened;
        }
        return checked;
      };
      try {
        const pending = request();
        await reached.opened;
        stepUp.requireFactorChangeAuthentication = original;
        const out = await app().inject({
          method: 'POST',
          url: '/auth/logout-all',
          headers: bearer(ownerToken),
        });
        expect(out.statusCode, out.body).toBe(204);
        held.open();
        return await pending;
      } finally {
        stepUp.requireFactorChangeAuthentication = original;
        held.open();
      }
    };

    it('a passkey registration writes no passkey; the thief cannot sign in with it', async () => {
      const user = await createUser(app(), { verified: true });
      const { access_token: ownerToken } = await login(app(), user.email);
      const { access_token: thiefToken } = await login(app(), user.email);
      const authenticator = createSoftAuthenticator(ORIGIN);
      const started = (
        await app().inject({ method: 'POST', url: '/users/me/passkeys/options', headers: bearer(thiefToken) })
      ).json<PasskeyOptions>();
      const answer = await straddling(ownerToken, () =>
        app().inject({
          method: 'POST',
          url: '/users/me/passkeys',
          headers: bearer(thiefToken),
          payload: {
            passkey_token: started.passkey_token,
            credential: authenticator.register(started.options),
          },
        }),
      );
      expect(answer.statusCode, answer.body).toBe(401);
      const thief = new Browser(app());
      const options = (await thief.request('POST', '/auth/passkey/options')).json<PasskeyOptions>();
      const signedIn = await thief.request('POST', '/auth/passkey/login', {
        headers: { 'x-csrf-token': await thief.csrf() },
        payload: {
          passkey_token: options.passkey_token,
          credential: authenticator.authenticate(options.options),
        },
      });
      expect(signedIn.statusCode, signedIn.body).not.toBe(204);
    });

    it("an authenticator's confirmation turns nothing on", async () => {
      const user = await createUser(app(), { verified: true });
      const { access_token: ownerToken } = await login(app(), user.email);
      const { access_token: thiefToken } = await login(app(), user.email);
      const setUp = await app().inject({
        method: 'POST',
        url: '/users/me/mfa/totp',
        headers: bearer(thiefToken),
      });
      expect(setUp.statusCode).toBe(201);
      const { secret } = setUp.json<{ secret: string }>();
      const answer = await straddling(ownerToken, () =>
        app().inject({
          method: 'POST',
          url: '/users/me/mfa/totp/confirm',
          headers: bearer(thiefToken),
          payload: { code: generateTotpCode(secret, Date.now()) },
        }),
      );
      expect(answer.statusCode, answer.body).toBe(401);
      expect(await gatehouseCore(app().gatehouse).mfa.isEnrolled(user.id)).toBe(false);
    });
  },
);
