import type { FastifyRequest } from 'fastify';
import { gatehouseCore } from '../gatehouse-core.js';
import { ANONYMOUS } from './csrf.js';

/**
 * What the CSRF token of this browser is bound to right now: its account cookie session when one
 * is live, else `ANONYMOUS`. `GET /auth/csrf` binds the tokens it issues the same way, so
 * a request authenticated by a credential other than the session cookie (an app's own cookie, such as a Dicery player's)
 * verifies the token the browser actually holds.
 *
 * Needs the Gatehouse plugin (`request.server.gatehouse` and `cookiePolicy`).
 */
export async function currentCsrfBinding(request: FastifyRequest): Promise<string> {
  const { gatehouse, cookiePolicy } = request.server;
  const token = request.cookies[cookiePolicy.sessionName];
  if (token === undefined || token === '') return ANONYMOUS;
  const check = await gatehouseCore(gatehouse).sessions.verifyCookieToken(token);
  return check.ok ? check.sessionId : ANONYMOUS;
}
