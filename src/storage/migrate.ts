import { type Migration, Migrator } from 'kysely';
import { ConfigError } from '../errors.js';
import { migrations } from './migrations/index.js';
import type { Database } from './open-database.js';

/** Result of {@link migrateToLatest}: the names applied by this call. */
export interface MigrationReport {
  /** Migrations run now, in order; an app's are named `<app>/<name>`. */
  applied: string[];
}

/**
 * Migrations of embedding apps, by app name (lower-case letters, digits and dashes, starting with
 * a letter): `{ dicery: { '001-tables': { up, down } } }`. Names within an app sort lexically, so
 * give them a numeric prefix.
 */
export type AppMigrations = Readonly<Record<string, Readonly<Record<string, Migration>>>>;

const APP_NAME = /^[a-z][a-z0-9-]{0,39}$/;

/**
 * Kysely's history table of one app. Each app keeps its own history, so its names can never
 * collide with the core's or another app's, and each history stays strictly ordered: the core can
 * add `007-…` after an app has migrated without Kysely refusing an "unordered" migration, which
 * one shared table would force us to allow (and so lose the order check for the core too).
 */
function appMigrationTable(app: string): string {
  return `gatehouse_app_migration_${app.replaceAll('-', '_')}`;
}

/** Fails fast, naming the app, on names that cannot become a table name. */
function checkAppMigrations(apps: AppMigrations): void {
  const problems = Object.keys(apps)
    .filter((app) => !APP_NAME.test(app))
    .map(
      (app) =>
        `migrations: app name ${JSON.stringify(app)} must be 1-40 lower-case letters, digits or dashes, starting with a letter`,
    );
  if (problems.length > 0) throw new ConfigError(problems);
}

async function run(migrator: Migrator, prefix: string): Promise<string[]> {
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    throw new Error(`Database migration failed${prefix === '' ? '' : ` (app ${prefix})`}`, { cause: error });
  }
  return (results ?? [])
    .filter((r) => r.status === 'Success')
    .map((r) => (prefix === '' ? r.migrationName : `${prefix}/${r.migrationName}`));
}

/**
 * Brings the schema to the latest migration: the core's first, then each app's (so an app's
 * tables may reference the core's, e.g. `users.id`). Safe to call on every start-up: applied
 * migrations are skipped, and Kysely takes a lock so two instances starting together do not race.
 */
export async function migrateToLatest(
  database: Database,
  apps: AppMigrations = {},
): Promise<MigrationReport> {
  checkAppMigrations(apps);
  const applied = await run(
    new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } }),
    '',
  );
  for (const [app, appMigrations] of Object.entries(apps)) {
    const migrator = new Migrator({
      db: database.db,
      provider: { getMigrations: async () => ({ ...appMigrations }) },
      migrationTableName: appMigrationTable(app),
    });
    applied.push(...(await run(migrator, app)));
  }
  return { applied };
}
