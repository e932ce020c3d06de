import { sql } from 'kysely';
import type { Database } from './open-database.js';

/**
 * The database server's clock in epoch ms (PostgreSQL's `clock_timestamp()`), or undefined for
 * SQLite, whose file is read on this machine and so keeps this machine's time. A second clock to
 * check this one against before a timestamp that every instance will compare theirs with is stored
 * for good (`gatehouse revoke-all`'s cut-off).
 */
export async function readDatabaseClock(database: Database): Promise<number | undefined> {
  if (database.dialect !== 'postgres') return undefined;
  const { rows } = await sql<{ now: string | number }>`
    select (extract(epoch from clock_timestamp()) * 1000)::bigint as now`.execute(database.db);
  const now = rows[0]?.now;
  return now === undefined ? undefined : Number(now);
}
