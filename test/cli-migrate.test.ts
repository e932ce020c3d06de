import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REFERENCE_APP_MIGRATIONS } from '../src/server.js';
import { migrateToLatest } from '../src/storage/migrate.js';
import { migrations as coreMigrations } from '../src/storage/migrations/index.js';
import { ONLINE_INDEXES } from '../src/storage/online-indexes.js';
import { openDatabase } from '../src/storage/open-database.js';
import { createTestDatabaseUrl, engines } from './support/databases.js';
import { run } from './support/run-cli.js';

const temporary: string[] = [];
afterAll(() => {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Every migration `serve` runs, as `migrate` reports them: the core's bare, the apps' `<app>/<name>`. */
const everyMigration = [
  ...Object.keys(coreMigrations),
  ...Object.entries(REFERENCE_APP_MIGRATIONS).flatMap(([app, list]) =>
    Object.keys(list).map((name) => `${app}/${name}`),
  ),
];

/** What `gatehouse migrate` prints after building PostgreSQL's online indexes. */
const ONLINE_INDEX_NAMES = ONLINE_INDEXES.map((index) => index.name).join(', ');
/**
 * `gatehouse migrate` before a rolling deploy: it must bring the whole schema the server needs up
 * to date (the core's and the reference apps'), or the servers started after it still migrate,
 * each taking the migration lock while the others wait.
 */
describe.each(engines)('gatehouse migrate, the whole schema ($name)', { timeout: 120_000 }, ({ name }) => {
  it("applies the core's and the apps' migrations, reports each, and leaves the server nothing to run", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-cli-migrate-'));
    temporary.push(dataDir);
    // SQLite: the file under DATA_DIR (`sqlite::memory:` would not outlive the CLI process).
    const database = name === 'sqlite' ? undefined : await createTestDatabaseUrl('postgres');
    const env = { DATA_DIR: dataDir, ...(database === undefined ? {} : { DATABASE_URL: database.url }) };
    try {
      const migrated = await run(['migrate'], env);
      expect(migrated.stderr).toBe('');
      expect(migrated.code).toBe(0);
      // PostgreSQL then builds the online indexes (online-indexes.ts); SQLite built them in 038a/039a.
      expect(migrated.stdout.trim()).toBe(
        [
          `Applied: ${everyMigration.join(', ')}`,
          ...(name === 'postgres' ? [`Built: ${ONLINE_INDEX_NAMES}`] : []),
        ].join('\n'),
      );
      expect(everyMigration).toContain('dicery/010a-spectator-links');
      expect(everyMigration).toContain('clothes/002-clothes');

      // What a server's start-up runs (createGatehouse with the reference apps) finds nothing left.
      const opened = openDatabase(database?.url ?? `sqlite:${join(dataDir, 'gatehouse.db')}`);
      try {
        expect(await migrateToLatest(opened, REFERENCE_APP_MIGRATIONS)).toEqual({
          applied: [],
          newer: [],
          ...(name === 'postgres' ? { indexes: { built: [], busy: false } } : {}),
        });
      } finally {
        await opened.close();
      }
      const again = await run(['migrate'], env);
      expect(again.stdout.trim()).toBe('Schema is up to date.');
    } finally {
      await database?.drop();
    }
  });

  // Two servers, or `gatehouse migrate` beside a starting server, on a fresh database. On SQLite
  // Kysely's Migrator had no lock and ran migrations statement by statement: 2 of 3 rounds of six
  // processes had failures ("table users already exists", "duplicate column name: locked").
  // Without SECRET_KEY each process also makes or reads DATA_DIR/secret.key at the same moment.
  it('six at once on a fresh database: every one succeeds and each migration runs once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-cli-migrate-race-'));
    temporary.push(dataDir);
    const database = name === 'sqlite' ? undefined : await createTestDatabaseUrl('postgres');
    const env = { DATA_DIR: dataDir, ...(database === undefined ? {} : { DATABASE_URL: database.url }) };
    try {
      const runs = await Promise.all(Array.from({ length: 6 }, () => run(['migrate'], env)));
      for (const migrated of runs) {
        expect(migrated.stderr).toBe('');
        expect(migrated.code).toBe(0);
      }
      const lines = runs.flatMap((migrated) => migrated.stdout.trim().split('\n'));
      const applied = lines
        .filter((line) => line.startsWith('Applied: '))
        .flatMap((line) => line.replace(/^Applied: /, '').split(', '));
      expect(applied.sort()).toEqual([...everyMigration].sort());
      // On PostgreSQL one of them built the online indexes; the others found them built or busy.
      const built = lines.filter((line) => line.startsWith('Built: '));
      expect(built).toEqual(name === 'postgres' ? [`Built: ${ONLINE_INDEX_NAMES}`] : []);
    } finally {
      await database?.drop();
    }
  });
});
