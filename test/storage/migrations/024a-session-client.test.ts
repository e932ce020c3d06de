import { describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { migrations as coreMigrations } from '../../../src/storage/migrations/index.js';
import { engines } from '../../support/databases.js';
import { insertOldUser, migrateOnly, withTestDatabase } from '../../support/old-schema.js';

/** The core's migrations before `024a`, as an installation upgrading to it has run them. */
const BEFORE = Object.fromEntries(
  Object.entries(coreMigrations).filter(([name]) => name < '024a-session-client'),
);

describe.each(engines)('migration 024a-session-client on $name', ({ name: engine }) => {
  // The session cap groups sessions by client: an app's existing sessions must count as the app's,
  // or the person's first-party sessions would look like the busiest client and be ended first.
  it('gives bearer sessions their refresh tokens’ client and every other session the first-party one', async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE);
      await insertOldUser(raw, 'owner');
      const session = (id: string, transport: string) => ({
        id,
        user_id: 'owner',
        transport,
        scope: 'me',
        created_at: 1,
        last_used_at: 1,
        expires_at: Number.MAX_SAFE_INTEGER,
        revoked_at: null,
        user_agent: null,
        ip: null,
      });
      await raw
        .insertInto('sessions')
        .values([
          session('app', 'bearer'),
          session('before-009', 'bearer'),
          session('swept', 'bearer'),
          session('browser', 'cookie'),
        ])
        .execute();
      const token = (hash: string, sessionId: string, clientId: string | null) => ({
        token_hash: hash,
        session_id: sessionId,
        created_at: 1,
        expires_at: Number.MAX_SAFE_INTEGER,
        spent_at: null,
        client_id: clientId,
      });
      await raw
        .insertInto('refresh_tokens')
        .values([
          token('h1', 'app', 'client-1'),
          token('h2', 'app', 'client-1'),
          token('h3', 'before-009', null),
        ])
        .execute();

      expect((await migrateToLatest(database)).applied).toContain('024a-session-client');
      const rows = await raw.selectFrom('sessions').select(['id', 'client_id']).orderBy('id').execute();
      expect(rows).toEqual([
        { id: 'app', client_id: 'client-1' },
        { id: 'before-009', client_id: 'gatehouse' },
        { id: 'browser', client_id: 'gatehouse' },
        { id: 'swept', client_id: 'gatehouse' },
      ]);
    });
  });
});
