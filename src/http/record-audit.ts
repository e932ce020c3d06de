import type { FastifyRequest } from 'fastify';
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';

/**
 * Records the audit entry of something that has already happened (a session started or revoked,
 * a password changed, an account created). The change committed before this runs, so a failing
 * audit write must not turn it into a 5xx: the client would retry a change that took effect (a
 * second sign-up answers "email taken", a retried password change counts as a wrong guess). The
 * lost entry is logged at error level with its event name, for the operator to notice.
 *
 * Changes that must commit together with their audit row (admin changes) write it inside their
 * transaction instead (`src/accounts/user-admin-service.ts`), and so does a successful login
 * (`SessionStartOptions.audit`: session, tokens and entry are one write transaction, issue 10).
 */
export async function recordAudit(
  request: FastifyRequest,
  audit: AuditLog,
  entry: AuditEntry,
): Promise<void> {
  try {
    await audit.record(entry);
  } catch (error) {
    request.log.error(
      { err: error, event: entry.event },
      'audit entry lost: the change it records has committed',
    );
  }
}
