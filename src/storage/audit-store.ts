import type { Insertable, Kysely } from 'kysely';
import { precompiledQuery } from './precompiled-query.js';
import type { AuditEventsTable, Schema } from './schema.js';

/** A row to append to the audit log, already shaped (details serialized, fields truncated). */
export type NewAuditRow = Omit<Insertable<AuditEventsTable>, 'id'>;

/** A stored audit row, as read back. */
export interface AuditRow {
  id: number;
  event: string;
  actorId: string | null;
  targetId: string | null;
  ip: string | null;
  userAgent: string | null;
  /** JSON text as stored, or null. */
  details: string | null;
  createdAt: number;
}

/** Filters and paging for {@link AuditStore.listAuditRows}. */
export interface AuditRowQuery {
  limit: number;
  offset: number;
  event?: string | undefined;
  actorId?: string | undefined;
  targetId?: string | undefined;
  since?: number | undefined;
  until?: number | undefined;
}

/**
 * The SQL of the audit log. Build it over a transaction (`createAuditStore(trx)`) to make an
 * audited change and its audit row one unit of work.
 */
export interface AuditStore {
  /** Appends one row. */
  insertAuditRow(row: NewAuditRow): Promise<void>;
  /** A page of rows, newest first, and the total matching. */
  listAuditRows(query: AuditRowQuery): Promise<{ items: AuditRow[]; total: number }>;
}

// Every login appends one row: compiled once, not rebuilt per call (see precompiledQuery).
const insertAuditEvent = precompiledQuery<Schema, Omit<AuditEventsTable, 'id'>>(
  ['event', 'actor_id', 'target_id', 'ip', 'user_agent', 'details', 'created_at'],
  (db, row) => db.insertInto('audit_events').values(row),
);

/** An {@link AuditStore} over Kysely; the same code serves SQLite and PostgreSQL. */
export function createAuditStore(db: Kysely<Schema>): AuditStore {
  return {
    async insertAuditRow(row) {
      // An absent optional column is stored as NULL, as the column's (absent) default would.
      await insertAuditEvent(db, {
        event: row.event,
        actor_id: row.actor_id ?? null,
        target_id: row.target_id ?? null,
        ip: row.ip ?? null,
        user_agent: row.user_agent ?? null,
        details: row.details ?? null,
        created_at: row.created_at,
      });
    },
    async listAuditRows(query) {
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
          details: row.details,
          createdAt: Number(row.created_at),
        })),
        total: Number(count.n),
      };
    },
  };
}
