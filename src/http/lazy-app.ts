import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';

/** Request headers a lazily built app may need (content negotiation and cache revalidation). */
const FORWARDED_REQUEST_HEADERS = ['accept', 'if-none-match', 'if-modified-since', 'range', 'if-range'];

/** Response headers that describe the inner (injected) connection, not the answer. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'content-length']);

/**
 * What a kept answer does not copy from the inner app besides {@link HOP_BY_HOP}: its validators
 * and caching give way to ours, and it does not answer `If-Modified-Since` or `Range`, so it must
 * not advertise them (`Last-Modified`, `Accept-Ranges: bytes`; standards audit 2026-12-05).
 */
const NOT_KEPT = new Set([...HOP_BY_HOP, 'etag', 'cache-control', 'last-modified', 'accept-ranges']);

/**
 * A route handler that answers from a second Fastify app, built by `build` on the first request
 * and kept from then on (a failed build is retried on the next request). It lets rarely used
 * parts of the server (Swagger UI, the OpenAPI document, the web UI's static files) load their
 * modules on first use instead of at start-up (issue 10, footprint), while the public app keeps
 * its hooks: security headers, CORS and the request log run on the outer request as usual.
 *
 * Only a few request headers are forwarded (no cookies, no Authorization: the inner apps serve
 * public files and documents), and the answer is buffered, so keep it to small responses.
 *
 * Answers of the paths `options.cacheable` accepts (documents generated from the routes, fixed
 * once the server is ready, and the inner app's static files) are made once and then sent from
 * memory, with a strong `ETag` (`If-None-Match` gets 304); at most {@link MAX_CACHED_ANSWERS} paths,
 * and only 200s, so unknown or odd paths are never kept.
 * Made per request, the 350 KB OpenAPI document cost 7 ms of the event loop each time (its YAML
 * form more): 60 anonymous keep-alive connections asking for it kept every new connection
 * unanswered until they stopped (red-team 2026-12l N2); Swagger UI's 1.7 MB bundle, 16 ms.
 */
export function lazyAppHandler(
  build: () => Promise<FastifyInstance>,
  options: { cacheable?: (path: string) => boolean } = {},
): RouteHandlerMethod {
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
  const cacheable = options.cacheable ?? (() => false);
  // Bounded by MAX_CACHED_ANSWERS; an entry that was not a 200 is removed once known.
  const cached = new Map<string, Promise<CachedAnswer | undefined>>();
  const cachedAnswer = (path: string) => {
    let answer = cached.get(path);
    if (answer === undefined) {
      if (cached.size >= MAX_CACHED_ANSWERS) return Promise.resolve(undefined);
      answer = inner()
        .then((app) => app.inject({ method: 'GET', url: path }))
        .then((made) =>
          made.statusCode === 200 ? toCachedAnswer(made.headers, made.rawPayload) : undefined,
        );
      cached.set(path, answer);
      // Only a 200 is kept: a failed build or an error answer is asked for again next time.
      answer.then(
        (kept) => kept === undefined && cached.delete(path),
        () => cached.delete(path),
      );
    }
    return answer;
  };
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?', 1)[0] ?? request.url;
    if (cacheable(path)) {
      const answer = await cachedAnswer(path);
      if (answer !== undefined) return sendCached(request, reply, answer);
    }
    const app = await inner();
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = request.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    // GET for a HEAD too: the outer route's HEAD handling drops the body and keeps its length
    // (RFC 9110 §9.3.2; the inner app's own HEAD answered Content-Length 0 for Swagger UI's page).
    const answer = await app.inject({ method: 'GET', url: request.url, headers });
    // Our problem+json 404, not the inner app's.
    if (answer.statusCode === 404) return reply.callNotFound();
    reply.code(answer.statusCode);
    copyHeaders(reply, answer.headers);
    // An empty answer (a redirect, 304, HEAD) stays empty: no body, no content type added.
    return reply.send(answer.rawPayload.length === 0 ? undefined : answer.rawPayload);
  };
}

/** Most answers one {@link lazyAppHandler} keeps (its documents and static files are a few). */
export const MAX_CACHED_ANSWERS = 64;

/** A 200 answer kept by {@link lazyAppHandler}: its headers, bytes and strong validator. */
interface CachedAnswer {
  headers: Record<string, string | string[] | number | undefined>;
  payload: Buffer;
  etag: string;
}

function toCachedAnswer(headers: CachedAnswer['headers'], payload: Buffer): CachedAnswer {
  const digest = createHash('sha256').update(payload).digest('base64url').slice(0, 27);
  return { headers, payload, etag: `"${digest}"` };
}

function copyHeaders(
  reply: FastifyReply,
  headers: CachedAnswer['headers'],
  skipped: ReadonlySet<string> = HOP_BY_HOP,
): void {
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !skipped.has(name)) reply.header(name, value);
  }
}

/**
 * True when `If-None-Match` (`held`) names `etag` or is `*`. RFC 9110 §13.1.2: If-None-Match uses
 * the weak comparison, so `W/"x"` matches `"x"` (caches and proxies that re-encode weaken tags).
 */
export function noneMatchHolds(held: string | undefined, etag: string): boolean {
  if (held === undefined) return false;
  return held.split(',').some((item) => {
    const tag = item.trim();
    return tag === '*' || (tag.startsWith('W/') ? tag.slice(2) : tag) === etag;
  });
}

/** Sends a kept answer: 304 when the client holds these bytes (RFC 9110 §13.1.2), else them. */
function sendCached(request: FastifyRequest, reply: FastifyReply, answer: CachedAnswer) {
  reply.header('etag', answer.etag).header('cache-control', 'no-cache');
  // RFC 9110 §15.4.5: a 304 carries the validators and caching, not the representation's
  // metadata (its Content-Type).
  if (noneMatchHolds(request.headers['if-none-match'], answer.etag)) return reply.code(304).send();
  copyHeaders(reply, answer.headers, NOT_KEPT);
  // A HEAD gets the same headers and no body: Fastify's HEAD route drops the payload.
  return reply.code(200).send(answer.payload);
}
