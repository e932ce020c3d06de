import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError } from '../errors.js';
import { sendProblem } from './error-handler.js';

/** Options of {@link installCors}. */
export interface CorsOptions {
  /**
   * Origins allowed to read responses without credentials (`CORS_ORIGINS`: OAuth apps' browser
   * code, which authenticates with bearer tokens), compared as exact strings.
   */
  origins: readonly string[];
  /**
   * Origins allowed to read responses with credentials, i.e. with the person's cookie session
   * (`CORS_CREDENTIALED_ORIGINS`: first-party front ends), compared as exact strings; an origin in
   * both lists is credentialed. @default []
   */
  credentialedOrigins?: readonly string[];
  /** `Access-Control-Allow-Methods` of preflight answers. */
  methods: readonly string[];
  /** `Access-Control-Allow-Headers` of preflight answers. */
  allowedHeaders: readonly string[];
  /** `Access-Control-Max-Age` of preflight answers, in seconds. */
  maxAgeSeconds: number;
}

/** Adds `Origin` to `Vary` unless it is there already or `Vary` is `*`. */
function varyOnOrigin(reply: FastifyReply): void {
  const vary = reply.getHeader('vary');
  if (vary === undefined || vary === '') {
    reply.header('vary', 'Origin');
    return;
  }
  const text = Array.isArray(vary) ? vary.join(', ') : String(vary);
  const fields = text.split(',').map((field) => field.trim().toLowerCase());
  if (!fields.includes('*') && !fields.includes('origin')) reply.header('vary', `${text}, Origin`);
}

/**
 * The CORS step of a request, for an `onRequest` hook: true when it answered the request itself (a
 * preflight from an allowed origin), in which case the hook must not call `done`.
 */
export type CorsStep = (request: FastifyRequest, reply: FastifyReply) => boolean;

/** The response headers an allowed origin's scripts may read beyond the CORS-safelisted ones. */
export const EXPOSED_HEADERS = 'WWW-Authenticate, Retry-After, Location';

/** The CORS step for `options` (see {@link installCors} for what it answers). */
export function createCorsStep(options: CorsOptions): CorsStep {
  const credentialed = new Set(options.credentialedOrigins ?? []);
  const allowed = new Set([...options.origins, ...credentialed]);
  const methods = options.methods.join(', ');
  const allowedHeaders = options.allowedHeaders.join(', ');
  const maxAge = String(options.maxAgeSeconds);
  return (request, reply) => {
    varyOnOrigin(reply);
    const origin = request.headers.origin;
    if (origin === undefined || !allowed.has(origin)) return false;
    reply.header('access-control-allow-origin', origin);
    // Without this header a browser withholds the answer to a request that carried cookies, and
    // fails the preflight of one that would (Fetch §3.2.5): a CORS_ORIGINS app can use bearer
    // tokens only, never the person's session (red-team 2026-12e J6).
    if (credentialed.has(origin)) reply.header('access-control-allow-credentials', 'true');
    // Fetch §3.2.4: a script reads only the safelisted response headers unless named here; an app
    // needs the challenge (RFC 6750 errors, RFC 9470 step-up), Retry-After and Location.
    reply.header('access-control-expose-headers', EXPOSED_HEADERS);
    if (request.method !== 'OPTIONS') return false;
    if (request.headers['access-control-request-method'] === undefined) {
      // @fastify/cors's strict preflight refusal (400), as problem+json with a stable code like
      // every other refusal: the Fetch standard only requires an ok status for a preflight to
      // pass, so the body of a refusal is ours to choose. Sent here rather than thrown, so the
      // answer does not depend on the app having Gatehouse's error handler.
      sendProblem(
        reply,
        new GatehouseError(
          'CORS_PREFLIGHT_INVALID',
          'A CORS preflight must carry Access-Control-Request-Method.',
        ),
      );
      return true;
    }
    reply.header('access-control-allow-methods', methods);
    reply.header('access-control-allow-headers', allowedHeaders);
    reply.header('access-control-max-age', maxAge);
    // Safari waits for a body on a 204 without Content-Length: 0.
    reply.code(204).header('content-length', '0').send();
    return true;
  };
}

/**
 * CORS for allowlists of exact origins, with credentials (`credentialedOrigins`) or without
 * (`origins`): the answers `@fastify/cors` gave with the same options (a function origin answering
 * `allowed.has(origin)`, `credentials` for the credentialed list, strict preflight, 204 preflight
 * answers), byte for byte but for the body of a refused preflight
 * (`test/http/cors.test.ts` compares them), in one
 * `onRequest` hook that does no work beyond a `Vary` header for requests without an allowed
 * `Origin`. `@fastify/cors` copied its options object and built a callback wrapper on every
 * request, ≈ 3–4 % of `GET /users/me`'s profile (issue 10).
 *
 * - Every response carries `Vary: Origin`: it differs by `Origin`, so shared caches must key on it
 *   (Fetch standard, "CORS protocol and HTTP caches").
 * - An allowed origin is echoed, with `Access-Control-Allow-Credentials: true` when it is a
 *   credentialed one; any other origin (including `null` and look-alikes) gets no CORS header at
 *   all, so browsers withhold the answer.
 * - A preflight (`OPTIONS` with an allowed `Origin`) is answered here, before any guard (browsers
 *   send no credentials with it): 204 with the allowed methods, headers and max age, or 400
 *   `CORS_PREFLIGHT_INVALID` (problem+json) when
 *   `Access-Control-Request-Method` is missing. An `OPTIONS` from any other origin is not a
 *   preflight we accept: it goes on to routing and gets the usual 404 problem+json.
 */
export function installCors(app: FastifyInstance, options: CorsOptions): void {
  const cors = createCorsStep(options);
  app.addHook('onRequest', (request, reply, done) => {
    if (!cors(request, reply)) done();
  });
}
