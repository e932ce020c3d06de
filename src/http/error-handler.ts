import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  type AuthChallenge,
  ConfigError,
  type ErrorCode,
  type FieldError,
  GatehouseError,
  type OAuthErrorCode,
  OAuthTokenError,
  oauthErrorText,
} from '../errors.js';
import { createLogSampler, type LogSampler } from '../lib/log-sampler.js';
import {
  isDatabaseUnavailable,
  isForeignKeyViolation,
  isTransactionConflict,
} from '../storage/open-database.js';
import { type AllowedMethods, trackAllowedMethods } from './allowed-methods.js';
import { CORE_ERROR_STATUSES, type ErrorStatusRegistry, processStatusOf } from './error-status.js';

/** RFC 9457 media type. */
export const PROBLEM_JSON = 'application/problem+json; charset=utf-8';

/** The body of an `application/problem+json` response (RFC 9457 §3). */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  417: 'Expectation Failed',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** The title of a problem of `status` (RFC 9110's reason phrase), `Error` for one not listed. */
export function problemTitle(status: number): string {
  return TITLES[status] ?? 'Error';
}

/** The codes a non-Gatehouse error's 4xx `statusCode` maps to; any other 4xx is BAD_REQUEST. */
const HOST_CLIENT_ERRORS: Readonly<Record<number, ErrorCode>> = {
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  410: 'GONE',
  413: 'BODY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'UNPROCESSABLE_CONTENT',
  429: 'TOO_MANY_REQUESTS',
};

declare module '../errors.js' {
  interface GatehouseError<Code extends string = ErrorCode> {
    /**
     * The HTTP status of the error's code (set by the Fastify adapter): what Fastify's default
     * error handler, and a host's own, answer with when Gatehouse's handler is not the one in use
     * (`errorHandler: false`, or a host's `setErrorHandler` after the plugin). 500 for a code no
     * registry knows.
     */
    readonly statusCode: number;
    /** `Retry-After` and `WWW-Authenticate` as the error asks for them (Fastify's default handler sends these). */
    readonly headers: Record<string, string> | undefined;
  }
}

// The core's errors carry no HTTP (the core knows none); the adapter gives them a status and the
// headers they ask for, read where Fastify and most error handlers look (`statusCode`, `headers`).
// Before, any other handler than Gatehouse's answered every refusal 500, and logged it with its
// stack as a server error (red-team 2026-12j E3).
Object.defineProperties(GatehouseError.prototype, {
  statusCode: {
    configurable: true,
    get(this: GatehouseError<string>): number {
      return processStatusOf(this.code) ?? 500;
    },
  },
  headers: {
    configurable: true,
    get(this: GatehouseError<string>): Record<string, string> | undefined {
      const headers = headersOf(this);
      return Object.keys(headers).length > 0 ? headers : undefined;
    },
  },
});

/** The realm of every challenge Gatehouse sends (RFC 9110 §11.5). */
export const REALM = 'gatehouse';

/** Renders a challenge as a `WWW-Authenticate` value (RFC 9110 §11.6.1, RFC 6750 §3). */
export function renderChallenge(challenge: AuthChallenge): string {
  const parts = [`${challenge.scheme} realm="${REALM}"`];
  if (challenge.error !== undefined) parts.push(`error="${challenge.error}"`);
  if (challenge.description !== undefined)
    parts.push(`error_description="${oauthErrorText(challenge.description)}"`);
  if (challenge.scope !== undefined) parts.push(`scope="${challenge.scope.join(' ')}"`);
  if (challenge.maxAge !== undefined) parts.push(`max_age=${challenge.maxAge}`);
  return parts.join(', ');
}

/** The headers an error's semantic fields call for: `Retry-After`, `WWW-Authenticate`. */
export function headersOf(error: {
  retryAfterSeconds: number | undefined;
  challenge: AuthChallenge | undefined;
}): Record<string, string> {
  const headers: Record<string, string> = {};
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  if (error.challenge !== undefined) headers['www-authenticate'] = renderChallenge(error.challenge);
  return headers;
}

/**
 * The status of `error`'s code: the registry's (core and registered app codes), else the core's.
 * A code nobody registered is a bug in the app that raised it: 500, never a guess.
 */
export function statusOf(error: GatehouseError<string>, registry?: ErrorStatusRegistry): number {
  const code: string = error.code;
  return registry?.statusOf(code) ?? CORE_STATUS_BY_CODE.get(code) ?? 500;
}

const CORE_STATUS_BY_CODE: ReadonlyMap<string, number> = new Map(Object.entries(CORE_ERROR_STATUSES));

/** Sends `error` as problem+json with the headers its fields call for. */
export function sendProblem(
  reply: FastifyReply,
  error: GatehouseError<string>,
  registry?: ErrorStatusRegistry,
): FastifyReply {
  const status = statusOf(error, registry);
  const body: ProblemDetails = {
    // RFC 9457 §4.2.1: "about:blank" says the status code is the whole story; our `code` refines it.
    type: 'about:blank',
    title: problemTitle(status),
    status,
    detail: error.message,
    code: error.code,
    ...error.extra,
  };
  if (error.errors !== undefined) body.errors = error.errors;
  // A route whose pages are HTML declares its error statuses as strings (`GET`/`POST /authorize`,
  // the logout pages); the problem sent there by the error handler was serialized by that string
  // schema, and the body was "[object Object]" (a stress run's finding). Serialized as JSON there.
  if (declaresStringBody(reply, status)) reply.serializer((payload: unknown) => JSON.stringify(payload));
  return reply.code(status).headers(headersOf(error)).type(PROBLEM_JSON).send(body);
}

/** Whether the route answering `reply` declares its `status` response as a string (an HTML page). */
function declaresStringBody(reply: FastifyReply, status: number): boolean {
  const responses: unknown = reply.request.routeOptions.schema?.response;
  if (typeof responses !== 'object' || responses === null) return false;
  const declared: unknown = (responses as Record<string, unknown>)[String(status)];
  return (
    typeof declared === 'object' && declared !== null && (declared as { type?: unknown }).type === 'string'
  );
}

/** RFC 5789 §3.1 `Accept-Patch`: the one patch format the PATCH routes read (JSON, merge semantics). */
export const ACCEPT_PATCH = 'application/json';

/** Seconds a client is told to wait after a dependency outage (RFC 9110 §10.2.3 `Retry-After`). */
export const OUTAGE_RETRY_AFTER_SECONDS = 2;

/** `Retry-After` of a transaction ended by a conflict: the other transaction is done by then. */
export const CONFLICT_RETRY_AFTER_SECONDS = 1;

/**
 * Sends a 503 on the token endpoint in the RFC 6749 JSON shape OAuth clients parse, with the
 * `temporarily_unavailable` code (RFC 6749 §4.1.2.1, the registry's code for this condition)
 * plus our stable `code` member and its `Retry-After`.
 */
export function sendOAuthUnavailable(reply: FastifyReply, error: GatehouseError<string>): FastifyReply {
  return reply
    .code(503)
    .headers(headersOf(error))
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .type('application/json; charset=utf-8')
    .send({
      error: 'temporarily_unavailable',
      error_description: oauthErrorText(error.message),
      code: error.code,
    });
}

/** Statuses of the OAuth error codes that are not 400 (RFC 6749 §5.2 makes 400 the rule). */
const OAUTH_ERROR_STATUS: Partial<Record<OAuthErrorCode, number>> = {
  invalid_client: 401,
  temporarily_unavailable: 429,
  // `server_error` is registered for the authorization endpoint (RFC 6749 §4.1.2.1, §11.4); an
  // OAuth client parsing a token-endpoint 500 finds a registered code rather than no `error`.
  server_error: 500,
};

/** The one HTTP authentication scheme of the OAuth endpoints (`client_secret_basic`, RFC 6749 §2.3.1). */
const CLIENT_CHALLENGE: AuthChallenge = { scheme: 'Basic' };

/**
 * Sends an RFC 6749 §5.2 token-endpoint error. `invalid_client` is 401 with a `Basic` challenge when
 * the client tried the `Authorization` header (§5.2: MUST, in the scheme it used; Basic is the only
 * one taken), and 400 otherwise (form or no client authentication; §5.2's rule status). A 401
 * must carry a challenge (RFC 9110 §15.5.2), and client libraries (oauth4webapi, openid-client) read
 * a 401 with one as that challenge and drop the body's `invalid_client`: the 400 keeps the error
 * readable for `client_secret_post` and public clients (red-team 2026-12n S4).
 */
export function sendOAuthError(reply: FastifyReply, error: OAuthTokenError): FastifyReply {
  let status = OAUTH_ERROR_STATUS[error.error] ?? 400;
  let challenge = error.challenge;
  if (error.error === 'invalid_client') {
    const headerAuthentication = reply.request.headers.authorization !== undefined;
    status = headerAuthentication ? 401 : 400;
    challenge = headerAuthentication ? CLIENT_CHALLENGE : undefined;
  }
  return reply
    .code(status)
    .headers(headersOf({ retryAfterSeconds: error.retryAfterSeconds, challenge }))
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .type('application/json; charset=utf-8')
    .send({
      ...error.extra,
      error: error.error,
      error_description: oauthErrorText(error.message),
      ...(error.code === undefined ? {} : { code: error.code }),
    });
}

interface AjvIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Turns Fastify's schema validation errors into field errors that name the field. */
function fieldErrors(
  error: FastifyError & { validation?: AjvIssue[]; validationContext?: string },
): FieldError[] {
  // One bad value of a union (`string | null`) yields an error per branch plus one for `anyOf`;
  // the first says what is wrong, so keep one error per field.
  const seen = new Set<string>();
  return (error.validation ?? [])
    .map((issue) => {
      const path = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
      if (issue.keyword === 'additionalProperties') {
        const extra = String(issue.params.additionalProperty);
        return { field: path === '' ? extra : `${path}.${extra}`, message: 'is not an accepted field' };
      }
      if (issue.keyword === 'required') {
        const missing = String(issue.params.missingProperty);
        return { field: path === '' ? missing : `${path}.${missing}`, message: 'is required' };
      }
      return {
        field: path === '' ? (error.validationContext ?? 'body') : path,
        // Ajv's "must match pattern" quotes the regular expression (a room code's ran to 40
        // characters of character classes): say what is wrong, and where the form is described.
        message:
          issue.keyword === 'pattern'
            ? 'is not in the expected form (see its description at /docs)'
            : (issue.message ?? 'is invalid'),
      };
    })
    .filter((item) => !seen.has(item.field) && Boolean(seen.add(item.field)));
}

/** Maps any thrown error to the problem it should be for the client (never leaking internals). */
export function toGatehouseError(error: FastifyError & { validation?: AjvIssue[] }): GatehouseError<string> {
  if (error instanceof GatehouseError) return error;
  // A dependency outage is the server's problem but not a bug: 503 + Retry-After, never a 500.
  if (isDatabaseUnavailable(error)) {
    return new GatehouseError('DATABASE_UNAVAILABLE', 'The database is unavailable; try again shortly.', {
      retryAfterSeconds: OUTAGE_RETRY_AFTER_SECONDS,
      cause: error,
    });
  }
  // A deadlock or serialization failure rolled the whole transaction back: the request can be run
  // again as it is. 503 + Retry-After (RFC 9110 §15.6.4), not a 500: nothing is broken. Not retried
  // here: a service's work may have done what cannot run twice (a mail queued, a counter spent).
  if (isTransactionConflict(error)) {
    return new GatehouseError('TRANSACTION_CONFLICT', 'A concurrent change got in the way; try again.', {
      retryAfterSeconds: CONFLICT_RETRY_AFTER_SECONDS,
      cause: error,
    });
  }
  // The safety net under the sites that check for it themselves: a parent row deleted by a
  // concurrent request (an account, a room, an app) between a read and the write that names it.
  // Nothing was written; a 409 with its own code, not a 500 (helper audit 2026-12-04).
  if (isForeignKeyViolation(error)) {
    return new GatehouseError(
      'CONCURRENT_DELETION',
      'Something this request needs was deleted meanwhile; nothing was changed.',
      { cause: error },
    );
  }
  if (error.validation !== undefined) {
    const errors = fieldErrors(error);
    const detail = errors.map((e) => `${e.field} ${e.message}`).join('; ');
    return new GatehouseError('VALIDATION_FAILED', detail || 'The request is invalid.', { errors });
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GatehouseError('INVALID_JSON', 'The request body is not valid JSON.');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatehouseError('BODY_TOO_LARGE', 'The request body is too large.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatehouseError('UNSUPPORTED_MEDIA_TYPE', 'This content type is not accepted here.');
    // RFC 9112 §6.3: a body that does not match its Content-Length is a malformed request (400),
    // not a media-type problem.
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GatehouseError('BAD_REQUEST', 'The request body does not match its Content-Length.');
    case 'FST_ERR_RATE_LIMIT':
      return new GatehouseError('TOO_MANY_REQUESTS', 'Too many requests; slow down.');
    default:
      break;
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    // An embedding app's (or a plugin's) own refusal keeps its status, so its clients can tell a
    // 403 or a 409 from a malformed request; the detail stays generic (its message may hold
    // internals). A status without a code of its own answers 400 (red-team 2026-12j E4).
    const code = HOST_CLIENT_ERRORS[status] ?? 'BAD_REQUEST';
    return new GatehouseError(
      code,
      'The request could not be processed.',
      // RFC 9110 §15.5.2: a 401 carries a challenge.
      status === 401 ? { challenge: { scheme: 'Bearer' } } : {},
    );
  }
  return new GatehouseError('INTERNAL_ERROR', 'Something went wrong on our side.', { cause: error });
}

/** Paths whose errors follow RFC 6749 §5.2 instead of RFC 9457 (OAuth clients parse `error`). */
export const OAUTH_ROUTES: ReadonlySet<string> = new Set(['/token', '/revoke', '/introspect']);

/**
 * The RFC 6749 §5.2 form of any problem raised on an OAuth endpoint (malformed body, wrong content
 * type, body too large, rate limit, bug), keeping our `code` and headers (`Retry-After`): an OAuth
 * client that finds no `error` member may take the answer for a token (issue 11: Authlib did).
 * Every client error is `invalid_request` with status 400, as §5.2 prescribes for the endpoint.
 */
export function toOAuthError(problem: GatehouseError<string>, status: number): OAuthTokenError {
  const options = {
    code: problem.code,
    ...(problem.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: problem.retryAfterSeconds }),
    ...(problem.challenge === undefined ? {} : { challenge: problem.challenge }),
  };
  if (status === 429) return new OAuthTokenError('temporarily_unavailable', problem.message, options);
  // RFC 6749 §5.2: credentials that no longer hold (an account deleted while its sign-in was in
  // flight, red-team 2026-12d I10) are an invalid grant, as a wrong password is.
  if (problem.code === 'INVALID_CREDENTIALS' || problem.code === 'CONCURRENT_DELETION')
    return new OAuthTokenError('invalid_grant', problem.message, options);
  if (status >= 500) return new OAuthTokenError('server_error', problem.message, options);
  return new OAuthTokenError('invalid_request', problem.message, options);
}

/** One "database unavailable" or "refused: unavailable" line per code per this long, at most. */
export const UNAVAILABLE_LOG_EVERY_MS = 10_000;

/** The field a sampled line carries when it stands for lines held back since the last one. */
function heldBack(held: number): { alsoRefusedSinceLastLine?: number } {
  return held > 0 ? { alsoRefusedSinceLastLine: held } : {};
}

/**
 * Installs the one error handler and the 404 handler: problem+json with a stable `code` for
 * everything, RFC 6749 JSON on the token endpoint, no stack traces ever. Statuses come from
 * `registry` (the core's codes and those apps registered).
 */
export function installErrorHandling(
  app: FastifyInstance,
  registry: ErrorStatusRegistry,
  sampler: LogSampler = createLogSampler(UNAVAILABLE_LOG_EVERY_MS),
): void {
  // The 404 handler first: Fastify takes one per prefix, and an app that set its own gets a
  // ConfigError before its error handler is replaced (red-team 2026-12o O8).
  installNotFoundHandler(app, registry);
  installErrorHandler(app, registry, sampler);
}

/**
 * The error handler of {@link installErrorHandling} alone, for `app` and the contexts under it:
 * what Gatehouse's own routes answer with even when the host keeps its own handlers
 * (`errorHandler: false`), since their response schemas fit no other handler's body.
 */
export function installErrorHandler(
  app: FastifyInstance,
  registry: ErrorStatusRegistry,
  sampler: LogSampler = createLogSampler(UNAVAILABLE_LOG_EVERY_MS),
): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof OAuthTokenError) return sendOAuthError(reply, error);
    // The client closed its connection before its body was complete: this request's own stream
    // failed (`aborted` / ECONNRESET, the very code a lost database connection has), and it was
    // taken for an outage: a "database unavailable" warning any anonymous client could write at
    // will, mixed into a real outage's count (red-team 2026-12m M1). The client's malformed
    // request (400; it is gone, so no one reads the answer), told apart by the request's own
    // stream, not by the error's shape (an upstream HTTP answer cut short looks the same).
    let problem =
      request.raw.errored === error
        ? new GatehouseError('BAD_REQUEST', 'The request ended before its body was complete.')
        : toGatehouseError(error);
    // An embedding app's own 401 that set its own challenge (Basic for a metrics page) keeps it.
    if (problem !== error && problem.challenge !== undefined && reply.hasHeader('www-authenticate'))
      problem = new GatehouseError(problem.code, problem.message);
    // RFC 5789 §2.2: a PATCH in a format not taken says which one is.
    if (problem.code === 'UNSUPPORTED_MEDIA_TYPE' && request.method === 'PATCH')
      reply.header('accept-patch', ACCEPT_PATCH);
    const status = statusOf(problem, registry);
    if (problem.code === 'DATABASE_UNAVAILABLE') {
      // Expected during an outage, without a stack, and one line per interval however many
      // requests it refuses (each is in the request log anyway): at 400 requests a second, one
      // line each was ≈ 1 800 lines in 8 s (red-team 2026-12h). Not under `err`: pino's error
      // serializer prints a plain object there as "[not an Error]", and the operator lost the
      // reason (fault review, third part).
      const held = sampler.take(problem.code);
      if (held !== undefined) {
        request.log.warn(
          { error: error.message, code: error.code, ...heldBack(held) },
          'database unavailable',
        );
      }
    } else if (
      (problem.code === 'SERVICE_UNAVAILABLE' || problem.code === 'EXTERNAL_ISSUER_UNAVAILABLE') &&
      problem.cause === undefined
    ) {
      // A deliberate refusal (the password-hash queue full, an instance-wide stream or export cap)
      // or a remote issuer's outage: expected under load, and one a flood of cheap requests
      // produces per request. Warned without a stack: logged as errors, each refused login wrote a
      // ≈ 1.5 KB stack trace (found by the SIGTERM fault test's flood), a log flood aimed at the
      // operator. Sampled as above, per code. One with a cause (a module that failed to load)
      // keeps the error and its stack.
      const held = sampler.take(problem.code);
      if (held !== undefined) {
        request.log.warn(
          { error: error.message, code: problem.code, ...heldBack(held) },
          'refused: unavailable',
        );
      }
    } else if (problem.code === 'EXTERNAL_KEY_UNKNOWN') {
      // Any client can send a token with a random kid: the client's matter, not the operator's.
      request.log.debug({ code: problem.code }, 'external token with a key not held yet');
    } else if (problem.code === 'TRANSACTION_CONFLICT') {
      // Rare and harmless to the data (rolled back), but a lock order to find: warned, no stack.
      request.log.warn({ error: error.message, code: error.code }, 'transaction conflict');
    } else if (problem.code === 'CONCURRENT_DELETION') {
      // Most likely a missing existence check (or a wrong id, a bug): logged as an error with the
      // stack and the route, so the net does not hide it.
      request.log.error({ err: error, route: request.routeOptions.url }, 'write named a row that is gone');
    } else if (registry.statusOf(problem.code) === undefined) {
      // An app raised a code it never registered: answered 500 (its own code and message, no
      // stack), logged so the missing `app.gatehouseErrors.register` is found.
      request.log.error({ err: error }, `unregistered error code ${problem.code}`);
    } else if (status >= 500) {
      request.log.error({ err: error }, 'unhandled error');
    }
    if (OAUTH_ROUTES.has(request.routeOptions.url ?? '')) {
      if (status === 503) return sendOAuthUnavailable(reply, problem);
      return sendOAuthError(reply, toOAuthError(problem, status));
    }
    return sendProblem(reply, problem, registry);
  });
}

/** The 404 handler of {@link installErrorHandling}: 404, or 405 / 204 with `Allow` for a known path. */
function installNotFoundHandler(app: FastifyInstance, registry: ErrorStatusRegistry): void {
  const allowedMethods = trackAllowedMethods(app);
  try {
    app.setNotFoundHandler(notFoundHandler(allowedMethods, registry));
  } catch (error) {
    // Fastify's plain "Not found handler already set" said nothing of the way out.
    throw new ConfigError([
      `gatehousePlugin: the app has its own 404 handler (${(error as Error).message}); register the ` +
        "plugin with `errorHandler: false` to keep it (Gatehouse's routes keep Gatehouse's errors)",
    ]);
  }
}

/** The 404 handler itself (see {@link installNotFoundHandler}). */
function notFoundHandler(allowedMethods: AllowedMethods, registry: ErrorStatusRegistry) {
  return (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '';
    // RFC 9110 §9.3.2: HEAD answers as GET would, Content-Length included, so its text names GET.
    const method = request.method === 'HEAD' ? 'GET' : request.method;
    // RFC 9110 §9.3.7: `OPTIONS *` asks about the server as a whole.
    if (request.method === 'OPTIONS' && path === '*')
      return reply
        .code(204)
        .header('allow', [...allowedMethods.all(), 'OPTIONS'].join(', '))
        .send();
    const allowed = allowedMethods.at(path);
    // A route of this method that found nothing to serve (`reply.callNotFound()`: a missing asset)
    // is a 404 like any unknown path.
    if (allowed.length === 0 || allowed.includes(request.method))
      return sendProblem(reply, new GatehouseError('NOT_FOUND', `No route for ${method} ${path}`), registry);
    // OPTIONS on a path served (not a CORS preflight: those are answered before routing) names its
    // methods (§9.3.7), as does the 405 for any other method it does not take (§15.5.6); both name
    // OPTIONS, which this handler answers. RFC 5789 §3.1: where PATCH is, Accept-Patch says in what.
    const allow = [...allowed, 'OPTIONS'].join(', ');
    reply.header('allow', allow);
    if (allowed.includes('PATCH')) reply.header('accept-patch', ACCEPT_PATCH);
    if (request.method === 'OPTIONS') return reply.code(204).send();
    return sendProblem(
      reply,
      new GatehouseError('METHOD_NOT_ALLOWED', `${method} is not allowed at ${path}: ${allow}.`),
      registry,
    );
  };
}
