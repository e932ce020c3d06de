import type { AuditRetentionStore } from '../storage/audit-retention-store.js';
import type { AuditRow, AuditRowQuery, AuditStore } from '../storage/audit-store.js';

/** Events the audit log records. */
export type AuditEventName =
  | 'login_succeeded'
  | 'login_failed'
  | 'logout'
  | 'logout_all'
  | 'session_revoked'
  /**
   * `gatehouse revoke-all` (after restoring a backup): every signing key revoked, every session
   * ended, the revocation cut-off raised. No actor (an operator at the console); `details` count the
   * sessions and keys and give the cut-off (`not_before`, epoch ms).
   */
  | 'all_revoked'
  /**
   * A sign-in at `MAX_SESSIONS_PER_ACCOUNT` ended an older session of the account; `targetId` is
   * the account, `details` name the session ended, its client and the new session.
   */
  | 'session_displaced'
  | 'refresh_token_reused'
  | 'password_changed'
  | 'user_registered'
  | 'role_changed'
  | 'user_disabled'
  | 'user_enabled'
  | 'user_deleted'
  | 'password_reset_requested'
  | 'password_reset'
  | 'verification_requested'
  | 'email_verified'
  | 'email_change_requested'
  | 'email_changed'
  | 'users_imported'
  | 'oauth_client_created'
  | 'oauth_client_deleted'
  /** An operator disabled (or enabled again) an OAuth client; `targetId` is the client's id. */
  | 'oauth_client_disabled'
  | 'oauth_client_enabled'
  /** An admin changed an OAuth client's settings (its ID tokens' algorithm); `targetId` is its id. */
  | 'oauth_client_updated'
  | 'oauth_consent_granted'
  | 'oauth_consent_revoked'
  | 'oauth_code_replayed'
  /** A `client_credentials` access token was issued (issue 15); `targetId` is the client's id. */
  | 'client_token_issued'
  /** A `client_credentials` access token was revoked by its client (RFC 7009); `targetId` is the client's id. */
  | 'client_token_revoked'
  | 'mfa_enabled'
  | 'mfa_disabled'
  | 'mfa_recovery_codes_regenerated'
  | 'mfa_recovery_code_used'
  | 'mfa_failed'
  /**
   * The account's run of wrong second-factor codes reached MFA_MAX_CONSECUTIVE_FAILURES (NIST SP
   * 800-63B §5.2.2): codes are refused but from trusted devices; `targetId` is the account, the
   * client facts those of the wrong code that reached the cap, `details.via` its flow.
   */
  | 'mfa_locked'
  | 'mfa_reset'
  | 'passkey_added'
  | 'passkey_removed'
  | 'passkey_failed'
  | 'reauthenticated';

/** One audit entry to write. `details` must never contain secrets (passwords, tokens). */
export interface AuditEntry {
  event: AuditEventName;
  actorId?: string | null;
  targetId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  details?: Record<string, string | number | boolean | null>;
}

/** A stored audit entry: the stored row with its details parsed. */
export type AuditRecord = Omit<AuditRow, 'details'> & { details: Record<string, unknown> | null };

/** Filters and paging for {@link AuditLog.list}: the store's query, passed through as it is. */
export type AuditQuery = AuditRowQuery;

/** The security audit trail (OWASP Logging Cheat Sheet: who, what, when, from where). */
export interface AuditLog {
  /** Appends an entry. */
  record(entry: AuditEntry): Promise<void>;
  /** A page of entries, newest first, and the total matching. */
  list(query: AuditQuery): Promise<{ items: AuditRecord[]; total: number }>;
}

/**
 * An {@link AuditLog} over an {@link AuditStore}: this module decides what an entry looks like
 * (user agent capped, details as JSON, the clock's time); the store holds the SQL. Pass stores
 * built over a transaction to write the entry in the same unit of work as the change it records.
 * Failed logins for a wrong password go to the aggregated tally (`tallies`) instead of a row each.
 */
export function createAuditLog(
  store: AuditStore,
  clock: () => number,
  tallies: Pick<AuditRetentionStore, 'recordLoginFailure'>,
): AuditLog {
  return {
    async record(entry) {
      // Wrong passwords, and passkeys that did not verify, are tallied per account and hour, not
      // written one row each: anyone can send them, so one row per attempt would let an anonymous
      // flood grow the database (issue 8; red-team 2026-12e J3 for passkeys; OWASP Logging Cheat
      // Sheet: logging must not be a way to exhaust storage).
      if (
        (entry.event === 'login_failed' && entry.details?.reason === 'invalid_credentials') ||
        (entry.event === 'passkey_failed' && entry.details?.reason === 'invalid')
      ) {
        await tallies.recordLoginFailure(entry.targetId ?? null, entry.ip ?? null, clock());
        return;
      }
      await store.insertAuditRow({
        event: entry.event,
        actor_id: entry.actorId ?? null,
        target_id: entry.targetId ?? null,
        ip: entry.ip ?? null,
        user_agent: entry.userAgent?.slice(0, 512) ?? null,
        details: entry.details === undefined ? null : JSON.stringify(entry.details),
        created_at: clock(),
      });
    },
    async list(query) {
      const { items, total } = await store.listAuditRows(query);
      return {
        items: items.map((row) => ({
          ...row,
          details: row.details === null ? null : (JSON.parse(row.details) as Record<string, unknown>),
        })),
        total,
      };
    },
  };
}
