import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import type { Database } from '../../../src/storage/open-database.js';
import { engines } from '../../support/databases.js';
import {
  type Cleanup,
  databaseMigratedTo,
  migrateDownAndUp,
  migrationsBefore,
} from '../../support/old-schema.js';
import { planOf, readsWhole } from '../../support/query-plan.js';

const MIGRATION = '039a-admin-path-indexes';
const { previous } = migrationsBefore(MIGRATION);

/**
 * The statements the indexes serve, by index: what removing a client cascades into (and a disable's delete
 * of its codes, `deleteUnexchangedCodes`), and a page of `GET /users` (`listUsers`).
 */
const statements = {
  oauth_codes_client_idx: sql`delete from oauth_codes where client_id = ${'app'}`,
  oauth_consents_client_idx: sql`delete from oauth_consents where client_id = ${'app'}`,
  users_created_idx: sql`select * from users order by created_at, id limit ${50} offset ${0}`,
} as const;

describe.each(engines)(
  `migration ${MIGRATION}: administrator paths read what they need ($name)`,
  ({ name }) => {
    const cleanups: Cleanup[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    /** The indexes of {@link statements} their plans use. */
    const indexesUsed = async (database: Database) => {
      const used: string[] = [];
      for (const [index, statement] of Object.entries(statements)) {
        const plan = await planOf(database, statement);
        if (plan.includes(index) && !readsWhole(plan) && !/TEMP B-TREE|Sort/.test(plan)) used.push(index);
      }
      return used;
    };

    it("removing or disabling a client and paging accounts read no other client's or page's rows", async () => {
      const database = await databaseMigratedTo(name, previous, cleanups);
      expect(await indexesUsed(database)).toEqual([]);
      expect((await migrateToLatest(database)).applied).toContain(MIGRATION);
      expect(await indexesUsed(database)).toEqual(Object.keys(statements));
      await migrateDownAndUp(database, previous, async () => {
        expect(await indexesUsed(database)).toEqual([]);
      });
      expect(await indexesUsed(database)).toEqual(Object.keys(statements));
    });
  },
);
