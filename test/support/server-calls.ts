import type { ServerProcess } from './server-process.js';

/** One answer of a real server process, its JSON body parsed (`{}` when empty). */
export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/**
 * One request to `server` that must answer within `boundMs`: a fault test's hang check (the
 * request aborts, and the test fails, when no answer has come by then), never a timing assertion.
 */
export async function callServer(
  server: ServerProcess,
  path: string,
  init: RequestInit,
  boundMs: number,
): Promise<Answer> {
  const response = await fetch(`${server.url}${path}`, { ...init, signal: AbortSignal.timeout(boundMs) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : JSON.parse(text) };
}

/** A form-encoded POST (the OAuth endpoints). */
export const formPost = (
  body: Record<string, string>,
  headers: Record<string, string> = {},
): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  body: new URLSearchParams(body).toString(),
});

/** A JSON POST. */
export const jsonPost = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/** `POST /token` with the password grant. */
export const passwordGrant = (username: string, password: string): RequestInit =>
  formPost({ grant_type: 'password', username, password });

/**
 * Polls `/readyz` (every 100 ms, up to `timeoutMs`) until it answers `status`, and returns that
 * answer, or the last one: recovery has no event to await from outside the process.
 */
export async function readinessBecomes(
  server: ServerProcess,
  status: number,
  boundMs: number,
  timeoutMs = 10_000,
): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  let ready = await callServer(server, '/readyz', {}, boundMs);
  while (ready.status !== status && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    ready = await callServer(server, '/readyz', {}, boundMs);
  }
  return ready;
}
