import type { KyselyPlugin, PluginTransformResultArgs, QueryResult, UnknownRow } from 'kysely';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deleteByKeyWalk, deleteInBatches } from '../../src/storage/batched-sweep.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

/** Records the rows each statement changed (the sweeps' batches), and can abort after the first. */
function statementLog(onStatement?: () => void) {
  const changed: number[] = [];
  const plugin: KyselyPlugin = {
    transformQuery: (args) => args.node,
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      if (args.result.numAffectedRows !== undefined) {
        changed.push(Number(args.result.numAffectedRows));
        onStatement?.();
      }
      return args.result;
    },
  };
  return { changed, plugin };
}

describe.each(engines)('batched sweeps on $name', ({ name }) => {
  let test: TestDatabase;

  beforeAll(async () => {
    test = await createTestDatabase(name);
  });
  afterAll(async () => test.dispose());
  beforeEach(async () => {
    await test.database.db.deleteFrom('spent_challenges').execute();
    await test.database.db.deleteFrom('login_failures').execute();
  });

  /** 10 expired markers and 2 live ones, their keys interleaved. */
  const seed = async () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({
      nonce: `n${String(i).padStart(2, '0')}`,
      expires_at: i % 6 === 5 ? 9_000 : 1_000,
    }));
    await test.database.db.insertInto('spent_challenges').values(rows).execute();
  };
  const left = async () =>
    (await test.database.db.selectFrom('spent_challenges').select('nonce').orderBy('nonce').execute()).map(
      (row) => row.nonce,
    );

  it('deletes through an index a batch at a time, never more rows in one statement', async () => {
    await seed();
    const log = statementLog();
    const db = test.database.db.withPlugin(log.plugin);
    expect(
      await deleteInBatches(db, 'spent_challenges', ['nonce'], sql`expires_at < ${5_000}`, { batchSize: 3 }),
    ).toBe(10);
    // 3 + 3 + 3 + 1: the short batch ends it. One statement for all 10 would be [10].
    expect(log.changed).toEqual([3, 3, 3, 1]);
    expect(await left()).toEqual(['n05', 'n11']);
  });

  it('deletes by a composite primary key (login_failures)', async () => {
    await test.database.db
      .insertInto('login_failures')
      .values(
        ['a', 'b', 'c'].flatMap((subject) =>
          [0, 3_600_000, 7_200_000].map((window) => ({
            subject_id: subject,
            window_start: window,
            failures: 1,
            first_at: window,
            last_at: window,
            last_ip: null,
          })),
        ),
      )
      .execute();
    const log = statementLog();
    const db = test.database.db.withPlugin(log.plugin);
    const deleted = await deleteInBatches(
      db,
      'login_failures',
      ['subject_id', 'window_start'],
      sql`window_start < ${7_200_000}`,
      { batchSize: 4 },
    );
    expect(deleted).toBe(6);
    expect(log.changed).toEqual([4, 2]);
    const rows = await test.database.db
      .selectFrom('login_failures')
      .select(['subject_id', 'window_start'])
      .execute();
    expect(rows.map((row) => Number(row.window_start))).toEqual([7_200_000, 7_200_000, 7_200_000]);
  });

  it('walks the primary key a range at a time for a filter no index serves', async () => {
    await seed();
    const log = statementLog();
    const db = test.database.db.withPlugin(log.plugin);
    expect(
      await deleteByKeyWalk(db, 'spent_challenges', 'nonce', sql`expires_at < ${5_000}`, { batchSize: 4 }),
    ).toBe(10);
    // Ranges of 4 keys (n00–n03, n04–n07, n08–n11) and the empty rest: each deletes what it holds.
    expect(log.changed).toEqual([4, 3, 3, 0]);
    expect(await left()).toEqual(['n05', 'n11']);
  });

  it('stops between two statements once aborted', async () => {
    await seed();
    const stop = new AbortController();
    const log = statementLog(() => stop.abort());
    const db = test.database.db.withPlugin(log.plugin);
    expect(
      await deleteInBatches(db, 'spent_challenges', ['nonce'], sql`expires_at < ${5_000}`, {
        batchSize: 3,
        signal: stop.signal,
      }),
    ).toBe(3);
    expect(await left()).toHaveLength(9);
    expect(
      await deleteByKeyWalk(db, 'spent_challenges', 'nonce', sql`expires_at < ${5_000}`, {
        batchSize: 3,
        signal: stop.signal,
      }),
    ).toBe(0);
  });
});
