/**
 * The account's second factors over the API: TOTP, recovery codes, passkeys, re-authentication and
 * the passkey sign-in. WebAuthn ceremonies run through `@simplewebauthn/browser`, which turns the
 * server's JSON options into `navigator.credentials` calls and the answers back into JSON.
 */
import {
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  startAuthentication,
  startRegistration,
} from '@simplewebauthn/browser';
import { type ApiResult, api, forgetCsrfToken, refreshCsrfToken } from './api.js';
import { toProblem } from './problem.js';

/** `GET /users/me/mfa`. */
export interface MfaStatus {
  totp: 'off' | 'pending' | 'on';
  recovery_codes_left: number;
  passkeys: number;
}

/** `GET /users/me/passkeys` items. */
export interface Passkey {
  id: string;
  name: string;
  device_type: 'singleDevice' | 'multiDevice';
  backed_up: boolean;
  created_at: string;
  last_used_at: string | null;
}

interface Options<T> {
  options: T;
  passkey_token: string;
}

/** Runs a browser WebAuthn call; a refusal (the user cancelled, no authenticator) becomes a problem. */
async function ceremony<T>(run: () => Promise<T>): Promise<ApiResult<T>> {
  try {
    return { ok: true, status: 200, data: await run() };
  } catch (error) {
    const name = error instanceof Error ? error.name : '';
    const detail =
      name === 'NotAllowedError'
        ? 'The passkey prompt was cancelled or timed out.'
        : 'This browser could not use a passkey here.';
    return { ok: false, problem: toProblem(400, { detail, code: 'PASSKEY_CANCELLED' }) };
  }
}

export function loadMfaStatus(): Promise<ApiResult<MfaStatus>> {
  return api<MfaStatus>('GET', '/users/me/mfa');
}

export function startTotp(): Promise<ApiResult<{ secret: string; otpauth_uri: string }>> {
  return api('POST', '/users/me/mfa/totp');
}

export function confirmTotp(code: string): Promise<ApiResult<{ recovery_codes: string[] }>> {
  return api('POST', '/users/me/mfa/totp/confirm', { code });
}

export function disableTotp(code: string): Promise<ApiResult<undefined>> {
  return api('DELETE', '/users/me/mfa/totp', { code });
}

export function regenerateRecoveryCodes(code: string): Promise<ApiResult<{ recovery_codes: string[] }>> {
  return api('POST', '/users/me/mfa/recovery-codes', { code });
}

export function listPasskeys(): Promise<ApiResult<Passkey[]>> {
  return api<Passkey[]>('GET', '/users/me/passkeys');
}

export function removePasskey(id: string): Promise<ApiResult<undefined>> {
  return api('DELETE', `/users/me/passkeys/${encodeURIComponent(id)}`);
}

/** Registers a passkey: options, the browser's prompt, then the answer. */
export async function addPasskey(): Promise<ApiResult<Passkey>> {
  const started = await api<Options<PublicKeyCredentialCreationOptionsJSON>>(
    'POST',
    '/users/me/passkeys/options',
  );
  if (!started.ok) return started;
  const answer = await ceremony(() => startRegistration({ optionsJSON: started.data.options }));
  if (!answer.ok) return answer;
  return api<Passkey>('POST', '/users/me/passkeys', {
    passkey_token: started.data.passkey_token,
    credential: answer.data,
  });
}

/** `POST /auth/reauthenticate` with the password and, for accounts with a second factor, a code. */
export function reauthenticate(
  currentPassword: string,
  otp: string | undefined,
): Promise<ApiResult<unknown>> {
  return api('POST', '/auth/reauthenticate', {
    current_password: currentPassword,
    ...(otp === undefined || otp === '' ? {} : { otp }),
  });
}

/** Re-authenticates this session with one of the account's passkeys. */
export async function reauthenticateWithPasskey(): Promise<ApiResult<unknown>> {
  const started = await api<Options<PublicKeyCredentialRequestOptionsJSON>>(
    'POST',
    '/auth/reauthenticate/passkey/options',
  );
  if (!started.ok) return started;
  const answer = await ceremony(() => startAuthentication({ optionsJSON: started.data.options }));
  if (!answer.ok) return answer;
  return api('POST', '/auth/reauthenticate/passkey', {
    passkey_token: started.data.passkey_token,
    credential: answer.data,
  });
}

/** Signs in with a passkey and no password (the browser offers the passkeys it holds for this site). */
export async function logInWithPasskey(): Promise<ApiResult<undefined>> {
  const token = await refreshCsrfToken();
  if (!token.ok) return token;
  const started = await api<Options<PublicKeyCredentialRequestOptionsJSON>>('POST', '/auth/passkey/options');
  if (!started.ok) return started;
  const answer = await ceremony(() => startAuthentication({ optionsJSON: started.data.options }));
  if (!answer.ok) return answer;
  const result = await api<undefined>('POST', '/auth/passkey/login', {
    passkey_token: started.data.passkey_token,
    credential: answer.data,
  });
  if (result.ok) forgetCsrfToken();
  return result;
}

/** The second step of a sign-in to an account with an authenticator app. */
export async function completeLogin(mfaToken: string, otp: string): Promise<ApiResult<undefined>> {
  const result = await api<undefined>('POST', '/auth/login/mfa', { mfa_token: mfaToken, otp });
  if (result.ok) forgetCsrfToken();
  return result;
}
