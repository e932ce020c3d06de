import { type Kysely, sql } from 'kysely';
import type { Schema } from '../../src/storage/schema.js';

/** Turns a login's last write into an outage, and back. */
export interface LoginFault {
  /** From now on, every write of a `login_succeeded` audit row fails as an outage does. */
  inject(): Promise<void>;
  /** Removes the fault (idempotent). */
  heal(): Promise<void>;
}

/**
 * A fault in the last write of a login's transaction: its `login_succeeded` audit row, written
 * after whatever the login spent, the session and its tokens. PostgreSQL raises SQLSTATE 57014
 * (what a statement timeout raises); SQLite's triggers cannot raise a driver error code, so its
 * trigger raises the message better-sqlite3 gives for a closed connection. Both are what
 * `isDatabaseUnavailable` recognizes, so the adapter answers 503 DATABASE_UNAVAILABLE, as for a
 * real outage, and the transaction rolls back.
 */
export function createLoginFault(db: Kysely<Schema>, engine: 'sqlite' | 'postgres'): LoginFault {
  return {
    async inject() {
      if (engine === 'postgres') {
        await sql
          .raw(
            `create or replace function gh_test_login_fault() returns trigger language plpgsql as $$
             begin raise exception 'injected outage' using errcode = '57014'; end $$`,
          )
          .execute(db);
        await sql
          .raw(
            `create trigger gh_test_login_fault before insert on audit_events for each row
             when (new.event = 'login_succeeded') execute function gh_test_login_fault()`,
          )
          .execute(db);
      } else {
        await sql
          .raw(
            `create trigger gh_test_login_fault before insert on audit_events
             when new.event = 'login_succeeded'
             begin select raise(abort, 'The database connection is not open'); end`,
          )
          .execute(db);
      }
    },
    async heal() {
      await sql
        .raw(
          engine === 'postgres'
            ? 'drop trigger if exists gh_test_login_fault on audit_events'
            : 'drop trigger if exists gh_test_login_fault',
        )
        .execute(db);
    },
  };
}
