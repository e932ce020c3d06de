import { describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { migrations as coreMigrations } from '../../../src/storage/migrations/index.js';
import { engines } from '../../support/databases.js';
import { insertOldUser, migrateOnly, withTestDatabase } from '../../support/old-schema.js';

/** The core's migrations before `022a`, as an installation upgrading to it has run them. */
const BEFORE = Object.fromEntries(
  Object.entries(coreMigrations).filter(([name]) => name < '022a-email-change-session'),
);

describe.each(engines)('migration 022a-email-change-session on $name', ({ name: engine }) => {
  // A pending email change from before the upgrade names no session, so the rule "the link lives
  // only as long as the session that asked" could not hold for it: the upgrade drops it.
  it('drops pending email changes (they name no session) and keeps the other links, unbound', async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE);
      await insertOldUser(raw, 'owner');
      const link = (purpose: string, email: string) => ({
        token_hash: `hash-${purpose}`,
        user_id: 'owner',
        purpose,
        email_key: email,
        email,
        created_at: 1,
        expires_at: Number.MAX_SAFE_INTEGER,
      });
      await raw
        .insertInto('account_tokens')
        .values([
          link('change_email', 'intruder@example.com'),
          link('reset_password', 'owner@example.com'),
          link('verify_email', 'owner@example.com'),
        ])
        .execute();

      expect((await migrateToLatest(database)).applied).toContain('022a-email-change-session');
      const rows = await raw
        .selectFrom('account_tokens')
        .select(['purpose', 'session_id'])
        .orderBy('purpose')
        .execute();
      expect(rows).toEqual([
        { purpose: 'reset_password', session_id: null },
        { purpose: 'verify_email', session_id: null },
      ]);
    });
  });
});
