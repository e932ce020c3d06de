import type { Kysely } from 'kysely';
import { isPostgres } from './dialect.js';

/**
 * Indexes on `audit_events.actor_id` and `audit_events.target_id`. An account's deletion strips
 * the IP and user agent of every entry it is a party to (`forgetPersonalData`: `actor_id = ? or
 * target_id = ?`), inside the deletion's write transaction; with only the time indexes that was a
 * scan of the whole audit log (about 210 ms per million rows on SQLite, holding its one writer's
 * lock, so every login and sign-up waited), and anyone who can sign up can delete an account.
 * The admin audit listing's `actor_id` / `target_id` filters use them too. Each costs one more index
 * entry per audit row written.
 *
 * On PostgreSQL they are online indexes (`../online-indexes.ts`), built concurrently after the
 * migrations' transaction, so logins keep writing audit rows during the build; this migration
 * builds them on SQLite only. (Until 2026-12-06 it built them in the transaction on PostgreSQL too,
 * so databases migrated then have them already.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (isPostgres(db)) return;
  await db.schema.createIndex('audit_events_actor_idx').on('audit_events').column('actor_id').execute();
  await db.schema.createIndex('audit_events_target_idx').on('audit_events').column('target_id').execute();
}

/**
 * Drops the indexes: a deletion scans the audit log again. `if exists`: on PostgreSQL a build
 * may not have happened (start-up stopped between the migration and the online indexes).
 */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('audit_events_target_idx').ifExists().execute();
  await db.schema.dropIndex('audit_events_actor_idx').ifExists().execute();
}
