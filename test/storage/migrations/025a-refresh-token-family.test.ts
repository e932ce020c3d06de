import { describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { migrations as coreMigrations } from '../../../src/storage/migrations/index.js';
import { engines } from '../../support/databases.js';
import { insertOldUser, migrateOnly, withTestDatabase } from '../../support/old-schema.js';

/** The core's migrations before `025a`, as an installation upgrading to it has run them. */
const BEFORE = Object.fromEntries(
  Object.entries(coreMigrations).filter(([name]) => name < '025a-refresh-token-family'),
);

describe.each(engines)('migration 025a-refresh-token-family on $name', ({ name: engine }) => {
  // Every refresh token that exists before it is of the random-only layout: a rotation must never
  // prune those rows, as nothing would recognise their tokens once gone.
  it('marks every existing refresh token untagged, and new rows default to it too', async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE);
      await insertOldUser(raw, 'owner');
      await raw
        .insertInto('sessions')
        .values({
          id: 's',
          user_id: 'owner',
          transport: 'bearer',
          scope: 'me',
          created_at: 1,
          last_used_at: 1,
          expires_at: Number.MAX_SAFE_INTEGER,
          revoked_at: null,
          user_agent: null,
          ip: null,
        })
        .execute();
      const token = (hash: string, spentAt: number | null) => ({
        token_hash: hash,
        session_id: 's',
        created_at: 1,
        expires_at: Number.MAX_SAFE_INTEGER,
        spent_at: spentAt,
        client_id: 'gatehouse',
      });
      await raw
        .insertInto('refresh_tokens')
        .values([token('spent', 2), token('current', null)])
        .execute();

      expect((await migrateToLatest(database)).applied).toContain('025a-refresh-token-family');
      const rows = await raw
        .selectFrom('refresh_tokens')
        .select(['token_hash', 'tagged'])
        .orderBy('token_hash')
        .execute();
      expect(rows.map((row) => ({ ...row, tagged: Number(row.tagged) }))).toEqual([
        { token_hash: 'current', tagged: 0 },
        { token_hash: 'spent', tagged: 0 },
      ]);
    });
  });
});
