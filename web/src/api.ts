/**
 * The one place the UI talks HTTP: same-origin `fetch` with the session cookie, JSON in and out,
 * CSRF headers on unsafe methods, and every failure turned into a {@link Problem} value (never a
 * thrown error), so pages only ever branch on `result.ok`.
 */
import { networkProblem, type Problem, toProblem } from './problem.js';

/** Outcome of an API call. */
export type ApiResult<T> = { ok: true; status: number; data: T } | { ok: false; problem: Problem };

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

const UNSAFE: ReadonlySet<Method> = new Set(['POST', 'PATCH', 'DELETE']);

/** CSRF codes after which a fresh token is fetched and the request retried once. */
const CSRF_RETRY_CODES = new Set(['CSRF_TOKEN_MISSING', 'CSRF_TOKEN_INVALID']);

/**
 * Refused before anything happened because the browser sent two different room cookies of one name
 * (one planted by another site under this domain, red-team G2); the refusal asked the browser to
 * drop the planted copies, so the same call is retried once.
 */
const AMBIGUOUS_COOKIE = 'AMBIGUOUS_COOKIE';

let csrfToken: string | undefined;
let onUnauthenticated: (() => void) | undefined;

/**
 * Registers what runs when a call is refused for want of a session (401 `UNAUTHENTICATED`): the
 * session ended elsewhere (signed out in another tab, expired, revoked) while this page still
 * showed someone signed in, and every action there failed with the API's advice to send a bearer
 * token (web review 2026-12-06 W1). A room's routes answer the same code to someone without a
 * seat, so the listener checks the account session before it acts.
 */
export function whenUnauthenticated(listener: () => void): void {
  onUnauthenticated = listener;
}

/**
 * Fetches a CSRF token (`GET /auth/csrf`) and remembers it. The token is bound to the browser's
 * session, so this must run again after login and logout; {@link forgetCsrfToken} makes the next
 * unsafe request do so.
 */
export async function refreshCsrfToken(): Promise<ApiResult<string>> {
  const result = await send<{ csrf_token?: unknown }>('GET', '/auth/csrf');
  if (!result.ok) return result;
  const token = result.data.csrf_token;
  if (typeof token !== 'string' || token === '') {
    return { ok: false, problem: toProblem(500, { detail: 'The server sent no CSRF token.' }) };
  }
  csrfToken = token;
  return { ok: true, status: result.status, data: token };
}

/** Drops the remembered CSRF token (after the session changed). */
export function forgetCsrfToken(): void {
  csrfToken = undefined;
}

/**
 * Calls the API. Unsafe methods carry `X-CSRF-Token` (fetched first if needed); when the server
 * says the token is missing or stale, a new one is fetched and the call retried once.
 * A call refused with `AMBIGUOUS_COOKIE` is retried once too.
 *
 * @param path - Absolute path on this origin, already URL-encoded.
 * @param body - JSON body, or undefined for none.
 */
export async function api<T>(method: Method, path: string, body?: unknown): Promise<ApiResult<T>> {
  const first = await call<T>(method, path, body);
  if (first.ok || first.problem.status !== 400 || first.problem.code !== AMBIGUOUS_COOKIE) return first;
  return call<T>(method, path, body);
}

/**
 * Asks for an event stream to learn why it would be refused: `EventSource` reports a refusal only
 * as "closed", never its status or problem (WHATWG HTML §9.2), and the right advice differs (too
 * many tabs, a planted cookie, a rate limit). A stream that opens is closed at once (ok); a
 * refusal's problem is read. Costs one stream open, so callers probe only after a refusal.
 *
 * @param path - The stream's absolute path on this origin, already URL-encoded.
 */
export async function probeStream(path: string): Promise<ApiResult<null>> {
  const abort = new AbortController();
  let response: Response;
  try {
    response = await fetch(path, {
      method: 'GET',
      headers: { Accept: 'text/event-stream' },
      credentials: 'same-origin',
      cache: 'no-store',
      signal: abort.signal,
    });
  } catch {
    return { ok: false, problem: networkProblem() };
  }
  if (response.ok) {
    abort.abort();
    return { ok: true, status: response.status, data: null };
  }
  const parsed = await readJson(response);
  return { ok: false, problem: toProblem(response.status, parsed, response.headers.get('Retry-After')) };
}

/** {@link api} without the retry after `AMBIGUOUS_COOKIE`. */
async function call<T>(method: Method, path: string, body?: unknown): Promise<ApiResult<T>> {
  if (!UNSAFE.has(method)) return send<T>(method, path, body);
  if (csrfToken === undefined) {
    const token = await refreshCsrfToken();
    if (!token.ok) return token;
  }
  const first = await send<T>(method, path, body, csrfToken);
  if (first.ok || first.problem.status !== 403 || !CSRF_RETRY_CODES.has(first.problem.code)) return first;
  const token = await refreshCsrfToken();
  if (!token.ok) return first;
  return send<T>(method, path, body, csrfToken);
}

async function send<T>(method: Method, path: string, body?: unknown, csrf?: string): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { Accept: 'application/json, application/problem+json' };
  // No Content-Type without a body: Fastify rejects an empty body declared as JSON.
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf !== undefined) headers['X-CSRF-Token'] = csrf;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    return { ok: false, problem: networkProblem() };
  }
  const parsed = await readJson(response);
  if (response.ok) return { ok: true, status: response.status, data: parsed as T };
  const problem = toProblem(response.status, parsed, response.headers.get('Retry-After'));
  if (problem.status === 401 && problem.code === 'UNAUTHENTICATED') onUnauthenticated?.();
  return { ok: false, problem };
}

async function readJson(response: Response): Promise<unknown> {
  if (response.status === 204) return undefined;
  const type = response.headers.get('Content-Type') ?? '';
  if (!type.includes('json')) return undefined;
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}
