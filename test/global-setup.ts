import { execSync } from 'node:child_process';
import { Redis } from 'ioredis';
import pg from 'pg';

/**
 * Compiles dist/ once (the CLI tests run the compiled CLI and the browser test loads the bundled
 * web UI), and, when REQUIRE_SERVICES=1 (as in .ci/run), makes sure the PostgreSQL and Redis suites
 * will run: a missing or unreachable DATABASE_URL / REDIS_URL fails the whole run instead of
 * letting those suites skip silently.
 */
export default async function setup(): Promise<void> {
  // Type errors are reported by `npm run typecheck`; here only the emitted JavaScript matters.
  try {
    execSync('npx tsc -p tsconfig.build.json', { stdio: 'pipe' });
  } catch {}
  // The web bundle is what the browser tests load; a bundling error fails the run.
  execSync('node scripts/build-web.mjs', { stdio: 'inherit' });
  execSync('node scripts/copy-assets.mjs', { stdio: 'inherit' });
  if (process.env.REQUIRE_SERVICES !== '1') return;
  const { DATABASE_URL, REDIS_URL } = process.env;
  if (!DATABASE_URL?.startsWith('postgres')) {
    throw new Error('REQUIRE_SERVICES=1 but DATABASE_URL is not a postgres:// URL');
  }
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
