import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
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

/** Most distinct values of one room cookie weighed; beyond, the request is ambiguous outright. */
const MAX_COOKIE_VALUES = 4;
/** Most parent domains, and paths, a planted copy is cleared under (bounds the Set-Cookie headers). */
const MAX_CLEARED_DOMAINS = 4;
const MAX_CLEARED_PATHS = 12;

/** What {@link readRoomCookie} needs to read one room cookie. */
export interface RoomCookieRead {
  request: FastifyRequest;
  /** Where headers asking the browser to drop planted copies go (see {@link readRoomCookie}). */
  reply: FastifyReply;
  cookies: CookiePolicy;
  /** The cookie's name (room, seat or watch, from the functions above). */
  name: string;
  /** The room the cookie belongs to (its path). */
  code: string;
  /**
   * Whether a value could have been issued by this server for this room, judged without the
   * database's current state (a room token's signature and room; a secret's shape): a victim's own
   * value that is expired, kicked or ended still counts, so a planted one never wins by default.
   */
  couldBeOurs: (value: string) => boolean | Promise<boolean>;
}

/**
 * The value of a room cookie (room, seat or watch), or undefined when absent or empty.
 *
 * Cookie tossing (red-team 2026-12b G2): these cookies are `__Secure-` and path-scoped, so a
 * sibling subdomain can plant one of the same name with `Domain=<parent>` and a longer path, which
 * the browser sends first (RFC 6265 §5.4) and the parser (first one wins) would pick. With two or
 * more different values:
 * - the values that cannot be this server's for this room ({@link RoomCookieRead.couldBeOurs}:
 *   junk, another room's token, a forged signature) are set aside; if exactly one value is left it
 *   is the caller's own, and is used;
 * - otherwise no value is picked: 400 `AMBIGUOUS_COOKIE`. Picking by anything the attacker can
 *   also present (a valid seat of their own) would let them choose who the victim is.
 * - Either way the response asks the browser to drop every copy this server never sets: ours are
 *   host-only at `Path=/rooms/<CODE>`, so `Domain=` copies for the host and its parent domains, at
 *   each path that matched this request, are expired (a planted copy is sent only where its
 *   domain and path match, so these cover it). The victim's next request carries their own cookie
 *   alone; the web UI retries once. The one copy this cannot clear without risking ours is a
 *   `Domain=<this host>; Path=/rooms/<CODE>` one, which only a child of this host can plant.
 */
export async function readRoomCookie(read: RoomCookieRead): Promise<string | undefined> {
  const values = cookieValues(read.request, read.name);
  if (values.length <= 1) return values[0];
  dropPlantedCopies(read);
  if (values.length > MAX_COOKIE_VALUES) throw ambiguousCookie(read.name);
  const plausible: string[] = [];
  for (const value of values) if (await read.couldBeOurs(value)) plausible.push(value);
  if (plausible.length === 1) return plausible[0];
  // None plausible: the first is refused downstream as any bad credential is.
  if (plausible.length === 0) return values[0];
  throw ambiguousCookie(read.name);
}

/** The distinct non-empty values of cookie `name` in the Cookie header, in the order sent. */
function cookieValues(request: FastifyRequest, name: string): string[] {
  // Node joins repeated Cookie headers with "; ", so one split sees every pair.
  const header = request.headers.cookie ?? '';
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=');
    if (equals < 0 || pair.slice(0, equals).trim() !== name) continue;
    const value = decodeCookieValue(pair.slice(equals + 1).trim());
    if (value !== '' && !values.includes(value)) values.push(value);
    // More than the most weighed is ambiguous anyway: stop collecting.
    if (values.length > MAX_COOKIE_VALUES) break;
  }
  return values;
}

/** Decodes as @fastify/cookie does (`request.cookies`), keeping a value that is not %-encoded. */
function decodeCookieValue(raw: string): string {
  const unquoted = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
  if (!unquoted.includes('%')) return unquoted;
  try {
    return decodeURIComponent(unquoted);
  } catch {
    return unquoted;
  }
}

// RFC 1123 §2.1 host name label (letters, digits, inner hyphens), lower-cased above.
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Appends Set-Cookie headers expiring every copy of `name` this server would never have set. */
function dropPlantedCopies({ request, reply, cookies, name, code }: RoomCookieRead): void {
  const host = request.hostname.toLowerCase();
  // An IP address or a single label has no sibling that could set a `Domain=` cookie for it.
  if (isIP(host) !== 0 || host.startsWith('[') || !host.includes('.')) return;
  const labels = host.split('.');
  // The Host header is the client's to write: a name no browser could hold a cookie for
  // (`a_b.example`, an empty label) has no planted copy to clear, and as a `Domain=` attribute it
  // made the cookie serializer throw (a 500).
  if (!labels.every((label) => DNS_LABEL.test(label))) return;
  const domains: string[] = [];
  // The host and each parent but the top-level label (a browser ignores a public suffix anyway).
  for (let at = 0; at < labels.length - 1 && domains.length < MAX_CLEARED_DOMAINS; at++) {
    domains.push(labels.slice(at).join('.'));
  }
  const own = roomCookiePath(code);
  const headers: string[] = [];
  for (const domain of domains) {
    for (const path of cookiePathsMatching(request.url)) {
      if (domain === host && path === own) continue;
      headers.push(
        request.server.serializeCookie(name, '', {
          // Secure as ours are: a `__Secure-` name is refused (not even cleared) without it.
          secure: cookies.httpOnly.secure === true,
          httpOnly: true,
          domain,
          path,
          maxAge: 0,
          expires: new Date(0),
        }),
      );
    }
  }
  // Set as a header (not reply.setCookie) so the event stream, which hijacks its reply and copies
  // the headers set so far, sends them too.
  const existing = reply.getHeader('set-cookie');
  const before = existing === undefined ? [] : Array.isArray(existing) ? existing : [String(existing)];
  reply.header('set-cookie', [...before, ...headers]);
}

/**
 * The cookie paths that path-match a request for `url` (RFC 6265 §5.1.4): `/`, and each prefix
 * ending just before or at a `/` of its path, and the path itself.
 */
function cookiePathsMatching(url: string): string[] {
  const query = url.indexOf('?');
  const path = query < 0 ? url : url.slice(0, query);
  const paths = new Set<string>(['/']);
  for (
    let at = path.indexOf('/', 1);
    at >= 0 && paths.size < MAX_CLEARED_PATHS;
    at = path.indexOf('/', at + 1)
  ) {
    paths.add(path.slice(0, at));
    paths.add(path.slice(0, at + 1));
  }
  if (paths.size < MAX_CLEARED_PATHS) paths.add(path);
  return [...paths];
}
