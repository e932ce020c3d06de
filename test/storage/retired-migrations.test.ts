import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import * as clothes from '../../src/apps/clothes/storage/migrations/002-clothes.js';
import * as rooms from '../../src/apps/dicery/storage/migrations/005-rooms.js';
import * as roomEventSequence from '../../src/apps/dicery/storage/migrations/006-room-event-sequence.js';
import { REFERENCE_APP_MIGRATIONS } from '../../src/server.js';
import { migrateToLatest, RETIRED_CORE_MIGRATIONS } from '../../src/storage/migrate.js';
import * as accounts from '../../src/storage/migrations/001-accounts.js';
import * as audit from '../../src/storage/migrations/003-audit.js';
import * as sessionRevocation from '../../src/storage/migrations/007-session-revocation.js';
import * as loginFailures from '../../src/storage/migrations/008-login-failures.js';
import { migrations as coreMigrations } from '../../src/storage/migrations/index.js';
import { engines } from '../support/databases.js';
import { insertOldUser, migrateOnly, type RawDatabase, withTestDatabase } from '../support/old-schema.js';

/** The core's migrations exactly as they were before the apps moved out (one history table). */
const BEFORE_THE_MOVE = {
  '001-accounts': accounts,
  '002-clothes': clothes,
  '003-audit': audit,
  '005-rooms': rooms,
  '006-room-event-sequence': roomEventSequence,
  '007-session-revocation': sessionRevocation,
  '008-login-failures': loginFailures,
};

/** Core migrations written after the move (009-signing-keys…): the upgrade runs these, and only these. */
const ADDED_SINCE = Object.keys(coreMigrations)
  .filter((name) => !(name in BEFORE_THE_MOVE))
  .sort();

/** App migrations written after the move (`dicery/007-room-seats`…), as the report names them. */
const APPS_ADDED_SINCE = Object.entries(REFERENCE_APP_MIGRATIONS)
  .flatMap(([app, migrations]) => Object.keys(migrations).map((name) => [app, name] as const))
  .filter(([, name]) => !(name in RETIRED_CORE_MIGRATIONS))
  .map(([app, name]) => `${app}/${name}`)
  .sort();

async function historyOf(db: RawDatabase, table: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select name from ${sql.table(table)} order by name`.execute(
    db,
  );
  return rows.map((row) => row.name);
}

describe.each(engines)('retired core migrations on $name', ({ name: engine }) => {
  it('upgrades a database migrated before the move: nothing re-run, no error, data kept', async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE_THE_MOVE);
      await insertOldUser(raw, 'host');
      await raw
        .insertInto('rooms')
        .values({ code: 'AAAA2222', name: 'Table', host_user_id: 'host', state: 'open', created_at: 1 })
        .execute();
      await raw
        .insertInto('clothes')
        .values({
          id: 'c1',
          name: 'Shirt',
          photo_url: 'https://example.com/s.png',
          size: 'm',
          color: 'red',
          created_at: 1,
          last_modified_at: 1,
        })
        .execute();

      const report = await migrateToLatest(database, REFERENCE_APP_MIGRATIONS);
      expect(report.applied).toEqual([...ADDED_SINCE, ...APPS_ADDED_SINCE]);
      expect(await historyOf(raw, 'kysely_migration')).toEqual(Object.keys(coreMigrations).sort());
      expect(await historyOf(raw, 'gatehouse_app_migration_dicery')).toEqual(
        Object.keys(REFERENCE_APP_MIGRATIONS.dicery ?? {}).sort(),
      );
      expect(await historyOf(raw, 'gatehouse_app_migration_clothes')).toEqual(['002-clothes']);
      expect(await raw.selectFrom('rooms').select('name').execute()).toEqual([{ name: 'Table' }]);
      expect(await raw.selectFrom('clothes').select('name').execute()).toEqual([{ name: 'Shirt' }]);
      // Idempotent: the next start finds nothing to move and nothing to run.
      expect((await migrateToLatest(database, REFERENCE_APP_MIGRATIONS)).applied).toEqual([]);
    });
  });

  it('starts a core without the apps on such a database (the rows move regardless)', async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE_THE_MOVE);
      expect((await migrateToLatest(database)).applied).toEqual(ADDED_SINCE);
      expect(await historyOf(raw, 'kysely_migration')).not.toContain('002-clothes');
      // Registering the apps later re-runs none of the moved migrations, only the apps' newer ones.
      expect((await migrateToLatest(database, REFERENCE_APP_MIGRATIONS)).applied).toEqual(APPS_ADDED_SINCE);
    });
  });

  it('migrates a new database with the apps in their own histories', async () => {
    await withTestDatabase(engine, async (database) => {
      const report = await migrateToLatest(database, REFERENCE_APP_MIGRATIONS);
      expect(report.applied).toEqual([
        ...Object.keys(coreMigrations),
        'clothes/002-clothes',
        'dicery/005-rooms',
        'dicery/006-room-event-sequence',
        ...APPS_ADDED_SINCE.filter((name) => name.startsWith('dicery/')),
      ]);
      const core = await historyOf(database.db as unknown as RawDatabase, 'kysely_migration');
      expect(core.filter((name) => name in RETIRED_CORE_MIGRATIONS)).toEqual([]);
    });
  });
});
