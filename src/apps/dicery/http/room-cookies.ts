import type { CookiePolicy } from '../../../http/index.js';

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
