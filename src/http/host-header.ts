/**
 * RFC 9110 §7.2 / RFC 3986 §3.2.2: `Host = uri-host [ ":" port ]`, where `uri-host` is an IP
 * literal in brackets, or a reg-name of unreserved characters, percent-encodings and sub-delims.
 * A port has at most five digits here. No user-info (`@`), no path, no spaces: two `Host` lines
 * that Node joined (`a, b`, see {@link HTTP_SERVER_OPTIONS}) fail on the space.
 */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{1,5})?$/;

/**
 * True for a `Host` value this server accepts: present, not empty, of RFC 9110's grammar. RFC 9112
 * §3.2: a server MUST answer 400 to a request with more than one `Host` line or an invalid one.
 */
export function isValidHost(host: string | undefined): host is string {
  return host !== undefined && HOST.test(host);
}

/**
 * Node HTTP server options of the reference server. `joinDuplicateHeaders`: Node otherwise keeps
 * the first of two `Host`, `Authorization` or `Content-Type` lines and drops the rest silently, so
 * the request means one thing to us and possibly another to a proxy that took the last (red-team
 * 2026-12m M2). Joined (`a, b`), a second `Host` fails {@link isValidHost} and a second
 * `Authorization` is not a bearer token: both refused instead of half-read.
 * `requireHostHeader: false`: Node's own refusal of an HTTP/1.1 request without `Host` is a bare
 * 400 with no body; the reference server's `onRequest` hook refuses it instead, with problem+json
 * like every other malformed `Host` (RFC 9112 §3.2), and lets HTTP/1.0 omit it.
 */
export const HTTP_SERVER_OPTIONS = { joinDuplicateHeaders: true, requireHostHeader: false } as const;
