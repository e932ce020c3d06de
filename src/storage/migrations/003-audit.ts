import type { Kysely } from 'kysely';
import { isPostgres } from './dialect.js';

/** The audit log. The id is an identity column on PostgreSQL and a rowid alias on SQLite. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const postgres = isPostgres(db);
  await db.schema
    .createTable('audit_events')
    .addColumn('id', postgres ? 'bigserial' : 'integer', (c) =>
      postgres ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('actor_id', 'text')
    .addColumn('target_id', 'text')
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('details', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_events_created_idx').on('audit_events').column('created_at').execute();
  await db.schema
    .createIndex('audit_events_event_idx')
    .on('audit_events')
    .columns(['event', 'created_at'])
    .execute();
}

/** Drops the audit log. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_events').execute();
}
