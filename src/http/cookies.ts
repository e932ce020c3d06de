import type { CookieSerializeOptions } from '@fastify/cookie';

/** Cookie names and attributes, fixed once from `cookieSecure`. */
export interface CookiePolicy {
  /** HttpOnly session cookie. */
  sessionName: string;
  /** HttpOnly cookie holding the CSRF secret. */
  csrfSecretName: string;
  /** Readable cookie holding the current CSRF token, for scripts to echo in `X-CSRF-Token`. */
  csrfTokenName: string;
  /** HttpOnly, SameSite=Strict cookie holding the browser's device token (see `device-token.ts`). */
  deviceName: string;
  /**
   * An app's cookie name under this policy (see {@link appCookieName}):
   * `cookiePolicy.appCookieName('scoreboard_seat', { path: '/scores' })` is `__Secure-scoreboard_seat`.
   */
  appCookieName(name: string, options: { path: string }): string;
  /** Attributes of HttpOnly cookies. */
  httpOnly: CookieSerializeOptions;
  /** Attributes of the readable CSRF token cookie. */
  readable: CookieSerializeOptions;
  /**
   * Attributes of the device cookie, living `maxAgeSeconds` (`DEVICE_TOKEN_TTL`): HttpOnly and
   * SameSite=Strict, so no cross-site request ever carries it. It outlives logout on purpose: it
   * proves a past sign-in (or a reset by mail) and grants nothing by itself (OWASP device cookies).
   */
  device(maxAgeSeconds: number): CookieSerializeOptions;
}

/**
 * Builds the cookie policy. With `secure` (the default) names carry the `__Host-` prefix, which
 * browsers only accept with Secure, Path=/ and no Domain, so no subdomain can plant or shadow them
 * (RFC 6265bis §4.1.3.2). Without it (plain-HTTP development) the prefix would make browsers drop
 * the cookie, so plain names are used.
 */
export function createCookiePolicy(secure: boolean): CookiePolicy {
  const prefix = secure ? '__Host-' : '';
  const base = {
    path: '/',
    secure,
    sameSite: 'lax',
    // Every other attribute is pinned too: @fastify/cookie fills what a cookie leaves out from the
    // `parseOptions` of its registration, and an embedding app's (a Domain, `signed`, a Max-Age
    // for its own cookies) gave Gatehouse's cookies a Domain, which makes browsers drop `__Host-`
    // ones and sends unprefixed ones to every subdomain, and signed them, which broke cookie
    // sign-in (red-team 2026-12o O3). A route that means a lifetime sets its own `maxAge`.
    domain: undefined,
    expires: undefined,
    maxAge: undefined,
    partitioned: undefined,
    priority: undefined,
    signed: false,
    encode: undefined,
  } as const;
  return {
    sessionName: `${prefix}gatehouse_session`,
    csrfSecretName: `${prefix}gatehouse_csrf_secret`,
    csrfTokenName: `${prefix}gatehouse_csrf`,
    deviceName: `${prefix}gatehouse_device`,
    appCookieName: (name, options) => appCookieName(name, { ...options, secure }),
    httpOnly: { ...base, httpOnly: true },
    readable: { ...base, httpOnly: false },
    device: (maxAgeSeconds) => ({ ...base, httpOnly: true, sameSite: 'strict', maxAge: maxAgeSeconds }),
  };
}

// RFC 6265 §4.1.1 cookie-name (an RFC 7230 token), without the leading `__` of the prefixes.
const COOKIE_NAME = /^(?!__)[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,200}$/;

/**
 * The name an app's cookie must carry so a browser refuses it from anywhere else (RFC 6265bis
 * §4.1.3): with `secure`, `__Host-` when its `path` is `/` (Secure, Path=/, no Domain: no subdomain
 * can plant or shadow it), `__Secure-` for a narrower path (`__Host-` demands Path=/); without
 * `secure` (plain-HTTP development) the bare name, since browsers drop prefixed cookies sent without
 * Secure. Set the cookie with the policy's `httpOnly` attributes and that same `path`. Throws a
 * `TypeError` for a name that is no cookie-name token or starts with `__`, or a path not starting with `/`.
 */
export function appCookieName(name: string, options: { secure: boolean; path: string }): string {
  if (!COOKIE_NAME.test(name)) {
    throw new TypeError(
      `appCookieName: ${JSON.stringify(name)} is not a cookie name (RFC 6265 token, no leading "__")`,
    );
  }
  if (!options.path.startsWith('/')) {
    throw new TypeError(`appCookieName: the path ${JSON.stringify(options.path)} must start with "/"`);
  }
  if (!options.secure) return name;
  return options.path === '/' ? `__Host-${name}` : `__Secure-${name}`;
}
