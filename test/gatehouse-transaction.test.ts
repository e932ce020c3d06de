import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Kysely, type Migration, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { createGatehouse, type Gatehouse } from '../src/gatehouse.js';
import { runGatehouseTransaction } from '../src/gatehouse-transaction.js';
import type { RoomEvent } from '../src/apps/dicery/core/room-bus.js';
import { testConfig } from '../src/testing.js';
import { createTestDatabaseUrl, engines } from './support/databases.js';

/** The app's own table, as an embedding app would declare it for `tx.db.withTables`. */
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
  let gatehouse: Gatehouse;
  let drop: () => Promise<void>;
  let hostId: string;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(engine);
    drop = database.drop;
    gatehouse = await createGatehouse(testConfig({ databaseUrl: database.url }), {
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

  it("commits the app's rows and the core's room change together, then publishes and runs callbacks", async () => {
    const room = await gatehouse.rooms.createRoom(hostId, 'Table');
    const heard: { event: RoomEvent; committed: boolean }[] = [];
    const steps: string[] = [];
    gatehouse.roomBus.subscribe(room.code, (event) => {
      // Published after commit: a read outside the transaction already sees the player.
      heard.push({ event, committed: steps.includes('committed') });
    });
    const player = await gatehouse.transaction(async (tx) => {
      const joined = await tx.rooms.join(room.code, 'Ann');
      await tx.db
        .withTables<AppTables>()
        .insertInto('scores')
        .values({ player_id: joined.id, points: 0 })
        .execute();
      tx.afterCommit(() => {
        steps.push('committed');
      });
      expect(heard).toEqual([]);
      return joined;
    });
    expect(steps).toEqual(['committed']);
    expect(heard.map(({ event, committed }) => [event.type, event.id, committed])).toEqual([
      ['player_joined', 1, false],
    ]);
    expect(await scores()).toContainEqual({ player_id: player.id, points: 0 });
    expect(await gatehouse.rooms.isPresent(room.code, player.id)).toBe(true);
  });

  it('rolls everything back, publishes nothing and runs no callback when the work throws', async () => {
    const room = await gatehouse.rooms.createRoom(hostId, 'Table');
    const heard: RoomEvent[] = [];
    gatehouse.roomBus.subscribe(room.code, (event) => heard.push(event));
    let ran = false;
    let playerId = '';
    await expect(
      gatehouse.transaction(async (tx) => {
        const joined = await tx.rooms.join(room.code, 'Bob');
        playerId = joined.id;
        await tx.db
          .withTables<AppTables>()
          .insertInto('scores')
          .values({ player_id: joined.id, points: 7 })
          .execute();
        tx.afterCommit(() => {
          ran = true;
        });
        throw new Error('the app changed its mind');
      }),
    ).rejects.toThrow('the app changed its mind');
    expect(ran).toBe(false);
    expect(heard).toEqual([]);
    expect(await gatehouse.rooms.isPresent(room.code, playerId)).toBe(false);
    expect((await scores()).map((row) => row.player_id)).not.toContain(playerId);
    // The rolled-back event's number was never used: the next change takes it.
    expect((await gatehouse.rooms.join(room.code, 'Bob')).name).toBe('Bob');
    expect(heard.map((event) => event.id)).toEqual([1]);
  });

  it('lets the app catch a refused core operation and carry on (it wrote nothing)', async () => {
    const room = await gatehouse.rooms.createRoom(hostId, 'Table');
    await gatehouse.rooms.join(room.code, 'Cy');
    const result = await gatehouse.transaction(async (tx) => {
      const refused = await tx.rooms.join(room.code, 'CY').then(
        () => 'joined',
        (error: { code?: string }) => error.code,
      );
      // On PostgreSQL a failed statement would have aborted the transaction; this write proves not.
      await tx.db
        .withTables<AppTables>()
        .insertInto('scores')
        .values({ player_id: `x-${room.code}`, points: 1 })
        .execute();
      return refused;
    });
    expect(result).toBe('PLAYER_NAME_TAKEN');
    expect((await scores()).map((row) => row.player_id)).toContain(`x-${room.code}`);
  });

  it('reports a failing after-commit callback without failing the committed transaction', async () => {
    const errors: unknown[] = [];
    const value = await runGatehouseTransaction(
      {
        database: gatehouse.database,
        roomBus: gatehouse.roomBus,
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
    const databaseUrl = `sqlite:${join(mkdtempSync(join(tmpdir(), 'gh-app-migrations-')), 'app.db')}`;
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
    const second = await createGatehouse(config, {
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
