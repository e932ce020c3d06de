import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { createMfaStore } from '../../src/mfa/storage/mfa-store.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { bearer } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { enrolTotp, postMfaGrant, requestMfaToken } from '../support/mfa.js';

/** MFA_MAX_CONSECUTIVE_FAILURES in these tests. */
const CAP = 3;
const PER_TOKEN = 4;
const PER_ACCOUNT = 6;
const PER_SESSION = 5;
const WRONG_RECOVERY = 'aaaa-bbbb-cccc-dddd';

/**
 * Recovery codes are still checked at MFA_MAX_CONSECUTIVE_FAILURES (80 random bits: the owner's
 * way back). Wrong ones there must still be bounded: by the token's, the account's and the
 * session's windowed lanes, which are set small here, never given back as a refusal at the cap is.
 */
describe.each(engines)(
  'wrong recovery codes at the MFA cap are counted in the windowed lanes ($name)',
  ({ name }) => {
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
          publicUrl: 'https://auth.example.org',
          mfaMaxConsecutiveFailures: CAP,
          mfaMaxFailuresPerToken: PER_TOKEN,
          mfaMaxFailuresPerAccount: PER_ACCOUNT,
          loginMaxFailuresPerDevice: PER_SESSION,
        },
        { clock, scheduler: clock },
      );
    });
    afterAll(async () => {
      await app?.close();
      await drop();
    });

    const core = () => gatehouseCore(app.gatehouse);
    const runOf = async (userId: string) =>
      (await createMfaStore(core().database.db).findTotp(userId))?.consecutiveFailures;
    const atTheCap = (userId: string) =>
      core()
        .database.db.updateTable('mfa_totp')
        .set({ consecutive_failures: CAP })
        .where('user_id', '=', userId)
        .execute();
    const answer = (response: LightMyRequestResponse) => {
      const body = response.json<{ error?: string; code?: string }>();
      return { status: response.statusCode, error: body.error, code: body.code };
    };

    it('at login: the token dies after its tries, then the account waits, and a right recovery code waits with it', async () => {
      const { user, recoveryCodes } = await enrolTotp(app, clock());
      await atTheCap(user.id);
      const token = await requestMfaToken(app, user.email);
      for (let i = 0; i < PER_TOKEN; i++) {
        expect(answer(await postMfaGrant(app, token, WRONG_RECOVERY)), `try ${i}`).toMatchObject({
          status: 400,
          error: 'invalid_grant',
          code: undefined,
        });
      }
      // The token's own tries are spent: it is dead.
      expect(answer(await postMfaGrant(app, token, WRONG_RECOVERY)).status).toBe(400);
      const second = await requestMfaToken(app, user.email);
      for (let i = PER_TOKEN; i < PER_ACCOUNT; i++) {
        expect(answer(await postMfaGrant(app, second, WRONG_RECOVERY)).status, `try ${i}`).toBe(400);
      }
      // The account's window is full: wait, whatever the code (the owner's right one too).
      expect(answer(await postMfaGrant(app, second, WRONG_RECOVERY)).status).toBe(429);
      expect(
        answer(await postMfaGrant(app, await requestMfaToken(app, user.email), String(recoveryCodes[0])))
          .status,
      ).toBe(429);
      expect(await runOf(user.id)).toBe(CAP);
      // Once the window has passed, the right recovery code signs in and ends the run.
      clock.advance(16 * 60_000);
      const signedIn = await postMfaGrant(
        app,
        await requestMfaToken(app, user.email),
        String(recoveryCodes[0]),
      );
      expect(signedIn.statusCode, signedIn.body).toBe(200);
      expect(await runOf(user.id)).toBe(0);
    });

    it('in a session: its own lane ends the guessing, and an authenticator-app code is refused as locked', async () => {
      const { user, secret } = await enrolTotp(app, clock());
      clock.advance(30_000);
      const signedIn = await postMfaGrant(
        app,
        await requestMfaToken(app, user.email),
        generateTotpCode(secret, clock()),
      );
      const { access_token: token } = signedIn.json<{ access_token: string }>();
      await atTheCap(user.id);
      const disable = (code: string) =>
        app.inject({
          method: 'DELETE',
          url: '/users/me/mfa/totp',
          headers: bearer(token),
          payload: { code },
        });
      for (let i = 0; i < PER_SESSION; i++) {
        expect(answer(await disable(WRONG_RECOVERY)), `try ${i}`).toMatchObject({
          status: 400,
          code: 'INVALID_OTP',
        });
      }
      expect(answer(await disable(WRONG_RECOVERY)).status).toBe(429);
      expect(await runOf(user.id)).toBe(CAP);
      expect(await core().mfa.status(user.id)).toMatchObject({ totp: 'on' });
    });
  },
);
