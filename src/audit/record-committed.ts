import type { ClientInfo } from '../sessions/session-manager.js';
import { isDatabaseUnavailable } from '../storage/open-database.js';
import type { AuditEntry, AuditLog } from './audit-log.js';

/**
 * Who is asking, as a core service needs to know it: the client facts its audit entries and
 * sessions record, and where to report an audit entry lost after its change committed (the
 * Fastify adapter passes the request's logger; the core has none of its own).
 */
export interface Caller {
  /**
   * IP and user agent, recorded on sessions and audit entries. The IP is required: password
   * logins are throttled by it.
   */
  client: ClientInfo & { ip: string };
  /** Told when an audit write fails after the change it records has committed. */
  onAuditLost(error: unknown, entry: AuditEntry): void;
}

/**
 * Records the audit entry of something that has already happened (a session started or revoked,
 * a password changed, an account created). The change committed before this runs, so a failing
 * audit write must not turn it into an error: the client would retry a change that took effect (a
 * second sign-up answers "email taken", a retried password change counts as a wrong guess). The
 * loss goes to {@link Caller.onAuditLost} instead, for the operator to notice.
 *
 * Only for what has no transaction of its own to carry the entry (a stateless token issued, a
 * sign-up; a refusal, a wrong password or code, goes through {@link recordRefusal}). A change to an account's security
 * state writes its entry inside the change's transaction instead, so a process that dies between
 * the commit and this write cannot leave it unrecorded: admin changes
 * (`src/accounts/user-admin-service.ts`), sign-ins (`SessionStartOptions.audit`), logouts and
 * ended sessions (`SessionManager.revokeSessions`' `audit`), a reused refresh token's revocation
 * (`SessionManager.refresh`'s `reuseAudit`), RFC 7009 revocations (`revokeToken`'s `audit`),
 * remembered consents, disconnected apps and replayed codes' revocations (`AuthorizationServer`), re-authentications, password changes
 * (`AccountService.updateProfile`), resets and links (`src/accounts/account-lifecycle.ts`).
 */
export function recordCommitted(
  audit: Pick<AuditLog, 'record'>,
  caller: Caller,
  entry: AuditEntry,
): Promise<void> {
  return record(audit, caller, entry, () => false);
}

/**
 * Records the audit entry of a refusal (a wrong password, code or passkey). Nothing committed, so
 * when the database cannot take the entry (down, or read-only after a failover) the refusal is not
 * given at all: the error propagates (503 `DATABASE_UNAVAILABLE`, as the right answer's sign-in
 * gets), rather than a refusal that leaves no trace. Before, a guesser's attempts during a
 * failover went unaudited, each logging a stack at error level (operator red-team 2026-12h F2).
 * Any other failure goes to {@link Caller.onAuditLost}, as in {@link recordCommitted}.
 */
export function recordRefusal(
  audit: Pick<AuditLog, 'record'>,
  caller: Caller,
  entry: AuditEntry,
): Promise<void> {
  return record(audit, caller, entry, isDatabaseUnavailable);
}

/** Writes `entry`; a failure is rethrown when `rethrows` says so, else told to `onAuditLost`. */
async function record(
  audit: Pick<AuditLog, 'record'>,
  caller: Caller,
  entry: AuditEntry,
  rethrows: (error: unknown) => boolean,
): Promise<void> {
  try {
    await audit.record(entry);
  } catch (error) {
    if (rethrows(error)) throw error;
    caller.onAuditLost(error, entry);
  }
}
