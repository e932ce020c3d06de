import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { migrations } from '../../src/storage/migrations/index.js';
import { openDatabase } from '../../src/storage/open-database.js';

const APP = { demo: { '001-things': { up: async () => {} } } };

// Red-team 2026-12-05 R2: after a newer release migrated the database, an older instance
// (a rollback, or one restarting mid-deploy) failed Kysely's "previously executed migration is
// missing" on every start-up attempt, retried for ever: never ready, never gone.
describe('migrateToLatest on a database a newer release migrated', () => {
  it('runs on the newer schema when every migration of its own has run, and names the newer ones', async () => {
    const database = openDatabase('sqlite::memory:');
    try {
      await migrateToLatest(database, APP);
      await sql`insert into kysely_migration (name, timestamp) values ('999z-next-release', '2027-01-01T00:00:00.000Z')`.execute(
        database.db,
      );
      await sql`insert into gatehouse_app_migration_demo (name, timestamp) values ('002-more', '2027-01-01T00:00:00.000Z')`.execute(
        database.db,
      );
      expect(await migrateToLatest(database, APP)).toEqual({
        applied: [],
        newer: ['999z-next-release', 'demo/002-more'],
      });
    } finally {
      await database.close();
    }
  });

  it('stops with a setting-like error naming both sides when one of its own never ran', async () => {
    const database = openDatabase('sqlite::memory:');
    try {
      await migrateToLatest(database);
      const last = Object.keys(migrations).at(-1) ?? '';
      await sql`delete from kysely_migration where name = ${last}`.execute(database.db);
      await sql`insert into kysely_migration (name, timestamp) values ('999z-next-release', '2027-01-01T00:00:00.000Z')`.execute(
        database.db,
      );
      const failure = migrateToLatest(database);
      await expect(failure).rejects.toThrow(ConfigError);
      await expect(failure).rejects.toThrow(
        new RegExp(`newer release \\(999z-next-release\\) without this release's ${last}`),
      );
    } finally {
      await database.close();
    }
  });
});
