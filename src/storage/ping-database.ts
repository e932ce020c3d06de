import { sql } from 'kysely';
import { withTimeout } from '../lib/with-timeout.js';
import type { Database } from './open-database.js';

/**
 * Runs `select 1` and says whether it answered within `timeoutMs`. Its own short bound (not the
 * statement timeout) keeps a readiness probe fast when the server is frozen or unreachable:
 * a load balancer must learn "not ready" within its probe timeout, not after the query timeout.
 */
export async function pingDatabase(database: Database, timeoutMs: number): Promise<'up' | 'down'> {
  try {
    const answered = await withTimeout(
      sql`select 1`.execute(database.db).then(() => true),
      timeoutMs,
      false,
    );
    return answered ? 'up' : 'down';
  } catch {
    return 'down';
  }
}
