import type { Kysely } from 'kysely';
import { createAuditRetentionStore } from '../storage/audit-retention-store.js';
import type { Schema } from '../storage/schema.js';

/** Events the audit log records. */
export type AuditEventName =
  | 'login_succeeded'
  | 'login_failed'
  | 'logout'
  | 'logout_all'
  | 'session_revoked'
  | 'refresh_token_reused'
  | 'password_changed'
  | 'user_registered'
  | 'role_changed'
  | 'user_disabled'
  | 'user_enabled'
  | 'user_deleted';

/** One audit entry to write. `details` must never contain secrets (passwords, tokens). */
export interface AuditEntry {
  event: AuditEventName;
  actorId?: string | null;
  targetId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  details?: Record<string, string | number | boolean | null>;
}

/** A stored audit entry. */
export interface AuditRecord {
  id: number;
  event: string;
  actorId: string | null;
  targetId: string | null;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown> | null;
  createdAt: number;
}

/** Filters and paging for {@link AuditLog.list}. */
export interface AuditQuery {
  limit: number;
  offset: number;
  event?: string | undefined;
  actorId?: string | undefined;
  targetId?: string | undefined;
  since?: number | undefined;
  until?: number | undefined;
}

/** The security audit trail (OWASP Logging Cheat Sheet: who, what, when, from where). */
export interface AuditLog {
  /** Appends an entry. */
  record(entry: AuditEntry): Promise<void>;
  /** A page of entries, newest first, and the total matching. */
  list(query: AuditQuery): Promise<{ items: AuditRecord[]; total: number }>;
}

/**
 * An {@link AuditLog} stored in the `audit_events` table; failed logins for a wrong password go to
 * the aggregated `login_failures` tally instead.
 */
export function createAuditLog(db: Kysely<Schema>, clock: () => number): AuditLog {
  const retention = createAuditRetentionStore(db);
  return {
    async record(entry) {
      // Wrong passwords are tallied per account and hour, not written one row each: anyone can
      // send them, so one row per attempt would let an anonymous flood grow the database (issue 8).
      if (entry.event === 'login_failed' && entry.details?.reason === 'invalid_credentials') {
        await retention.recordLoginFailure(entry.targetId ?? null, entry.ip ?? null, clock());
        return;
      }
      await db
        .insertInto('audit_events')
        .values({
          event: entry.event,
          actor_id: entry.actorId ?? null,
          target_id: entry.targetId ?? null,
          ip: entry.ip ?? null,
          user_agent: entry.userAgent?.slice(0, 512) ?? null,
          details: entry.details === undefined ? null : JSON.stringify(entry.details),
          created_at: clock(),
        })
        .execute();
    },
    async list(query) {
      let base = db.selectFrom('audit_events');
      if (query.event !== undefined) base = base.where('event', '=', query.event);
      if (query.actorId !== undefined) base = base.where('actor_id', '=', query.actorId);
      if (query.targetId !== undefined) base = base.where('target_id', '=', query.targetId);
      if (query.since !== undefined) base = base.where('created_at', '>=', query.since);
      if (query.until !== undefined) base = base.where('created_at', '<', query.until);
      const [rows, count] = await Promise.all([
        base.selectAll().orderBy('id', 'desc').limit(query.limit).offset(query.offset).execute(),
        base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return {
        items: rows.map((row) => ({
          id: Number(row.id),
          event: row.event,
          actorId: row.actor_id,
          targetId: row.target_id,
          ip: row.ip,
          userAgent: row.user_agent,
          details: row.details === null ? null : (JSON.parse(row.details) as Record<string, unknown>),
          createdAt: Number(row.created_at),
        })),
        total: Number(count.n),
      };
    },
  };
}
