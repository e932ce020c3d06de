import type { Migration } from 'kysely';
import { diceryMigrations } from '../../src/apps/dicery/index.js';
import { insertOldUser, type RawDatabase } from './old-schema.js';

/** Dicery's migrations before `name`, as an installation upgrading to it has run them. */
export function diceryMigrationsBefore(name: string): Record<string, Migration> {
  return Object.fromEntries(Object.entries(diceryMigrations).filter(([other]) => other < name));
}

/**
 * An open room `code` hosted by a user `host`, written with raw SQL (the tables as an older schema
 * had them), for a migration test to upgrade.
 */
export async function insertOldRoom(raw: RawDatabase, code = 'ROOM2345'): Promise<void> {
  await insertOldUser(raw, 'host');
  await raw
    .insertInto('rooms')
    .values({ code, name: 'Table', host_user_id: 'host', state: 'open', created_at: 1 })
    .execute();
}
