import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Role } from '../../src/accounts/roles.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { UserRecord } from '../../src/storage/user-store.js';

/** A password that passes the policy. */
export const PASSWORD = 'correct horse battery';

let counter = 0;

/** A unique email for this test process. */
export function uniqueEmail(prefix = 'user'): string {
  counter += 1;
  return `${prefix}${counter}.${process.pid}@example.com`;
}

/**
 * Creates a user directly through the core; `verified` marks its address proven (as
 * `gatehouse create-user` does), which a second factor needs.
 */
export async function createUser(
  app: FastifyInstance,
  options: { email?: string; role?: Role; password?: string; verified?: boolean } = {},
) {
  const email = options.email ?? uniqueEmail(options.role ?? 'user');
  const user = await gatehouseCore(app.gatehouse).accounts.register({
    email,
    password: options.password ?? PASSWORD,
    role: options.role,
    emailVerified: options.verified,
  });
  return { ...user, password: options.password ?? PASSWORD };
}

/** Form-encodes parameters (repeated keys allowed via arrays). */
export function form(params: Record<string, string | string[]>): string {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) body.append(key, item);
  }
  return body.toString();
}

/** POST /token with form parameters. */
export function postToken(
  app: FastifyInstance,
  params: Record<string, string | string[]>,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: form(params),
  });
}

/** Logs in with the password grant and returns the token response body. */
export async function login(
  app: FastifyInstance,
  email: string,
  password = PASSWORD,
  scope?: string,
): Promise<{ access_token: string; refresh_token: string; scope: string; expires_in: number }> {
  const response = await postToken(app, {
    grant_type: 'password',
    username: email,
    password,
    ...(scope === undefined ? {} : { scope }),
  });
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`);
  return response.json();
}

/** Authorization header for a bearer token. */
export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}

/** Parses Set-Cookie headers into name → { value, attributes (lower-cased) }. */
export function cookiesOf(
  response: LightMyRequestResponse,
): Map<string, { value: string; attributes: string[] }> {
  const header = response.headers['set-cookie'];
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const result = new Map<string, { value: string; attributes: string[] }>();
  for (const line of lines) {
    const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
    const eq = pair.indexOf('=');
    result.set(pair.slice(0, eq), {
      value: pair.slice(eq + 1),
      attributes: attributes.map((a) => a.toLowerCase()),
    });
  }
  return result;
}

/** A signed-in account: its record, its access token and the header that sends it. */
export interface SignedIn {
  user: UserRecord;
  token: string;
  headers: { authorization: string };
}

/** Registers an account with `role` (real argon2id hashing, ~30 ms). */
export async function createAccount(
  app: FastifyInstance,
  role: Role = 'user',
  email?: string,
): Promise<UserRecord> {
  return createUser(app, { role, email });
}

/** `POST /token` with the password grant; returns the raw response. */
export function requestToken(
  app: FastifyInstance,
  email: string,
  scope?: string,
): Promise<LightMyRequestResponse> {
  return postToken(app, {
    grant_type: 'password',
    username: email,
    password: PASSWORD,
    ...(scope === undefined ? {} : { scope }),
  });
}

/** Gets an access token for an existing account; fails the test when the grant fails. */
export async function bearerFor(app: FastifyInstance, user: UserRecord, scope?: string): Promise<SignedIn> {
  const { access_token: token } = await login(app, user.email, PASSWORD, scope);
  return { user, token, headers: bearer(token) };
}

/** Creates an account with `role` and signs it in (optionally asking for `scope`). */
export async function signIn(app: FastifyInstance, role: Role = 'user', scope?: string): Promise<SignedIn> {
  return bearerFor(app, await createAccount(app, role), scope);
}
