import { sql } from 'kysely';
import { withTimeout } from '../lib/with-timeout.js';
import type { Database } from './open-database.js';

/**
 * What {@link pingDatabase} found: answering, not answering, answering but refusing writes, or
 * (SQLite) answering from a file its path no longer names, or with no room left to write.
 */
export type DatabaseState = 'up' | 'down' | 'read-only' | 'moved' | 'full';

/**
 * Asks the database one trivial question and says whether it answered within `timeoutMs`. Its own
 * short bound (not the statement timeout) keeps a readiness probe fast when the server is frozen or
 * unreachable: a load balancer must learn "not ready" within its probe timeout, not after the
 * query timeout.
 *
 * On PostgreSQL the question is whether a transaction would be read-only: after a failover the
 * address may reach a standby (in recovery), or an operator may have set
 * `default_transaction_read_only`. Such a server answers `select 1`, so the probe said "ready",
 * while every login and sign-up failed with 25006 `read_only_sql_transaction` (a 503).
 */
export async function pingDatabase(database: Database, timeoutMs: number): Promise<DatabaseState> {
  // SQLite answers from the open file even once it is deleted or replaced: `select 1` said ready
  // while every acknowledged write was headed for a file the next start would not read.
  if (database.fileMoved?.() === true) return 'moved';
  try {
    const question =
      database.dialect === 'postgres'
        ? sql<{ ro: string }>`select current_setting('transaction_read_only') as ro`
            .execute(database.db)
            .then((result): DatabaseState => (result.rows[0]?.ro === 'on' ? 'read-only' : 'up'))
        : sql`select 1`
            .execute(database.db)
            .then(
              async (): Promise<DatabaseState> => ((await database.diskFull?.()) === true ? 'full' : 'up'),
            );
    return await withTimeout(question, timeoutMs, 'down' as const);
  } catch {
    return 'down';
  }
}
