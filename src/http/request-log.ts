import { type FastifyBaseLogger, type FastifyReply, type FastifyRequest, LogController } from 'fastify';

/** Levels at which the incoming request gets a line of its own. */
const VERBOSE_LEVELS = new Set(['debug', 'trace']);

/** pino's standard level values; `info` lines are written at these levels and below. */
const INFO_ENABLED = new Set(['trace', 'debug', 'info']);

/** Options of {@link OneLineRequestLog}. */
export interface OneLineRequestLogOptions {
  /**
   * The server logs with Gatehouse's own logger options (`createLoggerOptions`), whose serializers
   * write only safe fields, so the "request completed" line may skip pino's redaction pass. Leave
   * unset for any other logger: its redaction (say, of `req.remoteAddress`) must keep applying.
   * @default false
   */
  ownLoggerOptions?: boolean;
}

/**
 * One log line per request instead of Fastify's two: the request is logged with its outcome
 * ("request completed": method, path with secrets redacted, client address, status, time; or
 * "request aborted" when the connection was gone before the answer ended) when
 * the response is done, and "incoming request" only at `debug` and below, where following a
 * request that never completes is worth a second line. At the default `info` level this halves
 * the per-request logging cost, the largest avoidable cost of `GET /users/me` in the profile
 * (issue 10, bench/README.md). Everything else (errors, not-found, stream errors) is Fastify's.
 */
export class OneLineRequestLog extends LogController {
  readonly #ownLoggerOptions: boolean;
  /** Per instance logger, its child without redaction (see `completedLogger`). */
  readonly #unredacted = new WeakMap<FastifyBaseLogger, FastifyBaseLogger>();

  constructor(options: OneLineRequestLogOptions = {}) {
    super();
    this.#ownLoggerOptions = options.ownLoggerOptions === true;
  }

  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request) || !VERBOSE_LEVELS.has(request.log.level)) return;
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (this.isLogDisabled(request)) return;
    if (error) {
      reply.log.error(
        { req: request, res: reply, err: error, responseTime: reply.elapsedTime },
        'request errored',
      );
    } else if (request.raw.socket?.destroyed === true) {
      // The connection was already destroyed when the answer ended: the client went away, or the
      // server's send timeout ended a client that stopped reading (red-team G5). Node still
      // emits 'finish' then, so only the socket tells. Rare: the ordinary logger's line.
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request aborted');
    } else if (!this.#ownLoggerOptions || !INFO_ENABLED.has(request.log.level)) {
      // Another logger (or a level beyond pino's standard ones) decides for itself.
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
    } else {
      // The same line, byte for byte (the request id first, as the per-request child's binding
      // would put it), from a child that skips redaction. With Gatehouse's logger options every
      // field of this line comes from an allowlist serializer (`serializeRequest`: method, path
      // with credential-like query values redacted, host, address; `res`: the status; a number),
      // so no redacted path (`*.password`, `req.headers.authorization`, …) can occur in it, and
      // the redaction pass could only cost: @pinojs/redact re-parses every path for every key of
      // every line, ≈ 40 % of what production logging adds to `GET /users/me` (bench/README.md).
      this.#completedLogger(request.server.log).info(
        {
          [this.requestIdLogLabel]: request.id,
          req: request,
          res: reply,
          responseTime: reply.elapsedTime,
        },
        'request completed',
      );
    }
  }

  /**
   * A child of `logger` with no redaction and the lowest level: whether the line is written is
   * decided by the request's own logger's level, which follows level changes.
   */
  #completedLogger(logger: FastifyBaseLogger): FastifyBaseLogger {
    let child = this.#unredacted.get(logger);
    if (child === undefined) {
      child = logger.child({}, { redact: { paths: [] }, level: 'trace' });
      this.#unredacted.set(logger, child);
    }
    return child;
  }
}
