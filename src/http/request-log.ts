import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';

/** Levels at which the incoming request gets a line of its own. */
const VERBOSE_LEVELS = new Set(['debug', 'trace']);

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
    } else {
      // The connection was already destroyed when the answer ended: the client went away, or the
      // server's send timeout ended a client that stopped reading (red-team G5). Node still
      // emits 'finish' then, so only the socket tells.
      const message = request.raw.socket?.destroyed === true ? 'request aborted' : 'request completed';
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, message);
    }
  }
}
