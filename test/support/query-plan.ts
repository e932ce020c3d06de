import { type RawBuilder, sql } from 'kysely';
import type { Database } from '../../src/storage/open-database.js';

let plans = 0;

/**
 * The plan of `statement` as one line: SQLite's `EXPLAIN QUERY PLAN` details, or PostgreSQL's
 * `EXPLAIN` with sequential scans priced out (its planner reads a small table whole whatever its
 * indexes; priced out, it must name an index when one can serve). Each plan is asked for with a
 * comment of its own: the SQLite driver keeps prepared statements, and a kept EXPLAIN answers
 * with the plan of the schema it was prepared under.
 */
export async function planOf(database: Database, statement: RawBuilder<unknown>): Promise<string> {
  plans += 1;
  const marked = sql`${statement} ${sql.raw(`/* plan ${plans} */`)}`;
  if (database.dialect === 'sqlite') {
    const plan = await sql<{ detail: string }>`explain query plan ${marked}`.execute(database.db);
    return plan.rows.map((row) => row.detail).join('; ');
  }
  return database.db.transaction().execute(async (trx) => {
    await sql`set local enable_seqscan = off`.execute(trx);
    const plan = await sql<{ 'QUERY PLAN': string }>`explain ${marked}`.execute(trx);
    return plan.rows.map((row) => row['QUERY PLAN']).join('; ');
  });
}

/**
 * Whether `plan` ({@link planOf}) reads a table's rows whole, without an index: SQLite's bare
 * `SCAN table`, PostgreSQL's Seq Scan. A pass over a whole index (SQLite's `SCAN table USING
 * [COVERING] INDEX`, PostgreSQL's index scan without a condition) is not caught: check for the
 * index and its order instead.
 */
export const readsWhole = (plan: string): boolean => /SCAN \w+(;|$)|Seq Scan/.test(plan);
