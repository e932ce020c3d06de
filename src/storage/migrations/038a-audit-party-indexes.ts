import type { Kysely } from 'kysely';

/**
 * Indexes on `audit_events.actor_id` and `audit_events.target_id`. An account's deletion strips
 * the IP and user agent of every entry it is a party to (`forgetPersonalData`: `actor_id = ? or
 * target_id = ?`), inside the deletion's write transaction; with only the time indexes that was a
 * scan of the whole audit log (about 210 ms per million rows on SQLite, holding its one writer's
 * lock, so every login and sign-up waited), and anyone who can sign up can delete an account.
 * The admin audit listing's `actor_id` / `target_id` filters use them too. Each costs one more index
 * entry per audit row written.
 *
 * Built in the migration's transaction (PostgreSQL's `CREATE INDEX CONCURRENTLY` cannot run in one):
 * on a large audit log, writes to it wait for the build while the first upgraded instance starts.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('audit_events_actor_idx').on('audit_events').column('actor_id').execute();
  await db.schema.createIndex('audit_events_target_idx').on('audit_events').column('target_id').execute();
}

/** Drops the indexes: a deletion scans the audit log again. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('audit_events_target_idx').execute();
  await db.schema.dropIndex('audit_events_actor_idx').execute();
}
