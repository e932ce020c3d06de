/**
 * Hash routes of the single-page UI. Pure: `parseRoute(location.hash)` and the path builders.
 *
 * | hash               | page                                      |
 * |--------------------|-------------------------------------------|
 * | `#/`               | home (create a room when signed in)       |
 * | `#/login`          | log in (`?next=/rooms/new` returns there; `?return_to=/authorize?…` leaves the UI for the OAuth provider's page) |
 * | `#/signup`         | sign up                                   |
 * | `#/rooms/new`      | create a room                             |
 * | `#/join[/CODE]`    | join a room (code pre-filled)             |
 * | `#/rooms/CODE`     | the room's lobby                          |
 * | `#/rooms/CODE/verify` | check the room's signed roll log (or an exported one) |
 * | `#/rooms`          | the rooms you host ("My rooms")           |
 * | `#/watch/CODE?token=…` | watch a room with a watch link (read-only) |
 * | `#/forgot-password` | ask for a password reset link            |
 * | `#/reset-password?token=…` | choose a new password (mailed link) |
 * | `#/verify-email?token=…`   | confirm an address (mailed link)    |
 * | `#/confirm-email?token=…`  | confirm an email change (mailed link) |
 * | `#/account`        | your account: profile, password, email, sessions, deletion |
 * | `#/account/security` | second factors and passkeys (TOTP, recovery codes, passkeys) |
 * | `#/admin[/users\|audit\|clothes]` | the admin console           |
 *
 * The mailed links' shapes are the server's (`Mailer.link` in `src/mail/mailer.ts`): the token
 * rides in the fragment, which browsers never send to a server.
 */

/** A parsed route. */
export type Route =
  | { name: 'home' }
  | { name: 'login'; next?: string; returnTo?: string; reauthenticate?: true }
  | { name: 'signup' }
  | { name: 'create-room' }
  | { name: 'join'; code?: string }
  | { name: 'room'; code: string }
  | { name: 'watch'; code: string; token: string | undefined }
  | { name: 'verify-room'; code: string }
  | { name: 'my-rooms' }
  | { name: 'forgot-password' }
  | { name: LinkPage; token: string | undefined }
  | { name: 'account' }
  | { name: 'admin'; section: AdminSection }
  | { name: 'security' }
  | { name: 'not-found' };

/** Pages that mailed links open, each reading a `token` from the hash's query. */
export type LinkPage = 'reset-password' | 'verify-email' | 'confirm-email';

const LINK_PAGES: ReadonlySet<string> = new Set<LinkPage>([
  'reset-password',
  'verify-email',
  'confirm-email',
]);

/** The admin console's sections. */
export const ADMIN_SECTIONS = ['users', 'audit', 'clothes'] as const;

/** One of {@link ADMIN_SECTIONS}. */
export type AdminSection = (typeof ADMIN_SECTIONS)[number];

function isAdminSection(value: string): value is AdminSection {
  return (ADMIN_SECTIONS as readonly string[]).includes(value);
}

/**
 * A room code as typed or pasted by a person, in the form the API and the room cookie's path use:
 * spaces and dashes dropped (people write "ABCD-2345"), ASCII letters upper-cased. Cookie paths
 * are case-sensitive, so every request for a room must use this one spelling.
 */
export function canonicalRoomCode(input: string): string {
  return input.replace(/[\s-]+/g, '').replace(/[a-z]/g, (letter) => letter.toUpperCase());
}

/** Parses `location.hash`; anything unknown is `not-found`, an empty hash is home. */
export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const queryStart = raw.indexOf('?');
  const path = (queryStart === -1 ? raw : raw.slice(0, queryStart)).replace(/\/+$/, '');
  const query = new URLSearchParams(queryStart === -1 ? '' : raw.slice(queryStart + 1));
  const segments = path
    .split('/')
    .filter((segment) => segment !== '')
    .map(safeDecode);
  if (segments.includes(undefined)) return { name: 'not-found' };
  const [first, second, ...rest] = segments as string[];

  if (first === undefined) return { name: 'home' };
  if (
    first === 'rooms' &&
    second !== undefined &&
    second !== 'new' &&
    rest.length === 1 &&
    rest[0] === 'verify'
  ) {
    const code = canonicalRoomCode(second);
    return code === '' ? { name: 'not-found' } : { name: 'verify-room', code };
  }
  if (rest.length > 0) return { name: 'not-found' };
  if (first === 'login' && second === undefined) {
    const next = query.get('next');
    const returnTo = query.get('return_to');
    if (returnTo !== null && isProviderReturn(returnTo)) {
      // The provider asks for a fresh sign-in (`prompt=login`, `max_age`): the form even when signed in.
      return query.get('reauthenticate') === '1'
        ? { name: 'login', returnTo, reauthenticate: true }
        : { name: 'login', returnTo };
    }
    return next !== null && isSafeNext(next) ? { name: 'login', next } : { name: 'login' };
  }
  if (first === 'signup' && second === undefined) return { name: 'signup' };
  if (first === 'forgot-password' && second === undefined) return { name: 'forgot-password' };
  if (LINK_PAGES.has(first) && second === undefined) {
    const token = query.get('token');
    return { name: first as LinkPage, token: token === null || token === '' ? undefined : token };
  }
  if (first === 'account' && second === undefined) return { name: 'account' };
  if (first === 'admin') {
    if (second === undefined) return { name: 'admin', section: 'users' };
    if (isAdminSection(second)) return { name: 'admin', section: second };
  }
  if (first === 'account' && second === 'security') return { name: 'security' };
  if (first === 'join') {
    if (second === undefined) return { name: 'join' };
    const code = canonicalRoomCode(second);
    return code === '' ? { name: 'join' } : { name: 'join', code };
  }
  if (first === 'rooms' && second === undefined) return { name: 'my-rooms' };
  if (first === 'watch' && second !== undefined) {
    const code = canonicalRoomCode(second);
    const token = query.get('token');
    if (code !== '')
      return { name: 'watch', code, token: token === null || token === '' ? undefined : token };
  }
  if (first === 'rooms' && second !== undefined) {
    if (second === 'new') return { name: 'create-room' };
    const code = canonicalRoomCode(second);
    if (code !== '') return { name: 'room', code };
  }
  return { name: 'not-found' };
}

/** `#/rooms/CODE`. */
export function roomHash(code: string): string {
  return `#/rooms/${encodeURIComponent(code)}`;
}

/** `#/rooms/CODE/verify`, the room's log verification page. */
export function verifyHash(code: string): string {
  return `#/rooms/${encodeURIComponent(code)}/verify`;
}

/** `#/join/CODE`, the link to share with players. */
export function joinHash(code: string): string {
  return `#/join/${encodeURIComponent(code)}`;
}

/**
 * `#/watch/CODE?token=…`, a watch link: the capability rides in the fragment, which browsers never
 * send to a server (so no Referer or access log carries it).
 */
export function watchHash(code: string, token: string): string {
  return `#/watch/${encodeURIComponent(code)}?token=${encodeURIComponent(token)}`;
}

/** `#/admin/SECTION`. */
export function adminHash(section: AdminSection): string {
  return `#/admin/${section}`;
}

/** `#/login`, returning to `next` (a route path such as `/rooms/new`) afterwards. */
export function loginHash(next?: string): string {
  return next === undefined ? '#/login' : `#/login?next=${encodeURIComponent(next)}`;
}

/**
 * A `next` target is only ever used as a hash route, but still only known in-app routes are
 * followed, so a crafted link cannot send someone somewhere surprising after login.
 */
function isSafeNext(next: string): boolean {
  if (!next.startsWith('/') || next.startsWith('//')) return false;
  const route = parseRoute(`#${next}`);
  return route.name !== 'not-found' && route.name !== 'login';
}

/**
 * True for the server pages a login may return to (the OAuth provider's `/authorize` and
 * `/oauth/logout`, which send people here): a path of this origin, never `//host` or `/\\host`
 * (which browsers read as another host), so a crafted link cannot make the login an open redirect
 * (OWASP Unvalidated Redirects; RFC 9700 §4.11).
 */
export function isProviderReturn(path: string): boolean {
  return /^\/(authorize|oauth\/logout)(\?[^\\\s]*)?$/.test(path);
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
