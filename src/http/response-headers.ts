import type { FastifyInstance } from 'fastify';
import { type CorsOptions, createCorsStep } from './cors.js';
import { precomputedSecurityHeaders, setSecurityHeaders } from './security-headers.js';

/** Options of {@link installResponseHeaders}. */
export interface ResponseHeaderOptions {
  /** Send `Strict-Transport-Security` (behind TLS: `COOKIE_SECURE`). */
  hsts: boolean;
  /** The CORS allowlist and preflight answers (see `installCors`). */
  cors: CorsOptions;
}

/**
 * The reference server's response headers in one `onRequest` hook: the precomputed security
 * headers (`installSecurityHeaders`), then CORS (`installCors`), with the same answers as those two
 * hooks in that order. One hook instead of two because every request runs it: each Fastify hook
 * costs a step of the hook runner per request (issue 10, `GET /users/me`'s hot path).
 */
export function installResponseHeaders(app: FastifyInstance, options: ResponseHeaderOptions): void {
  const headers = precomputedSecurityHeaders(options.hsts);
  const cors = createCorsStep(options.cors);
  app.addHook('onRequest', (request, reply, done) => {
    setSecurityHeaders(reply, headers);
    if (!cors(request, reply)) done();
  });
}
