import type { Kysely } from 'kysely';

/**
 * Failed logins, aggregated: one row per account (or `''` for addresses with no account and
 * usernames that are not addresses) per hour, with a count. An anonymous flood of wrong passwords
 * then adds at most one row per account per hour instead of one row per attempt (issue 8).
 * The attempted username is never stored: people type passwords into username fields.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('login_failures')
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('first_at', 'bigint', (c) => c.notNull())
    .addColumn('last_at', 'bigint', (c) => c.notNull())
    .addColumn('last_ip', 'text')
    .addPrimaryKeyConstraint('login_failures_pk', ['subject_id', 'window_start'])
    .execute();
  await db.schema
    .createIndex('login_failures_window_idx')
    .on('login_failures')
    .column('window_start')
    .execute();
}

/** Drops the failed-login tallies. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('login_failures').execute();
}
