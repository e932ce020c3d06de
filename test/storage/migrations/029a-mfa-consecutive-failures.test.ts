import { describe, expect, it } from 'vitest';
import { createMfaStore } from '../../../src/mfa/storage/mfa-store.js';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { engines } from '../../support/databases.js';
import {
  columnsOf,
  insertOldUser,
  migrateDownAndUp,
  migrateOnly,
  migrationsBefore,
  withTestDatabase,
} from '../../support/old-schema.js';

const NAME = '029a-mfa-consecutive-failures';

const { before: BEFORE, previous: PREVIOUS_HEAD } = migrationsBefore(NAME);

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

      await migrateDownAndUp(database, PREVIOUS_HEAD, async () => {
        expect(await columnsOf(database, 'mfa_totp')).not.toContain('consecutive_failures');
        // The authenticator itself is kept.
        expect(await raw.selectFrom('mfa_totp').select(['user_id', 'last_step']).execute()).toEqual([
          { user_id: 'owner', last_step: expect.anything() },
        ]);
      });
      expect(await columnsOf(database, 'mfa_totp')).toContain('consecutive_failures');
      expect((await createMfaStore(database.db).findTotp('owner'))?.consecutiveFailures).toBe(0);
    });
  });
});
