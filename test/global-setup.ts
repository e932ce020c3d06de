import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import pg from 'pg';

/**
 * Builds dist/ when it was not completely built from the current sources (the CLI tests run the
 * compiled CLI and the browser tests load the bundled web UI), failing the whole run when the build
 * fails, and, when REQUIRE_SERVICES=1 (as in .ci/run), makes sure the PostgreSQL and Redis suites
 * will run: a missing or unreachable DATABASE_URL / REDIS_URL fails the whole run instead of
 * letting those suites skip silently.
 */
export default async function setup(): Promise<void> {
  // `npm run build`'s steps (tsc, compact-dist for the server's JavaScript as it ships, the web
  // bundle, the assets), skipped when dist/.build-inputs shows a complete build of exactly these
  // sources (see scripts/build.mjs): CI's OpenAPI lint has just built them. A failed build must fail
  // the run: tsc still emits on type errors, and the CLI and browser tests would then exercise a
  // dist/ that does not match the sources (the stamp is written only after a build that succeeded).
  try {
    process.stdout.write(
      execFileSync(process.execPath, ['scripts/build.mjs', '--if-needed'], { stdio: 'pipe' }),
    );
  } catch (error) {
    const output = ['stdout', 'stderr']
      .map((stream) =>
        typeof error === 'object' && error !== null && stream in error
          ? String((error as Record<string, unknown>)[stream]).trim()
          : '',
      )
      .filter((text) => text !== '')
      .join('\n');
    throw new Error(`the build (scripts/build.mjs) failed, so dist/ is stale:\n${output}`, { cause: error });
  }
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
