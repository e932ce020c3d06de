import { describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { createOAuthGrantStore } from '../../../src/storage/oauth-grant-store.js';
import { engines } from '../../support/databases.js';
import {
  columnsOf,
  insertOldUser,
  migrateDownAndUp,
  migrateOnly,
  migrationsBefore,
  withTestDatabase,
} from '../../support/old-schema.js';

const NAME = '030a-code-redirect-uri-given';

const { before: BEFORE, previous: PREVIOUS_HEAD } = migrationsBefore(NAME);

describe.each(engines)('migration 030a-code-redirect-uri-given on $name', ({ name: engine }) => {
  it('treats a code issued before it leniently (redirect_uri may be left out at /token), and migrates down and up', async () => {
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

      await migrateDownAndUp(database, PREVIOUS_HEAD, async () => {
        expect(await columnsOf(database, 'oauth_codes')).not.toContain('redirect_uri_given');
        expect(await raw.selectFrom('oauth_codes').select('code_hash').execute()).toEqual([
          { code_hash: 'old' },
        ]);
      });
      expect(await columnsOf(database, 'oauth_codes')).toContain('redirect_uri_given');
    });
  });
});
