import { type Kysely, PostgresAdapter } from 'kysely';

/** True when a migration runs on PostgreSQL (for the few column types that differ, like identities). */
export function isPostgres(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}
