import type { Kysely } from 'kysely';
import { costliestByFamily, type LegacyHashCost, legacyHashCost } from '../../passwords/legacy-hash-class.js';
import { parseLegacyHash } from '../../passwords/legacy-hash-format.js';

/** The tables this migration reads and writes, as they are at this point of the history. */
interface Tables {
  users: { id: string; password_hash: string };
  legacy_hash_costs: { family: string; hash_class: string; work: number };
}

/** Our own hashes, skipped by the scan (a prefix without `_` or `%`, so LIKE reads it literally). */
const CURRENT_PREFIX = '$argon2id$v=19$m=19456,t=2,p=1$';
const PAGE = 1000;

/**
 * `legacy_hash_costs`: the costliest password-hash class of each family that
 * `gatehouse import-users` wrote (at most four rows). A wrong password for an imported account that
 * has not signed in since is checked against its old hash, which can take 20 times an argon2id
 * check (bcrypt cost 12: 345 ms): without a floor on every refused check, one timed request told
 * which addresses were imported (red-team 2026-12k P1). Seeded here from the accounts already
 * imported, one page of legacy hashes at a time.
 */
export async function up(untyped: Kysely<unknown>): Promise<void> {
  const db = untyped as Kysely<Tables>;
  await db.schema
    .createTable('legacy_hash_costs')
    .addColumn('family', 'text', (c) => c.primaryKey())
    .addColumn('hash_class', 'text', (c) => c.notNull())
    .addColumn('work', 'bigint', (c) => c.notNull())
    .execute();
  let costliest: LegacyHashCost[] = [];
  let after = '';
  for (;;) {
    const rows = await db
      .selectFrom('users')
      .select(['id', 'password_hash'])
      .where('id', '>', after)
      .where('password_hash', 'not like', `${CURRENT_PREFIX}%`)
      .orderBy('id')
      .limit(PAGE)
      .execute();
    const costs = rows.map((row) => {
      const parsed = parseLegacyHash(row.password_hash);
      return parsed.ok ? legacyHashCost(parsed.hash) : undefined;
    });
    costliest = costliestByFamily([...costliest, ...costs]);
    const last = rows.at(-1);
    if (last === undefined || rows.length < PAGE) break;
    after = last.id;
  }
  if (costliest.length === 0) return;
  await db
    .insertInto('legacy_hash_costs')
    .values(costliest.map((cost) => ({ family: cost.family, hash_class: cost.hashClass, work: cost.work })))
    .execute();
}

/** Drops the table: refused sign-ins stop being padded until it is back. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('legacy_hash_costs').execute();
}
