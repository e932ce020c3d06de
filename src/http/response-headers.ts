import type { FastifyInstance } from 'fastify';
import { GatehouseError } from '../errors.js';
import { type CorsOptions, createCorsStep } from './cors.js';
import { isValidHost } from './host-header.js';
import { precomputedSecurityHeaders, setSecurityHeaders } from './security-headers.js';

/** Options of {@link installResponseHeaders}. */
export interface ResponseHeaderOptions {
  /** Send `Strict-Transport-Security` (behind TLS: `COOKIE_SECURE`). */
  hsts: boolean;
  /** The CORS allowlist and preflight answers (see `installCors`). */
  cors: CorsOptions;
  /**
   * Whether the server is closing: every request is then answered 503 problem+json with
   * `Retry-After` (Fastify adds `Connection: close`), after the security headers. In place of
   * Fastify's `return503OnClosing`, whose bare JSON skipped every hook, so the answers a drain
   * refuses were neither problem+json nor counted (metrics review of 32fc7f6). @default never
   */
  closing?: () => boolean;
}

/**
 * The reference server's response headers in one `onRequest` hook: the precomputed security
 * headers (`installSecurityHeaders`), the `Host` check (400 problem+json for a repeated or
 * malformed one, RFC 9112 §3.2), then CORS (`installCors`), with the same answers as those two
 * hooks in that order. One hook instead of two because every request runs it: each Fastify hook
 * costs a step of the hook runner per request (issue 10, `GET /users/me`'s hot path).
 */
export function installResponseHeaders(app: FastifyInstance, options: ResponseHeaderOptions): void {
  const headers = precomputedSecurityHeaders(options.hsts);
  const cors = createCorsStep(options.cors);
  const closing = options.closing ?? (() => false);
  app.addHook('onRequest', (request, reply, done) => {
    setSecurityHeaders(reply, headers);
    if (closing()) {
      done(
        new GatehouseError('SERVICE_UNAVAILABLE', 'Gatehouse is shutting down: send the request again.', {
          retryAfterSeconds: 1,
        }),
      );
      return;
    }
    // RFC 9112 §3.2: 400 for a missing, repeated or malformed Host (Node's own check is off,
    // HTTP_SERVER_OPTIONS, so the answer is problem+json). HTTP/1.0 may omit it. Here, in the hook
    // every request runs anyway, rather than a hook of its own (issue 10: each hook is a step of
    // Fastify's runner per request).
    const host = request.headers.host;
    if (host === undefined ? request.raw.httpVersionMinor !== 0 : !isValidHost(host)) {
      done(new GatehouseError('BAD_REQUEST', 'The Host header is missing, repeated or malformed.'));
      return;
    }
    if (cors(request, reply)) return;
    // RFC 9110 §15.5.16: no route here decodes a content coding, and a gzip body was read as JSON
    // (400) or as a form (standards audit 2026-12-05 S12): 415, saying which coding is taken.
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      reply.header('accept-encoding', 'identity');
      done(new GatehouseError('UNSUPPORTED_MEDIA_TYPE', 'Send the body without a content coding.'));
      return;
    }
    done();
  });
}
