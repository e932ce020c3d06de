import { type Kysely, sql } from 'kysely';
import type { AuditEventName } from '../../src/audit/audit-log.js';
import type { Schema } from '../../src/storage/schema.js';

/** Turns the write of one kind of audit row into an outage, and back. */
export interface AuditFault {
  /** From now on, every write of an audit row of the event fails as an outage does. */
  inject(): Promise<void>;
  /** Removes the fault (idempotent). */
  heal(): Promise<void>;
}

/**
 * A fault in the write of an `event` audit row: for a change that writes its row last in its
 * transaction (a login's `login_succeeded`, after whatever it spent, the session and its tokens),
 * an outage after every other write of it. PostgreSQL raises SQLSTATE 57014
 * (what a statement timeout raises); SQLite's triggers cannot raise a driver error code, so its
 * trigger raises the message better-sqlite3 gives for a closed connection. Both are what
 * `isDatabaseUnavailable` recognizes, so the adapter answers 503 DATABASE_UNAVAILABLE, as for a
 * real outage, and the transaction rolls back.
 */
export function createAuditFault(
  db: Kysely<Schema>,
  engine: 'sqlite' | 'postgres',
  event: AuditEventName = 'login_succeeded',
): AuditFault {
  // A name from the AuditEventName union (letters and underscores), so quoting it is enough.
  const literal = `'${event.replace(/[^a-z_]/g, '')}'`;
  return createWriteFault(db, engine, {
    write: 'insert',
    table: 'audit_events',
    when: `new.event = ${literal}`,
  });
}

/**
 * A fault in every `write` of `table`'s rows that `when` (an SQL condition over `new` and `old`,
 * valid on both engines) holds for, raised as {@link createAuditFault} raises it.
 */
export function createWriteFault(
  db: Kysely<Schema>,
  engine: 'sqlite' | 'postgres',
  fault: { write: 'insert' | 'update'; table: string; when: string },
): AuditFault {
  const { write, table, when } = fault;
  return {
    async inject() {
      if (engine === 'postgres') {
        await sql
          .raw(
            `create or replace function gh_test_write_fault() returns trigger language plpgsql as $$
             begin raise exception 'injected outage' using errcode = '57014'; end $$`,
          )
          .execute(db);
        await sql
          .raw(
            `create trigger gh_test_write_fault before ${write} on ${table}
             for each row when (${when}) execute function gh_test_write_fault()`,
          )
          .execute(db);
      } else {
        await sql
          .raw(
            `create trigger gh_test_write_fault before ${write} on ${table} when ${when}
             begin select raise(abort, 'The database connection is not open'); end`,
          )
          .execute(db);
      }
    },
    async heal() {
      await sql
        .raw(
          engine === 'postgres'
            ? `drop trigger if exists gh_test_write_fault on ${table}`
            : 'drop trigger if exists gh_test_write_fault',
        )
        .execute(db);
    },
  };
}
