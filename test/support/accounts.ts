import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Role } from '../../src/accounts/roles.js';

/** A password that passes the policy. */
export const PASSWORD = 'correct horse battery';

let counter = 0;

/** A unique email for this test process. */
export function uniqueEmail(prefix = 'user'): string {
  counter += 1;
  return `${prefix}${counter}.${process.pid}@example.com`;
}

/** Creates a user directly through the core. */
export async function createUser(app: FastifyInstance, options: { email?: string; role?: Role; password?: string } = {}) {
  const email = options.email ?? uniqueEmail(options.role ?? 'user');
  const user = await app.gatehouse.accounts.register({ email, password: options.password ?? PASSWORD, role: options.role });
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
export function cookiesOf(response: LightMyRequestResponse): Map<string, { value: string; attributes: string[] }> {
  const header = response.headers['set-cookie'];
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const result = new Map<string, { value: string; attributes: string[] }>();
  for (const line of lines) {
    const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
    const eq = pair.indexOf('=');
    result.set(pair.slice(0, eq), { value: pair.slice(eq + 1), attributes: attributes.map((a) => a.toLowerCase()) });
  }
  return result;
}
