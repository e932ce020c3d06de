import pg from 'pg';
import { Redis } from 'ioredis';

/**
 * When REQUIRE_SERVICES=1 (as in .ci/run), the PostgreSQL and Redis suites must run: a missing
 * or unreachable DATABASE_URL / REDIS_URL fails the whole run instead of skipping silently.
 */
export default async function setup(): Promise<void> {
  if (process.env.REQUIRE_SERVICES !== '1') return;
  const { DATABASE_URL, REDIS_URL } = process.env;
  if (!DATABASE_URL?.startsWith('postgres')) throw new Error('REQUIRE_SERVICES=1 but DATABASE_URL is not a postgres:// URL');
  if (!REDIS_URL) throw new Error('REQUIRE_SERVICES=1 but REDIS_URL is not set');
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  await client.query('select 1');
  await client.end();
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  await redis.ping();
  redis.disconnect();
}
