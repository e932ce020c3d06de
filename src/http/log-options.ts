import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { ErrorCode } from '../errors.js';
import { PROBLEM_JSON, problemTitle } from './error-handler.js';
import { CORE_ERROR_STATUSES } from './error-status.js';

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
 * What the HTTP layer's own answers say, by code (statuses in `CORE_ERROR_STATUSES`). Never a byte
 * of the request: nothing it sent is echoed back.
 */
const LAYER_DETAILS = {
  BAD_REQUEST: 'The request could not be parsed as HTTP.',
  REQUEST_TIMEOUT: 'The request was not received in time.',
  URI_TOO_LONG: 'The request-target is longer than this server accepts.',
  HEADERS_TOO_LARGE: 'The request header fields are larger than this server accepts.',
  NOT_IMPLEMENTED: 'The request method is not one this server implements.',
  EXPECTATION_FAILED: 'The only expectation this server meets is Expect: 100-continue.',
} as const satisfies Partial<Record<ErrorCode, string>>;

type LayerCode = keyof typeof LAYER_DETAILS;

/** The status, title and problem+json body (RFC 9457) of an answer of the HTTP layer. */
function layerProblem(code: LayerCode): { status: number; title: string; body: string } {
  const status = CORE_ERROR_STATUSES[code];
  const title = problemTitle(status);
  const body = JSON.stringify({ type: 'about:blank', title, status, detail: LAYER_DETAILS[code], code });
  return { status, title, body };
}

/** Node's parser error, with the fields its `clientError` event documents. */
type ParserError = Error & { code?: string; bytesParsed?: unknown; rawPacket?: unknown };

/**
 * Replaces Fastify's default `clientError` handler, which logs the parser error at trace level
 * with its `rawPacket` (the raw request bytes: bearer tokens, cookies, form passwords). Answers
 * problem+json with `Connection: close` and logs only the error's code: 408 `REQUEST_TIMEOUT`,
 * 414 `URI_TOO_LONG` when the header limit overflowed in the request line (RFC 9112 §3), 431
 * `HEADERS_TOO_LARGE` when it overflowed in the header fields, 501 `NOT_IMPLEMENTED` for a method
 * Node's parser does not know (RFC 9110 §9.1), and 400 `BAD_REQUEST` for anything else.
 */
export function handleClientError(this: FastifyInstance, error: ParserError, socket: Socket): void {
  // Node's documented contract: a reset or destroyed socket needs nothing more.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, title, body } = layerProblem(clientErrorCode(error));
  this.log.debug({ clientError: { code: error.code ?? 'UNKNOWN', status } }, 'client error');
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${title}\r\nConnection: close\r\nContent-Type: ${PROBLEM_JSON}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    return;
  }
  socket.destroy();
}

/**
 * Node's HTTP server's `checkExpectation` listener: a request whose `Expect` is anything but
 * `100-continue` (which Node meets itself) gets 417 problem+json (RFC 9110 §10.1.1) and the
 * connection is closed, its body unread. Without a listener Node answers a bare 417 with an empty
 * body. The request reaches no route and no hook: Node emits this instead of `request`.
 */
export function refuseExpectation(_request: IncomingMessage, response: ServerResponse): void {
  const { status, body } = layerProblem('EXPECTATION_FAILED');
  response.writeHead(status, {
    connection: 'close',
    'content-type': PROBLEM_JSON,
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
}

function clientErrorCode(error: ParserError): LayerCode {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'REQUEST_TIMEOUT';
    case 'HPE_HEADER_OVERFLOW':
      return overflowedInRequestLine(error.rawPacket, error.bytesParsed)
        ? 'URI_TOO_LONG'
        : 'HEADERS_TOO_LARGE';
    case 'HPE_INVALID_METHOD':
      return startsWithMethod(error.rawPacket, error.bytesParsed) ? 'NOT_IMPLEMENTED' : 'BAD_REQUEST';
    default:
      return 'BAD_REQUEST';
  }
}

/**
 * A request line so far: a method (llhttp knows upper-case ones only; `M-SEARCH` has a hyphen), a
 * space and target bytes, no line end.
 */
const OPEN_REQUEST_LINE = /^[A-Z-]+ \S*$/;

/** RFC 9110 §5.6.2 `token`, which a method is (§9.1). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * True when Node's header limit overflowed in the request line: Node counts the request-target
 * and the header fields against one limit (`maxHeaderSize`), and its error says no more than
 * `bytesParsed` in `rawPacket`, the bytes of the one read being parsed. So it is the request line
 * when the parser stopped on the target's end (a space and the version follow; a header value
 * ends at CR or LF, a name at `:`), or when the line it stopped in starts in this read, after a
 * line end or at the read's start, as a method, a space and target bytes. A line that began in an
 * earlier read (a long target, or a long cookie, arriving in several reads) cannot be told: it
 * stays 431, as it was, rather than call a large cookie a long URI.
 */
function overflowedInRequestLine(packet: unknown, offset: unknown): boolean {
  const line = stoppedLine(packet, offset);
  if (line === undefined) return false;
  if (line.packet.toString('latin1', line.end, line.end + 6) === ' HTTP/') return true;
  return OPEN_REQUEST_LINE.test(line.packet.toString('latin1', line.start, line.end));
}

/**
 * True when the line the parser refused starts with a method-shaped token and a space, so an
 * unknown method (501) rather than bytes that are not HTTP at all, such as a TLS handshake (400).
 */
function startsWithMethod(packet: unknown, offset: unknown): boolean {
  const line = stoppedLine(packet, offset);
  if (line === undefined) return false;
  const space = line.packet.indexOf(0x20, line.start);
  return space > line.start && TOKEN.test(line.packet.toString('latin1', line.start, space));
}

/**
 * The line of `packet` the parser stopped in, up to `offset` (the error's `bytesParsed`): from
 * after the last LF before it, else from the packet's start. Undefined when Node gave neither.
 */
function stoppedLine(
  packet: unknown,
  offset: unknown,
): { packet: Buffer; start: number; end: number } | undefined {
  if (!Buffer.isBuffer(packet) || typeof offset !== 'number') return undefined;
  if (!Number.isInteger(offset) || offset < 0 || offset > packet.length) return undefined;
  const start = offset === 0 ? 0 : packet.lastIndexOf(0x0a, offset - 1) + 1;
  return { packet, start, end: offset };
}
