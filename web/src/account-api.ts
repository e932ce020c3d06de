/**
 * The account lifecycle and admin calls of the UI (issue 12): mailed-link landings, password
 * reset, the account page and the admin console. Each is one {@link api} call; shapes follow the
 * server's route schemas (`src/http/routes/*`, `src/apps/clothes/http/clothes-routes.ts`).
 */
import { type ApiResult, api, forgetCsrfToken } from './api.js';
import type { ConnectedApp } from './components/connected-apps.js';
import type { Color, Size } from './shared.js';
import type { User } from './types.js';

/** A page of a list route (`items`, `total`, `limit`, `offset`). */
export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

/** One of the caller's sessions (`GET /users/me/sessions`). */
export interface SessionView {
  id: string;
  transport: 'bearer' | 'cookie';
  current: boolean;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  user_agent: string | null;
  ip: string | null;
}

/** One audit entry (`GET /audit`). */
export interface AuditEntryView {
  id: number;
  event: string;
  actor_id: string | null;
  target_id: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown> | null;
  created_at: string;
}

/** One garment (`GET /clothes`). */
export interface Clothing {
  id: string;
  name: string;
  photo_url: string;
  size: Size;
  color: Color;
  created_at: string;
  last_modified_at: string;
}

/** Query text for a list route; empty values are left out. */
function query(params: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === '') continue;
    search.set(name, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

/** `POST /auth/forgot-password`: always 202 (the server tells nothing about the address). */
export function requestPasswordReset(email: string): Promise<ApiResult<unknown>> {
  return api('POST', '/auth/forgot-password', { email });
}

/** `POST /auth/reset-password` with the mailed token. */
export function resetPassword(token: string, password: string): Promise<ApiResult<undefined>> {
  return api('POST', '/auth/reset-password', { token, password });
}

/**
 * What a mailed link's page sends besides the token when it is not signed in to the account
 * (`VERIFICATION_NEEDS_PASSWORD`, `EMAIL_CHANGE_NEEDS_PASSWORD`): the account's password, or, for
 * a verification only, a new one that takes the account over.
 */
export type LinkPassword = { current_password: string } | { new_password: string } | Record<string, never>;

/** `POST /auth/verify` with the mailed token. */
export function verifyEmail(token: string, password: LinkPassword = {}): Promise<ApiResult<undefined>> {
  return api('POST', '/auth/verify', { token, ...password });
}

/** `POST /auth/email-change/confirm` with the token mailed to the new address. */
export function confirmEmailChange(
  token: string,
  password: { current_password: string } | Record<string, never> = {},
): Promise<ApiResult<undefined>> {
  return api('POST', '/auth/email-change/confirm', { token, ...password });
}

/** `POST /auth/verify/request`: mails a verification link to the signed-in user. */
export function requestVerification(): Promise<ApiResult<unknown>> {
  return api('POST', '/auth/verify/request');
}

/** `PATCH /users/me`: name, or password with the current one. */
export function updateProfile(change: {
  full_name?: string | null;
  password?: string;
  current_password?: string;
}): Promise<ApiResult<User>> {
  return api<User>('PATCH', '/users/me', change);
}

/** `PATCH /users/me` with `email`: 202, a confirmation goes to the new address. */
export function requestEmailChange(email: string, currentPassword: string): Promise<ApiResult<User>> {
  return api<User>('PATCH', '/users/me', { email, current_password: currentPassword });
}

/** `DELETE /users/me`. The session ends with the account. */
export async function deleteAccount(currentPassword: string): Promise<ApiResult<undefined>> {
  const result = await api<undefined>('DELETE', '/users/me', { current_password: currentPassword });
  if (result.ok) forgetCsrfToken();
  return result;
}

/** `GET /users/me/connected-apps`: the apps allowed to use this account (OAuth provider). */
export function listConnectedApps(): Promise<ApiResult<ConnectedApp[]>> {
  return api<ConnectedApp[]>('GET', '/users/me/connected-apps');
}

/** `DELETE /users/me/connected-apps/{client_id}`: forgets the consent and ends the app's sessions. */
export function disconnectApp(clientId: string): Promise<ApiResult<undefined>> {
  return api<undefined>('DELETE', `/users/me/connected-apps/${encodeURIComponent(clientId)}`);
}

/** `GET /users/me/sessions`. */
export function listSessions(): Promise<ApiResult<SessionView[]>> {
  return api<SessionView[]>('GET', '/users/me/sessions');
}

/** `DELETE /users/me/sessions/{id}`. */
export function endSession(id: string): Promise<ApiResult<undefined>> {
  return api('DELETE', `/users/me/sessions/${encodeURIComponent(id)}`);
}

/** `POST /auth/logout-all`: every session of the account ends, this one too. */
export async function logOutEverywhere(): Promise<ApiResult<undefined>> {
  const result = await api<undefined>('POST', '/auth/logout-all');
  forgetCsrfToken();
  return result;
}

/** `GET /users` (admins). */
export function listUsers(filter: {
  email_prefix?: string;
  role?: string;
  offset?: number;
  limit?: number;
}): Promise<ApiResult<Page<User>>> {
  return api<Page<User>>('GET', `/users${query(filter)}`);
}

/** `PATCH /users/{id}` (admins): role or active flag. */
export function updateUser(
  id: string,
  change: { role?: string; is_active?: boolean },
): Promise<ApiResult<User>> {
  return api<User>('PATCH', `/users/${encodeURIComponent(id)}`, change);
}

/** `POST /users/{id}/verification` (admins). */
export function resendVerification(id: string): Promise<ApiResult<unknown>> {
  return api('POST', `/users/${encodeURIComponent(id)}/verification`);
}

/** `POST /users/{id}/password-reset` (admins). */
export function sendPasswordReset(id: string): Promise<ApiResult<unknown>> {
  return api('POST', `/users/${encodeURIComponent(id)}/password-reset`);
}

/** `GET /audit` (holders of `audit:read`). */
export function listAudit(filter: {
  event?: string;
  actor_id?: string;
  target_id?: string;
  since?: string;
  until?: string;
  offset?: number;
  limit?: number;
}): Promise<ApiResult<Page<AuditEntryView>>> {
  return api<Page<AuditEntryView>>('GET', `/audit${query(filter)}`);
}

/** `GET /clothes`. */
export function listClothes(filter: {
  size?: string;
  color?: string;
  offset?: number;
  limit?: number;
}): Promise<ApiResult<Page<Clothing>>> {
  return api<Page<Clothing>>('GET', `/clothes${query(filter)}`);
}

/** `POST /clothes` (admins). */
export function createClothing(input: {
  name: string;
  photo_url: string;
  size: Size;
  color: Color;
}): Promise<ApiResult<Clothing>> {
  return api<Clothing>('POST', '/clothes', input);
}

/** `DELETE /clothes/{id}` (admins). */
export function deleteClothing(id: string): Promise<ApiResult<undefined>> {
  return api('DELETE', `/clothes/${encodeURIComponent(id)}`);
}
