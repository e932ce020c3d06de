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
  /** Prefix of per-room player cookies (Dicery). */
  roomPrefix: string;
  /** Attributes of HttpOnly cookies. */
  httpOnly: CookieSerializeOptions;
  /** Attributes of the readable CSRF token cookie. */
  readable: CookieSerializeOptions;
}

/**
 * Builds the cookie policy. With `secure` (the default) names carry the `__Host-` prefix, which
 * browsers only accept with Secure, Path=/ and no Domain, so no subdomain can plant or shadow them
 * (RFC 6265bis §4.1.3.2). Without it (plain-HTTP development) the prefix would make browsers drop
 * the cookie, so plain names are used.
 */
export function createCookiePolicy(secure: boolean): CookiePolicy {
  const prefix = secure ? '__Host-' : '';
  const base = { path: '/', secure, sameSite: 'lax' } as const;
  return {
    sessionName: `${prefix}gatehouse_session`,
    csrfSecretName: `${prefix}gatehouse_csrf_secret`,
    csrfTokenName: `${prefix}gatehouse_csrf`,
    deviceName: `${prefix}gatehouse_device`,
    roomPrefix: secure ? '__Secure-dicery_room_' : 'dicery_room_',
    httpOnly: { ...base, httpOnly: true },
    readable: { ...base, httpOnly: false },
  };
}
