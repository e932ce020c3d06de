import { Migrator } from 'kysely';
import { describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { migrations as coreMigrations } from '../../../src/storage/migrations/index.js';
import { createOAuthGrantStore } from '../../../src/storage/oauth-grant-store.js';
import { engines } from '../../support/databases.js';
import { insertOldUser, migrateOnly, withTestDatabase } from '../../support/old-schema.js';

const NAME = '030a-code-redirect-uri-given';

/** The core's migrations before `030a`, as an installation upgrading to it has run them. */
const BEFORE = Object.fromEntries(Object.entries(coreMigrations).filter(([name]) => name < NAME));
const PREVIOUS_HEAD = Object.keys(BEFORE).sort().at(-1) ?? '';

describe.each(engines)('migration 030a-code-redirect-uri-given on $name', ({ name: engine }) => {
  it('keeps a live code exchangeable without redirect_uri, records new ones, and migrates down and up', async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE);
      await insertOldUser(raw, 'owner');
      await raw
        .insertInto('oauth_clients')
        .values({
          client_id: 'app',
          name: 'App',
          secret_hash: null,
          redirect_uris: '["https://app.example/cb"]',
          post_logout_redirect_uris: '[]',
          grant_types: '["authorization_code","refresh_token"]',
          scopes: '["openid"]',
          created_at: 1,
        })
        .execute();
      const oldCode = {
        code_hash: 'old',
        client_id: 'app',
        user_id: 'owner',
        redirect_uri: 'https://app.example/cb',
        scope: 'openid',
        code_challenge: 'c'.repeat(43),
        nonce: null,
        auth_time: 1,
        amr: 'pwd',
        created_at: 1,
        expires_at: 61_000,
        used_at: null,
        replayed_at: null,
        session_id: null,
      };
      await raw.insertInto('oauth_codes').values(oldCode).execute();

      expect((await migrateToLatest(database)).applied).toContain(NAME);
      const grants = createOAuthGrantStore(database.db);
      // Issued before the column existed: the lenient answer it was issued under.
      expect(await grants.findCode('old')).toMatchObject({ redirectUriGiven: false });

      const migrator = new Migrator({
        db: database.db,
        provider: { getMigrations: async () => coreMigrations },
      });
      expect((await migrator.migrateTo(PREVIOUS_HEAD)).error).toBeUndefined();
      const columns = async () => {
        const tables = await database.db.introspection.getTables();
        return tables.find((table) => table.name === 'oauth_codes')?.columns.map((column) => column.name);
      };
      expect(await columns()).not.toContain('redirect_uri_given');
      expect(await raw.selectFrom('oauth_codes').select('code_hash').execute()).toEqual([
        { code_hash: 'old' },
      ]);

      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      expect(await columns()).toContain('redirect_uri_given');
    });
  });
});
