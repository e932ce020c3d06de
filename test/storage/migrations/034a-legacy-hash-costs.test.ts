import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createLegacyHashCostStore } from '../../../src/storage/legacy-hash-cost-store.js';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import { engines } from '../../support/databases.js';
import {
  migrateDownAndUp,
  migrateOnly,
  migrationsBefore,
  withTestDatabase,
} from '../../support/old-schema.js';

const NAME = '034a-legacy-hash-costs';
const { before: BEFORE, previous: PREVIOUS_HEAD } = migrationsBefore(NAME);

const FIXTURES: { hash: string }[] = JSON.parse(
  readFileSync(new URL('../../fixtures/legacy-hashes/hashes.json', import.meta.url), 'utf8'),
).hashes;
const fixture = (prefix: string) => FIXTURES.find((row) => row.hash.startsWith(prefix))?.hash ?? '';

const user = (id: string, passwordHash: string) => ({
  id,
  email: `${id}@example.com`,
  email_key: `${id}@example.com`,
  full_name: null,
  password_hash: passwordHash,
  role: 'user',
  is_active: 1,
  created_at: 1,
  updated_at: 1,
});

describe.each(engines)('migration 034a-legacy-hash-costs on $name', ({ name: engine }) => {
  it('records the costliest class of each family among accounts imported before, reading page by page', async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE);
      // 1 200 imported bcrypt-4 accounts: the bcrypt-12 one sorts last, on the second page.
      const many = Array.from({ length: 1200 }, (_, index) =>
        user(`a-${String(index).padStart(5, '0')}`, fixture('$2b$04$')),
      );
      await raw.insertInto('users').values(many).execute();
      await raw
        .insertInto('users')
        .values([
          user('zz-bcrypt-12', fixture('$2b$12$')),
          user('b-django', fixture('pbkdf2_sha256$260000$')),
          user('b-passlib', fixture('$pbkdf2-sha256$29000$')),
          // Ours, and hashes no version reads: no class.
          user('b-ours', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA'),
          user('b-test', 'x'),
          user('b-md5', '$1$saltsalt$hash'),
        ])
        .execute();

      expect((await migrateToLatest(database)).applied).toContain(NAME);
      const store = createLegacyHashCostStore(database.db);
      expect(await store.list()).toEqual(['bcrypt:12', 'pbkdf2-sha256:260000']);

      await migrateDownAndUp(database, PREVIOUS_HEAD, async () => {
        const tables = await database.db.introspection.getTables();
        expect(tables.some((table) => table.name === 'legacy_hash_costs')).toBe(false);
      });
      expect(await store.list()).toEqual(['bcrypt:12', 'pbkdf2-sha256:260000']);
    });
  });

  it('writes no row where nothing was imported', async () => {
    await withTestDatabase(engine, async (database) => {
      const raw = await migrateOnly(database, BEFORE);
      await raw
        .insertInto('users')
        .values(user('native', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA'))
        .execute();
      await migrateToLatest(database);
      expect(await createLegacyHashCostStore(database.db).list()).toEqual([]);
    });
  });
});
