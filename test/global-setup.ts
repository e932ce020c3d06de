import { execSync } from 'node:child_process';
import { Redis } from 'ioredis';
import pg from 'pg';

/**
 * Compiles dist/ once (the CLI tests run the compiled CLI and the browser test loads the bundled
 * web UI), failing the whole run when the build fails, and, when REQUIRE_SERVICES=1 (as in
 * .ci/run), makes sure the PostgreSQL and Redis suites
 * will run: a missing or unreachable DATABASE_URL / REDIS_URL fails the whole run instead of
 * letting those suites skip silently.
 */
export default async function setup(): Promise<void> {
  // A failed build must fail the run: tsc still emits on type errors, and the CLI and browser
  // tests would then exercise a dist/ that does not match the sources.
  try {
    execSync('npx tsc -p tsconfig.build.json', { stdio: 'pipe' });
  } catch (error) {
    const output =
      typeof error === 'object' && error !== null && 'stdout' in error ? String(error.stdout).trim() : '';
    throw new Error(`the build (tsc -p tsconfig.build.json) failed, so dist/ is stale:\n${output}`, {
      cause: error,
    });
  }
  // The server's JavaScript as `npm run build` leaves it: without comments, in ASCII (issue 10).
  execSync('node scripts/compact-dist.mjs', { stdio: 'pipe' });
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
