import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';

/** One response header: its name as helmet spells it, and its value. */
export type SecurityHeader = readonly [name: string, value: string];

/**
 * Gatehouse's helmet options: the CSP, and HSTS only behind TLS. Exported so the test can feed
 * the very same options to `@fastify/helmet` and compare the headers byte for byte.
 */
export function securityHeaderOptions(hsts: boolean) {
  // Inferred (not annotated as HelmetOptions) so it also fits @fastify/helmet's copy of the types.
  return {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // Swagger UI sets style attributes from script; nothing else relies on inline styles.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        // Not set: on plain http://127.0.0.1 (the default quick start) it would break every asset.
        upgradeInsecureRequests: null,
      },
    },
    // HSTS only makes sense behind TLS; with COOKIE_SECURE=false the operator runs plain HTTP.
    hsts,
  } satisfies HelmetOptions;
}

/**
 * Runs helmet once against a recording response and returns the headers it sets, in order.
 * Our options hold no per-request values (no nonces, no directive functions), so the result is
 * the same for every request: computing it once removes helmet's option parsing from the hot
 * path (`@fastify/helmet` calls `helmet(options)` on every request, ≈ 16 % of the profile).
 */
export function computeSecurityHeaders(options: HelmetOptions): SecurityHeader[] {
  const headers: [string, string][] = [];
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      const text = Array.isArray(value) ? value.join(', ') : String(value);
      const index = headers.findIndex(([existing]) => existing.toLowerCase() === name.toLowerCase());
      if (index === -1) headers.push([name, text]);
      else headers[index] = [name, text];
      return recorder;
    },
    removeHeader(name: string) {
      const index = headers.findIndex(([existing]) => existing.toLowerCase() === name.toLowerCase());
      if (index !== -1) headers.splice(index, 1);
    },
  };
  const request = { method: 'GET', url: '/', headers: {} };
  let failure: unknown;
  helmet(options)(
    request as unknown as IncomingMessage,
    recorder as unknown as ServerResponse,
    (error?: unknown) => {
      failure = error;
    },
  );
  if (failure !== undefined) throw failure;
  return headers;
}

/**
 * The headers of {@link computeSecurityHeaders} for Gatehouse's options, with names lower-cased as
 * Fastify stores every reply header (HTTP field names are case-insensitive, RFC 9110 §5.1).
 * Computed once at start-up; {@link setSecurityHeaders} sets them on each reply.
 */
export function precomputedSecurityHeaders(hsts: boolean): readonly SecurityHeader[] {
  return computeSecurityHeaders(securityHeaderOptions(hsts)).map(
    ([name, value]): SecurityHeader => [name.toLowerCase(), value],
  );
}

/**
 * Sets precomputed headers on a reply. They go on Fastify's reply headers, not on the raw
 * response: Node then validates and writes them in the one `writeHead` pass with the rest, instead
 * of one `setHeader` call each (issue 10: 12 `setHeader` calls were ≈ 5 % of `GET /users/me`'s
 * profile). Error replies keep them (Fastify keeps reply headers), and so do hijacked replies that
 * copy `reply.getHeaders()` (the Dicery event stream).
 */
export function setSecurityHeaders(reply: FastifyReply, headers: readonly SecurityHeader[]): void {
  for (const [name, value] of headers) reply.header(name, value);
}

/**
 * Sets the precomputed security headers on every response of `app` (and of the contexts it
 * encapsulates), in an `onRequest` hook of their own. The reference server sets them in its one
 * response-header hook instead (`installResponseHeaders`, with CORS).
 */
export function installSecurityHeaders(app: FastifyInstance, hsts: boolean): void {
  const headers = precomputedSecurityHeaders(hsts);
  app.addHook('onRequest', (_request, reply, done) => {
    setSecurityHeaders(reply, headers);
    done();
  });
}
