import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { MFA_OTP_GRANT_TYPE } from '../../src/sessions/token-grants.js';
import { bearer, createUser, login, PASSWORD, postToken } from './accounts.js';

/**
 * A new account (address verified: a second factor needs it) with a confirmed authenticator (its confirming code used up the step at `now`),
 * its 10 recovery codes, and the bearer token of the session that enrolled it (still live).
 */
export async function enrolTotpSignedIn(app: FastifyInstance, now: number) {
  const user = await createUser(app, { verified: true });
  const { access_token: token } = await login(app, user.email);
  return { user, token, ...(await enrolTotpAs(app, token, now)) };
}

/**
 * Sets up and confirms an authenticator app as the holder of bearer `token` (its first code that
 * of `now`); answers its secret and 10 recovery codes.
 */
export async function enrolTotpAs(app: FastifyInstance, token: string, now: number) {
  const started = await app.inject({ method: 'POST', url: '/users/me/mfa/totp', headers: bearer(token) });
  expect(started.statusCode).toBe(201);
  const { secret } = started.json<{ secret: string }>();
  const confirmed = await app.inject({
    method: 'POST',
    url: '/users/me/mfa/totp/confirm',
    headers: bearer(token),
    payload: { code: generateTotpCode(secret, now) },
  });
  expect(confirmed.statusCode).toBe(200);
  const recoveryCodes = confirmed.json<{ recovery_codes: string[] }>().recovery_codes;
  return { secret, recoveryCodes };
}

/**
 * As {@link enrolTotpSignedIn}, but the bearer session that enrolled it is ended, so the account's
 * live sessions afterwards are those the test starts.
 */
export async function enrolTotp(app: FastifyInstance, now: number) {
  const { user, secret, recoveryCodes } = await enrolTotpSignedIn(app, now);
  await gatehouseCore(app.gatehouse).sessions.revokeUserSessions(user.id);
  return { user, secret, recoveryCodes };
}

/** The password grant's `mfa_token` for an account with a second factor. */
export async function requestMfaToken(app: FastifyInstance, email: string): Promise<string> {
  const response = await postToken(app, { grant_type: 'password', username: email, password: PASSWORD });
  expect(response.json().error).toBe('mfa_required');
  return response.json<{ mfa_token: string }>().mfa_token;
}

/** POST /token with the mfa-otp grant. */
export function postMfaGrant(app: FastifyInstance, mfaToken: string, otp: string) {
  return postToken(app, { grant_type: MFA_OTP_GRANT_TYPE, mfa_token: mfaToken, otp });
}
