import { createHmac } from 'node:crypto';
import { Tokens } from '@fastify/csrf';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError } from '../errors.js';
import type { CookiePolicy } from './cookies.js';
import { isValidHost } from './host-header.js';

/** What a CSRF token is bound to before anyone has signed in (login CSRF protection). */
export const ANONYMOUS = 'anonymous';

/** CSRF defence for cookie-authenticated requests (OWASP CSRF Prevention Cheat Sheet). */
export interface CsrfGuard {
  /**
   * Issues a token bound to `binding` (the session id, or `ANONYMOUS` before login),
   * setting the HttpOnly secret cookie if missing and the readable token cookie.
   */
  issue(request: FastifyRequest, reply: FastifyReply, binding: string): string;
  /**
   * Refuses cross-site requests by `Sec-Fetch-Site` / `Origin`, then checks the
   * `X-CSRF-Token` header against the secret cookie and `binding`. Throws 403 problems.
   */
  verify(request: FastifyRequest, binding: string): void;
  /**
   * Only the first half of {@link CsrfGuard.verify}: refuses cross-site requests by
   * `Sec-Fetch-Site` / `Origin` (see {@link refuseCrossSiteRequest}). For unsafe requests that
   * carry no credential, such as an app's join-by-code, where there is no session to bind a token to.
   */
  checkOrigin(request: FastifyRequest): void;
}

/**
 * Refuses a cross-site request: an `Origin` other than this server's own or one of
 * `allowedOrigins`, or, from browsers that send fetch metadata but no `Origin`, a `Sec-Fetch-Site`
 * other than `same-origin` / `none` (OWASP CSRF Prevention Cheat Sheet, "Verifying Origin With
 * Standard Headers" and "Fetch Metadata headers"). Requests without either header (non-browser
 * clients) pass: they cannot be forged by a web page. Throws 403 `CROSS_SITE_REQUEST`.
 */
export function refuseCrossSiteRequest(request: FastifyRequest, allowedOrigins: ReadonlySet<string>): void {
  const site = request.headers['sec-fetch-site'];
  const origin = request.headers.origin;
  if (origin !== undefined) {
    // This server's own origin comes from `Host`: one that is not a plain host[:port] (user-info,
    // a path, two joined lines) names no origin of ours, so only the allowlist can match.
    const host = request.host;
    const own = isValidHost(host) ? `${request.protocol}://${host}` : undefined;
    if (origin !== own && !allowedOrigins.has(origin)) {
      throw new GatehouseError('CROSS_SITE_REQUEST', 'Cross-site requests are not accepted here.');
    }
    return;
  }
  // Browsers that send fetch metadata but no Origin: only same-origin or user-initiated.
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new GatehouseError('CROSS_SITE_REQUEST', 'Cross-site requests are not accepted here.');
  }
}

const TOKEN_MAX = 256;

/**
 * Creates the guard: a signed double-submit cookie (the token is an HMAC over a per-browser
 * secret and the session id, made by @fastify/csrf with a server key) plus a fetch-metadata /
 * Origin check, so both halves must fail for an attack to pass.
 */
export function createCsrfGuard(options: {
  secretKey: Uint8Array;
  /**
   * SECRET_KEY_PREVIOUS during a rotation: tokens keyed by it still verify, so a token an instance
   * still on the old secret issued passes at one on the new secret. @default undefined
   */
  secretKeyPrevious?: Uint8Array | undefined;
  cookies: CookiePolicy;
  allowedOrigins: readonly string[];
}): CsrfGuard {
  // A key of its own, derived from the secret, so CSRF tokens and JWTs never share a key.
  const tokensOf = (secret: Uint8Array) =>
    new Tokens({
      userInfo: true,
      hmacKey: createHmac('sha256', secret).update('gatehouse csrf v1').digest(),
    });
  const tokens = tokensOf(options.secretKey);
  const previousTokens =
    options.secretKeyPrevious === undefined ? undefined : tokensOf(options.secretKeyPrevious);
  const { cookies } = options;
  const allowed = new Set(options.allowedOrigins);

  const checkOrigin = (request: FastifyRequest) => refuseCrossSiteRequest(request, allowed);

  return {
    issue(request, reply, binding) {
      let secret = request.cookies[cookies.csrfSecretName] ?? '';
      if (secret === '' || secret.length > TOKEN_MAX) {
        secret = tokens.secretSync();
        reply.setCookie(cookies.csrfSecretName, secret, { ...cookies.httpOnly, sameSite: 'strict' });
      }
      const token = tokens.create(secret, binding);
      reply.setCookie(cookies.csrfTokenName, token, { ...cookies.readable, sameSite: 'strict' });
      return token;
    },
    verify(request, binding) {
      checkOrigin(request);
      const header = request.headers['x-csrf-token'];
      if (header === undefined || header === '') {
        throw new GatehouseError(
          'CSRF_TOKEN_MISSING',
          'This request needs an X-CSRF-Token header (GET /auth/csrf).',
        );
      }
      const secret = request.cookies[cookies.csrfSecretName];
      const valid =
        typeof header === 'string' &&
        header.length <= TOKEN_MAX &&
        secret !== undefined &&
        (tokens.verify(secret, header, binding) || previousTokens?.verify(secret, header, binding) === true);
      if (!valid) {
        throw new GatehouseError(
          'CSRF_TOKEN_INVALID',
          'The CSRF token is invalid for this session (GET /auth/csrf).',
        );
      }
    },
    checkOrigin,
  };
}
