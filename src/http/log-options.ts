import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { PROBLEM_JSON } from './error-handler.js';

/** Log paths that must never be written (OWASP Logging Cheat Sheet: no credentials in logs). */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.current_password',
  '*.refresh_token',
  '*.access_token',
  '*.device_token',
];

/** Where log lines go: anything with pino's `write(line)`. @default standard output */
export interface LogStream {
  write(line: string): void;
}

/** Error properties that may be logged; everything else an error carries is dropped. */
interface LoggedError {
  [key: string]: unknown;
  type: string;
  message: string;
  stack: string;
  code?: string | undefined;
  statusCode?: number | undefined;
  cause?: LoggedError | undefined;
}

/** How deep a `cause` chain is followed; a cycle or a very long chain stays bounded. */
const MAX_CAUSE_DEPTH = 4;

/**
 * Serializes an error with an allowlist of properties: type, message, stack, code, statusCode and
 * (recursively) cause. pino's standard serializer copies every enumerable property instead, and
 * Node's HTTP parser errors carry `rawPacket`, the request's raw bytes, bearer token and cookies
 * included (issue 8; OWASP Logging Cheat Sheet: never log session ids, access tokens, passwords).
 * A database driver's error may likewise carry the query's parameters.
 */
export function serializeError(error: unknown, depth = 0): LoggedError {
  // Anything thrown that is not an Error is logged by its type only: its content is unknown.
  if (!(error instanceof Error)) return { type: typeof error, message: '[not an Error]', stack: '' };
  const { code, statusCode } = error as { code?: unknown; statusCode?: unknown };
  const logged: LoggedError = {
    type: error.constructor.name,
    message: error.message,
    stack: error.stack ?? '',
    code: typeof code === 'string' ? code : undefined,
    statusCode: typeof statusCode === 'number' ? statusCode : undefined,
  };
  if (error.cause !== undefined && depth < MAX_CAUSE_DEPTH)
    logged.cause = serializeError(error.cause, depth + 1);
  return logged;
}

/** Query parameters whose values are credentials or one-time codes, whatever route they reach. */
const SECRET_QUERY_KEY = /pass|token|secret|session|csrf|auth|key|code|otp|ticket/i;

/**
 * Query parameters that carry whom a request is about (OpenID Connect's `login_hint`, the admin
 * search's `email_prefix`): personal data the request log keeps no need for (red-team 2026-12k P2;
 * GDPR art. 5(1)(c)). A value holding an `@` is redacted too, whatever its name.
 */
const PERSONAL_QUERY_KEY = /email|login_hint|username|prefix/i;
const ADDRESS_LIKE = /@|%40/i;

/**
 * The request as logged: method, path, query with credential-like values redacted, client address.
 * Never headers (Authorization, Cookie) and never the body.
 */
export function serializeRequest(request: {
  method: string;
  url: string;
  ip?: string | undefined;
  host?: string | undefined;
}): Record<string, unknown> {
  return {
    method: request.method,
    url: redactQuery(request.url),
    host: request.host,
    remoteAddress: request.ip,
  };
}

function redactQuery(url: string): string {
  const mark = url.indexOf('?');
  if (mark === -1) return url;
  const query = url
    .slice(mark + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const key = eq === -1 ? pair : pair.slice(0, eq);
      let name = key;
      try {
        name = decodeURIComponent(key);
      } catch {
        // A malformed escape is logged as sent; only its value could be secret.
      }
      if (eq === -1) return pair;
      const redacted =
        SECRET_QUERY_KEY.test(name) || PERSONAL_QUERY_KEY.test(name) || ADDRESS_LIKE.test(pair.slice(eq + 1));
      return redacted ? `${key}=[redacted]` : pair;
    })
    .join('&');
  return `${url.slice(0, mark)}?${query}`;
}

/**
 * Fastify logger options: `level`, redaction of {@link REDACTED_LOG_PATHS}, and serializers that
 * never write raw bytes, headers, bodies or arbitrary error properties, at any level.
 */
export function createLoggerOptions(level: string, stream?: LogStream) {
  return {
    level,
    redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
    serializers: {
      err: (error: unknown) => serializeError(error),
      req: serializeRequest,
      res: (reply: { statusCode: number }) => ({ statusCode: reply.statusCode }),
    },
    ...(stream === undefined ? {} : { stream }),
  };
}

/**
 * Replaces Fastify's default `clientError` handler, which logs the parser error at trace level
 * with its `rawPacket` (the raw request bytes: bearer tokens, cookies, form passwords). Answers
 * the same statuses (408, 431, 400) as problem+json and logs only the error's code.
 */
export function handleClientError(
  this: FastifyInstance,
  error: Error & { code?: string },
  socket: Socket,
): void {
  // Node's documented contract: a reset or destroyed socket needs nothing more.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const status =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  this.log.debug({ clientError: { code: error.code ?? 'UNKNOWN', status } }, 'client error');
  if (socket.writable) {
    const title = STATUS_CODES[status] ?? 'Bad Request';
    const body = JSON.stringify({
      type: 'about:blank',
      title,
      status,
      detail: 'The request could not be parsed as HTTP.',
      code: 'BAD_REQUEST',
    });
    socket.end(
      `HTTP/1.1 ${status} ${title}\r\nConnection: close\r\nContent-Type: ${PROBLEM_JSON}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    return;
  }
  socket.destroy();
}
