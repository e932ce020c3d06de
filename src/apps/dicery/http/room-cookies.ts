import type { FastifyRequest } from 'fastify';
import type { CookiePolicy } from '../../../http/index.js';
import { ambiguousCookie } from '../core/errors.js';

/**
 * The path a room's cookies are scoped to: the browser sends them to that room's routes only. The
 * prefix `appCookieName` picks for it is `__Secure-` (`__Host-` demands Path=/).
 */
export function roomCookiePath(code: string): string {
  return `/rooms/${code}`;
}

/** The name of a room's player-token cookie (`__Secure-dicery_room_<code>` under Secure cookies). */
export function roomCookieName(cookies: CookiePolicy, code: string): string {
  return cookies.appCookieName(`dicery_room_${code}`, { path: roomCookiePath(code) });
}

/** The name of a room's seat cookie, beside the room cookie (`__Secure-dicery_seat_<code>`). */
export function seatCookieName(cookies: CookiePolicy, code: string): string {
  return cookies.appCookieName(`dicery_seat_${code}`, { path: roomCookiePath(code) });
}

/**
 * The name of a room's spectator cookie, beside the room and seat cookies, holding the watch link's
 * secret (set by `POST /rooms/{code}/watch`): `__Secure-dicery_watch_<code>`.
 */
export function watchCookieName(cookies: CookiePolicy, code: string): string {
  return cookies.appCookieName(`dicery_watch_${code}`, { path: roomCookiePath(code) });
}

/**
 * The value of the room cookie `name` (room, seat or watch), or undefined when absent or empty.
 * Throws AMBIGUOUS_COOKIE when the Cookie header holds two different values for it: these cookies
 * are `__Secure-` and path-scoped, so a sibling subdomain can plant one with a longer path, which
 * the browser sends first and the parser (first one wins) would pick (cookie tossing, red-team
 * G2). Refusing costs the victim the room until the planted cookie is cleared, never their player.
 */
export function readRoomCookie(request: FastifyRequest, name: string): string | undefined {
  const value = request.cookies[name];
  if (value === undefined || value === '') return undefined;
  // Node joins repeated Cookie headers with "; ", so one split sees every pair.
  const header = request.headers.cookie ?? '';
  let first: string | undefined;
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=');
    if (equals < 0 || pair.slice(0, equals).trim() !== name) continue;
    const raw = pair.slice(equals + 1).trim();
    if (first === undefined) first = raw;
    else if (raw !== first) throw ambiguousCookie(name);
  }
  return value;
}
