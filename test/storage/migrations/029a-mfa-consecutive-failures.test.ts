import { Migrator } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createMfaStore } from '../../../src/mfa/storage/mfa-store.js';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { migrations as coreMigrations } from '../../../src/storage/migrations/index.js';
import { engines } from '../../support/databases.js';
import { insertOldUser, migrateOnly, withTestDatabase } from '../../support/old-schema.js';

const NAME = '029a-mfa-consecutive-failures';

/** The core's migrations before `029a`, as an installation upgrading to it has run them. */
const BEFORE = Object.fromEntries(Object.entries(coreMigrations).filter(([name]) => name < NAME));
const PREVIOUS_HEAD = Object.keys(BEFORE).sort().at(-1) ?? '';

describe.each(engines)('migration 029a-mfa-consecutive-failures on $name', ({ name: engine }) => {
  it('starts every existing authenticator with no wrong codes, counts them, and migrates down and up', async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE);
      await insertOldUser(raw, 'owner');
      await raw
        .insertInto('mfa_totp')
        .values({ user_id: 'owner', secret: 'sealed', created_at: 1, confirmed_at: 2, last_step: 7 })
        .execute();

      expect((await migrateToLatest(database)).applied).toContain(NAME);
      const store = createMfaStore(database.db);
      expect(await store.findTotp('owner')).toMatchObject({ lastStep: 7, consecutiveFailures: 0 });
      expect(await store.chargeConsecutiveFailure('owner', 100)).toEqual({ charged: true, count: 1 });

      const migrator = new Migrator({
        db: database.db,
        provider: { getMigrations: async () => coreMigrations },
      });
      expect((await migrator.migrateTo(PREVIOUS_HEAD)).error).toBeUndefined();
      const columns = async () => {
        const tables = await database.db.introspection.getTables();
        return tables.find((table) => table.name === 'mfa_totp')?.columns.map((column) => column.name);
      };
      expect(await columns()).not.toContain('consecutive_failures');
      // The authenticator itself is kept.
      expect(await raw.selectFrom('mfa_totp').select(['user_id', 'last_step']).execute()).toEqual([
        { user_id: 'owner', last_step: expect.anything() },
      ]);

      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      expect(await columns()).toContain('consecutive_failures');
      expect((await createMfaStore(database.db).findTotp('owner'))?.consecutiveFailures).toBe(0);
    });
  });
});
