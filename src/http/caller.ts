import type { FastifyRequest } from 'fastify';
import type { Caller } from '../audit/record-committed.js';
import { clientInfo } from './client-info.js';

/**
 * The {@link Caller} a core service sees for `request`: its client facts, and its logger for audit
 * entries lost after a commit (logged at error level with the event name, never the entry's
 * details, for the operator to notice).
 */
export function callerOf(request: FastifyRequest): Caller {
  return {
    client: clientInfo(request),
    onAuditLost(error, entry) {
      request.log.error(
        { err: error, event: entry.event },
        'audit entry lost: the change it records has committed',
      );
    },
  };
}
