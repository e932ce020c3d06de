import { join } from 'node:path';
import { type Kysely, type Migration, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { createGatehouse, createGatehouseCore } from '../src/gatehouse.js';
import type { GatehouseCore } from '../src/gatehouse-core.js';
import { runGatehouseTransaction } from '../src/gatehouse-transaction.js';
import { testConfig } from '../src/testing.js';
import { createTestDatabaseUrl, engines } from './support/databases.js';
import { useTempDirs } from './support/temp-dirs.js';

const tempDir = useTempDirs();

/** The app's own table, as an embedding app would declare it for `tx.appDatabase`. */
type AppTables = {
  scores: { player_id: string; points: number };
};

const scoresMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('scores')
      .addColumn('player_id', 'text', (c) => c.primaryKey())
      .addColumn('points', 'integer', (c) => c.notNull())
      .execute();
  },
};

describe.each(engines)('gatehouse.transaction on $name', ({ name: engine }) => {
  // White-box: the core's handles check what the app-facing transaction wrote to core tables.
  let gatehouse: GatehouseCore;
  let drop: () => Promise<void>;
  let hostId: string;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(engine);
    drop = database.drop;
    gatehouse = await createGatehouseCore(testConfig({ databaseUrl: database.url }), {
      migrations: { scoreboard: { '001-scores': scoresMigration } },
    });
    hostId = 'host-1';
    await gatehouse.database.db
      .insertInto('users')
      .values({
        id: hostId,
        email: 'host@example.test',
        email_key: 'host@example.test',
        full_name: null,
        password_hash: 'x',
        role: 'user',
        is_active: 1,
        created_at: 0,
        updated_at: 0,
      })
      .execute();
  });

  afterAll(async () => {
    await gatehouse?.close();
    await drop?.();
  });

  const scores = () =>
    gatehouse.database.db.withTables<AppTables>().selectFrom('scores').selectAll().execute();

  const audited = async (actorId: string) =>
    (await gatehouse.audit.list({ limit: 10, offset: 0, actorId })).total;

  it("commits the app's rows and the core's audit row together, then runs the callbacks", async () => {
    const steps: string[] = [];
    const id = `p-${Math.random()}`;
    const result = await gatehouse.facade.transaction(async (tx) => {
      await tx.appDatabase<AppTables>().insertInto('scores').values({ player_id: id, points: 0 }).execute();
      await tx.audit.record({ event: 'logout', actorId: id });
      tx.afterCommit(async () => {
        // After the commit: a read outside the transaction already sees both rows.
        steps.push(`committed ${(await scores()).some((row) => row.player_id === id)} ${await audited(id)}`);
      });
      steps.push('work done');
      return 'ok';
    });
    expect(result).toBe('ok');
    expect(steps).toEqual(['work done', 'committed true 1']);
  });

  it('rolls everything back and runs no callback when the work throws', async () => {
    let ran = false;
    const id = `p-${Math.random()}`;
    await expect(
      gatehouse.facade.transaction(async (tx) => {
        await tx.appDatabase<AppTables>().insertInto('scores').values({ player_id: id, points: 7 }).execute();
        await tx.audit.record({ event: 'logout', actorId: id });
        tx.afterCommit(() => {
          ran = true;
        });
        throw new Error('the app changed its mind');
      }),
    ).rejects.toThrow('the app changed its mind');
    expect(ran).toBe(false);
    expect((await scores()).map((row) => row.player_id)).not.toContain(id);
    expect(await audited(id)).toBe(0);
  });

  it('refuses afterCommit once the transaction has ended', async () => {
    let late: ((callback: () => void) => void) | undefined;
    await gatehouse.facade.transaction(async (tx) => {
      late = (callback) => tx.afterCommit(callback);
    });
    expect(() => late?.(() => {})).toThrow(/after the transaction ended/);
  });

  it("lockAccount makes an app's per-account count-then-insert exact: the second unit waits for the first", async () => {
    // Each unit counts the account's rows and inserts one only below a cap of 1: without the lock,
    // two units running together on PostgreSQL (READ COMMITTED) both count 0 and both insert.
    const prefix = `cap-${Math.random()}-`;
    const capped = (n: number) =>
      gatehouse.facade.transaction(async (tx) => {
        await tx.lockAccount(hostId);
        const db = tx.appDatabase<AppTables>();
        const held = await db
          .selectFrom('scores')
          .select('player_id')
          .where('player_id', 'like', `${prefix}%`)
          .execute();
        // A few round trips between the count and the insert widen the window a race needs.
        for (let i = 0; i < 3; i++) await db.selectFrom('scores').select('player_id').limit(1).execute();
        if (held.length >= 1) return false;
        await db
          .insertInto('scores')
          .values({ player_id: `${prefix}${n}`, points: 0 })
          .execute();
        return true;
      });
    const won = await Promise.all([1, 2, 3, 4, 5].map(capped));
    expect(won.filter(Boolean)).toHaveLength(1);
    expect((await scores()).filter((row) => row.player_id.startsWith(prefix))).toHaveLength(1);
    // An unknown account locks nothing and throws nothing.
    await expect(gatehouse.facade.transaction((tx) => tx.lockAccount('nobody'))).resolves.toBeUndefined();
  });

  it('reports a failing after-commit callback without failing the committed transaction', async () => {
    const errors: unknown[] = [];
    const value = await runGatehouseTransaction(
      {
        database: gatehouse.database,
        clock: Date.now,
        onAfterCommitError: (e) => errors.push(e),
      },
      async (tx) => {
        await tx.audit.record({ event: 'logout', actorId: 'someone' });
        tx.afterCommit(() => Promise.reject(new Error('redis down')));
        return 42;
      },
    );
    expect(value).toBe(42);
    expect(errors).toHaveLength(1);
    expect((await gatehouse.audit.list({ limit: 10, offset: 0, actorId: 'someone' })).total).toBe(1);
  });
});

describe('app migrations (createGatehouse `migrations`)', () => {
  it("runs an app's migrations after the core's, each once, with its own history", async () => {
    const databaseUrl = `sqlite:${join(tempDir('gh-app-migrations-'), 'app.db')}`;
    const config = testConfig({ databaseUrl });
    const first = await createGatehouse(config, {
      migrations: { scoreboard: { '001-scores': scoresMigration } },
    });
    await first.close();
    const added: Migration = {
      async up(db: Kysely<unknown>) {
        await db.schema
          .alterTable('scores')
          .addColumn('bonus', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
      },
    };
    // Same names as the core's ("001-…") in another app: no collision.
    const other: Migration = {
      async up(db: Kysely<unknown>) {
        await sql`create table badges (id text primary key)`.execute(db);
      },
    };
    const second = await createGatehouseCore(config, {
      migrations: {
        scoreboard: { '001-scores': scoresMigration, '002-bonus': added },
        badges: { '001-accounts': other },
      },
    });
    try {
      const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(
        second.database.db,
      );
      const names = tables.rows.map((row) => row.name);
      expect(names).toEqual(
        expect.arrayContaining(['scores', 'badges', 'gatehouse_app_migration_scoreboard']),
      );
      await second.database.db
        .withTables<{ scores: { player_id: string; points: number; bonus: number } }>()
        .insertInto('scores')
        .values({ player_id: 'p', points: 1, bonus: 2 })
        .execute();
    } finally {
      await second.close();
    }
  });

  it('refuses an app name that cannot name a history table, naming it', async () => {
    await expect(
      createGatehouse(testConfig(), { migrations: { 'Bad Name': { '001-x': scoresMigration } } }),
    ).rejects.toThrow(ConfigError);
  });
});
