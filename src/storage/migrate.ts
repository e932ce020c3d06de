import { Migrator } from 'kysely';
import { migrations } from './migrations/index.js';
import type { Database } from './open-database.js';

/** Result of {@link migrateToLatest}: the names applied by this call. */
export interface MigrationReport {
  /** Migrations run now, in order. */
  applied: string[];
}

/**
 * Brings the schema to the latest migration. Safe to call on every start-up: applied migrations
 * are skipped, and Kysely takes a lock so two instances starting together do not race.
 */
export async function migrateToLatest(database: Database): Promise<MigrationReport> {
  const migrator = new Migrator({
    db: database.db,
    provider: { getMigrations: async () => migrations },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    throw new Error('Database migration failed', { cause: error });
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
