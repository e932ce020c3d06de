import type { Kysely } from 'kysely';
import type { LegacyHashCost } from '../passwords/legacy-hash-class.js';
import type { Schema } from './schema.js';

/** The costliest imported password-hash class of each family (`legacy_hash_costs`, ≤ 4 rows). */
export interface LegacyHashCostStore {
  /** Every family's costliest class. */
  list(): Promise<LegacyHashCost['hashClass'][]>;
  /** Keeps each of `costs` that is costlier than its family's row (or its family's first). */
  record(costs: readonly LegacyHashCost[]): Promise<void>;
}

/** A {@link LegacyHashCostStore} over Kysely (a transaction's handle in an import). */
export function createLegacyHashCostStore(db: Kysely<Schema>): LegacyHashCostStore {
  return {
    async list() {
      const rows = await db.selectFrom('legacy_hash_costs').select('hash_class').orderBy('family').execute();
      return rows.map((row) => row.hash_class);
    },
    async record(costs) {
      for (const cost of costs) {
        await db
          .insertInto('legacy_hash_costs')
          .values({ family: cost.family, hash_class: cost.hashClass, work: cost.work })
          .onConflict((conflict) =>
            conflict
              .column('family')
              .doUpdateSet((eb) => ({
                hash_class: eb.ref('excluded.hash_class'),
                work: eb.ref('excluded.work'),
              }))
              .where('legacy_hash_costs.work', '<', (eb) => eb.ref('excluded.work')),
          )
          .execute();
      }
    },
  };
}
