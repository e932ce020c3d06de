import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type PrivatePostgres,
  runPostgresFaultTests,
  startPrivatePostgres,
} from './support/private-postgres.js';
import { run } from './support/run-cli.js';
import { useTempDirs } from './support/temp-dirs.js';

const tempDir = useTempDirs();

/**
 * Red-team 2026-12u F2: a role that may not create the schema (SQLSTATE 42501) is a setting to
 * fix, as a refused DATABASE_URL is (6939941), on a private PostgreSQL 15 (never the shared one).
 */
describe.skipIf(!runPostgresFaultTests)(
  'gatehouse serve and migrate: a role without CREATE on the schema (private PostgreSQL)',
  () => {
    let postgres: PrivatePostgres;
    /** DATABASE_URL for `role` on `database` (trust auth over the cluster's socket). */
    const urlFor = (role: string, database: string) => {
      const url = new URL(postgres.url);
      url.username = role;
      url.pathname = `/${database}`;
      return url.toString();
    };

    beforeAll(async () => {
      postgres = await startPrivatePostgres();
    }, 60_000);
    afterAll(() => postgres?.dispose());

    // PostgreSQL 15 took CREATE on schema public from PUBLIC: a role given a database it does not
    // own (the common newcomer setup) connects, and every migration is "permission denied for schema
    // public". That answer is as permanent as 3D000 or 28P01, yet `serve` retried it for ever (never
    // ready, the symptom 6939941 fixed for a misspelt database name), and `migrate` called it an
    // internal error to report (exit 70).
    it('stops with 78 when the role may not create the schema (42501), instead of retrying for ever', async () => {
      postgres.psql('create role gh_noprivs login');
      postgres.psql('create database gh_noprivs_db owner postgres');
      const env = {
        DATA_DIR: tempDir('gh-42501-'),
        PORT: '0',
        DATABASE_URL: urlFor('gh_noprivs', 'gh_noprivs_db'),
      };
      const served = await run(['serve'], env, undefined, { killAfterMs: 20_000 });
      const migrated = await run(['migrate'], { ...env, DATA_DIR: tempDir('gh-42501-') });
      expect(
        {
          serve: served.code,
          serveRetried: served.stdout.includes('start-up attempt failed; retrying'),
          migrate: migrated.code,
          migrateSays: migrated.stderr.trim(),
        },
        'permission denied for schema public is a setting to fix (78), not an outage nor a bug',
      ).toEqual({
        serve: 78,
        serveRetried: false,
        migrate: 78,
        migrateSays: expect.stringContaining('connect as a role that may create tables there'),
      });
    }, 60_000);
  },
);
