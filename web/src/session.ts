/**
 * Account actions of the browser session: who is signed in, sign up, log in, log out. Each one
 * that changes the session also drops the CSRF token bound to the old one.
 */
import { type ApiResult, api, forgetCsrfToken, refreshCsrfToken } from './api.js';
import { toProblem } from './problem.js';
import type { PasswordPolicy, User } from './types.js';

/** The signed-in user, or null (401 is an answer here, not an error). */
export async function loadCurrentUser(): Promise<ApiResult<User | null>> {
  const result = await api<User>('GET', '/users/me');
  if (!result.ok && result.problem.status === 401) return { ok: true, status: 401, data: null };
  return result;
}

/** Creates an account. */
export function register(input: {
  email: string;
  password: string;
  full_name?: string;
}): Promise<ApiResult<User>> {
  return api<User>('POST', '/auth/register', input);
}

/**
 * Logs in with a session cookie. Fetches a fresh CSRF token first: the login itself is CSRF
 * protected, and a token left over from an expired session would be refused.
 */
export async function logIn(email: string, password: string): Promise<ApiResult<undefined>> {
  const token = await refreshCsrfToken();
  if (!token.ok) return token;
  const result = await api<undefined>('POST', '/auth/login', { email, password });
  if (result.ok) forgetCsrfToken();
  return result;
}

/** Ends the session. The CSRF token is dropped even on failure, since the session may be gone. */
export async function logOut(): Promise<ApiResult<undefined>> {
  const result = await api<undefined>('POST', '/auth/logout');
  forgetCsrfToken();
  return result;
}

/**
 * The server's password lengths (`GET /auth/password-policy`). An answer of another shape is a
 * problem, not a policy: the form then leaves the check to the server rather than guess.
 */
export async function loadPasswordPolicy(): Promise<ApiResult<PasswordPolicy>> {
  const result = await api<unknown>('GET', '/auth/password-policy');
  if (!result.ok) return result;
  const policy = asPasswordPolicy(result.data);
  if (policy === undefined) {
    return {
      ok: false,
      problem: toProblem(500, { detail: 'The server sent an unexpected password policy.' }),
    };
  }
  return { ok: true, status: result.status, data: policy };
}

/** `data` as a {@link PasswordPolicy}, or undefined when it is not one. */
export function asPasswordPolicy(data: unknown): PasswordPolicy | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const { min_length: min, max_length: max } = data as Record<string, unknown>;
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max)) return undefined;
  const policy = { min_length: min as number, max_length: max as number };
  return policy.min_length > 0 && policy.min_length <= policy.max_length ? policy : undefined;
}
