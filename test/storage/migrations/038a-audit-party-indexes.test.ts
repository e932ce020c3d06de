import { type Kysely, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuditRetentionStore } from '../../../src/storage/audit-retention-store.js';
import { migrateToLatest } from '../../../src/storage/migrate.js';
import type { Database } from '../../../src/storage/open-database.js';
import type { Schema } from '../../../src/storage/schema.js';
import { engines } from '../../support/databases.js';
import {
  type Cleanup,
  databaseMigratedTo,
  migrateDownAndUp,
  migrationsBefore,
} from '../../support/old-schema.js';
import { planOf, readsWhole } from '../../support/query-plan.js';

const MIGRATION = '038a-audit-party-indexes';
const { previous } = migrationsBefore(MIGRATION);

/** The plan of the deletion's pass over the audit log (`forgetPersonalData`, the same statement). */
const forgetPlan = (database: Database) =>
  planOf(
    database,
    sql`update audit_events set ip = null, user_agent = null where actor_id = ${'u1'} or target_id = ${'u1'}`,
  );

describe.each(engines)(
  `migration ${MIGRATION}: an account's deletion reads its own audit rows ($name)`,
  ({ name }) => {
    const cleanups: Cleanup[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it('indexes actor_id and target_id, so forgetting one account reads no other rows', async () => {
      const database = await databaseMigratedTo(name, previous, cleanups);
      const raw = database.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
      const entry = (actor: string, target: string) => ({
        event: 'login_succeeded',
        actor_id: actor,
        target_id: target,
        ip: '203.0.113.7',
        user_agent: 'agent',
        details: null,
        created_at: 1_000,
      });
      await raw
        .insertInto('audit_events')
        .values([entry('u1', 'u1'), entry('admin', 'u1'), entry('u1', 'u2'), entry('u2', 'u2')])
        .execute();
      // Before: the whole log is read (SQLite says SCAN; PostgreSQL, priced out of it, still must).
      expect(await forgetPlan(database)).not.toMatch(/audit_events_(actor|target)_idx/);
      expect((await migrateToLatest(database)).applied).toContain(MIGRATION);
      const plan = await forgetPlan(database);
      expect(plan).toMatch(/audit_events_actor_idx/);
      expect(plan).toMatch(/audit_events_target_idx/);
      expect(readsWhole(plan)).toBe(false);
      await migrateDownAndUp(database, previous, async () => {
        expect(await forgetPlan(database)).not.toMatch(/audit_events_(actor|target)_idx/);
      });
      expect(await forgetPlan(database)).toMatch(/audit_events_target_idx/);
      // Last: on PostgreSQL an update (a HOT one: no indexed column changes) before an index is
      // built leaves broken HOT chains, and the index is then not used until every older snapshot
      // has gone (pg_index.indcheckxmin), which other tests' open transactions can delay.
      // The store's pass, over the indexed table: only u1's rows lose their personal data.
      await createAuditRetentionStore(database.db as unknown as Kysely<Schema>).forgetPersonalData('u1');
      const rows = await raw
        .selectFrom('audit_events')
        .select(['actor_id', 'target_id', 'ip'])
        .orderBy('id')
        .execute();
      expect(rows.map((row) => row.ip)).toEqual([null, null, null, '203.0.113.7']);
    });
  },
);
