import { describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { migrations as coreMigrations } from '../../../src/storage/migrations/index.js';
import { engines } from '../../support/databases.js';
import { insertOldUser, migrateOnly, withTestDatabase } from '../../support/old-schema.js';

/** The core's migrations before `026a`, as an installation upgrading to it has run them. */
const BEFORE = Object.fromEntries(
  Object.entries(coreMigrations).filter(([name]) => name < '026a-several-account-links'),
);

describe.each(engines)('migration 026a-several-account-links on $name', ({ name: engine }) => {
  it('keeps every pending link, then lets an account hold several reset links but one email change', async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE);
      await insertOldUser(raw, 'owner');
      const link = (hash: string, purpose: string) => ({
        token_hash: hash,
        user_id: 'owner',
        purpose,
        email_key: 'owner@example.com',
        email: 'owner@example.com',
        created_at: 1,
        expires_at: Number.MAX_SAFE_INTEGER,
        session_id: purpose === 'change_email' ? 'some-session' : null,
      });
      await raw
        .insertInto('account_tokens')
        .values([
          link('reset-1', 'reset_password'),
          link('change-1', 'change_email'),
          link('verify-1', 'verify_email'),
        ])
        .execute();
      // Before the upgrade, a second reset link for the account breaks the unique constraint.
      await expect(
        raw.insertInto('account_tokens').values(link('reset-0', 'reset_password')).execute(),
      ).rejects.toThrow();

      expect((await migrateToLatest(database)).applied).toContain('026a-several-account-links');
      await raw.insertInto('account_tokens').values(link('reset-2', 'reset_password')).execute();
      await expect(
        raw.insertInto('account_tokens').values(link('change-2', 'change_email')).execute(),
      ).rejects.toThrow();
      const rows = await raw
        .selectFrom('account_tokens')
        .select(['token_hash', 'session_id'])
        .orderBy('token_hash')
        .execute();
      expect(rows).toEqual([
        { token_hash: 'change-1', session_id: 'some-session' },
        { token_hash: 'reset-1', session_id: null },
        { token_hash: 'reset-2', session_id: null },
        { token_hash: 'verify-1', session_id: null },
      ]);
      // The rebuilt table still goes with its account.
      await raw.deleteFrom('users').where('id', '=', 'owner').execute();
      expect(await raw.selectFrom('account_tokens').select('token_hash').execute()).toEqual([]);
    });
  });
});
