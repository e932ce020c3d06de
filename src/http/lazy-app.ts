import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';

/** Request headers a lazily built app may need (content negotiation and cache revalidation). */
const FORWARDED_REQUEST_HEADERS = ['accept', 'if-none-match', 'if-modified-since', 'range', 'if-range'];

/** Response headers that describe the inner (injected) connection, not the answer. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'content-length']);

/**
 * A route handler that answers from a second Fastify app, built by `build` on the first request
 * and kept from then on (a failed build is retried on the next request). It lets rarely used
 * parts of the server (Swagger UI, the OpenAPI document, the web UI's static files) load their
 * modules on first use instead of at start-up (issue 10, footprint), while the public app keeps
 * its hooks: security headers, CORS and the request log run on the outer request as usual.
 *
 * Only a few request headers are forwarded (no cookies, no Authorization: the inner apps serve
 * public files and documents), and the answer is buffered, so keep it to small responses.
 */
export function lazyAppHandler(build: () => Promise<FastifyInstance>): RouteHandlerMethod {
  let built: Promise<FastifyInstance> | undefined;
  const inner = () => {
    built ??= build().then(
      async (app) => {
        await app.ready();
        return app;
      },
      (error: unknown) => {
        built = undefined;
        throw error;
      },
    );
    return built;
  };
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const app = await inner();
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = request.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const answer = await app.inject({
      method: request.method === 'HEAD' ? 'HEAD' : 'GET',
      url: request.url,
      headers,
    });
    // Our problem+json 404, not the inner app's.
    if (answer.statusCode === 404) return reply.callNotFound();
    reply.code(answer.statusCode);
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) reply.header(name, value);
    }
    // An empty answer (a redirect, 304, HEAD) stays empty: no body, no content type added.
    return reply.send(answer.rawPayload.length === 0 ? undefined : answer.rawPayload);
  };
}
