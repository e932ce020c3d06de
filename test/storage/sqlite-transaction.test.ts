import { type Kysely, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../src/storage/open-database.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

// `Database.transaction` runs on the SQLite driver directly (sqlite-transaction.ts) and through
// Kysely's transaction builder on PostgreSQL: the same contract on both.

// biome-ignore lint/suspicious/noExplicitAny: raw tables of this test only, outside the Schema.
type Raw = Kysely<any>;

const rowsOf = async (db: Raw) =>
  (await sql<{ v: string }>`select v from t order by id`.execute(db)).rows.map((row) => row.v);
const insert = (db: Raw, v: string) => sql`insert into t (v) values (${v})`.execute(db);

describe.each(engines)('Database.transaction on $name', ({ name }) => {
  let database: Database | undefined;
  let drop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await database?.close();
    await drop?.();
    database = undefined;
    drop = undefined;
  });

  const open = async (onQuery?: (sql: string) => void) => {
    const created = await createTestDatabaseUrl(name);
    drop = created.drop;
    database = openDatabase(created.url, onQuery === undefined ? {} : { onQuery });
    const id = name === 'sqlite' ? sql`integer primary key` : sql`serial primary key`;
    await sql`create table t (id ${id}, v text not null)`.execute(database.db);
    return database;
  };

  it("commits the work's writes and returns its result", async () => {
    const { db, transaction } = await open();
    const result = await transaction(async (trx) => {
      await insert(trx, 'a');
      await insert(trx, 'b');
      return 42;
    });
    expect(result).toBe(42);
    expect(await rowsOf(db)).toEqual(['a', 'b']);
  });

  it('rolls every write back and rethrows the same error when the work throws', async () => {
    const { db, transaction } = await open();
    const failure = new Error('work failed');
    await expect(
      transaction(async (trx) => {
        await insert(trx, 'a');
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await rowsOf(db)).toEqual([]);
    // The connection is usable again (no transaction left open).
    await transaction((trx) => insert(trx, 'c'));
    expect(await rowsOf(db)).toEqual(['c']);
  });

  it('refuses a statement through the transaction once its work has returned, and writes nothing', async () => {
    const { db, transaction } = await open();
    let kept: Raw | undefined;
    await transaction(async (trx) => {
      kept = trx;
    });
    await expect(insert(kept as Raw, 'late')).rejects.toThrow(/already committed/);
    // Not even inside a later transaction that holds the connection meanwhile.
    await transaction(async (trx) => {
      await insert(trx, 'inside');
      await expect(insert(kept as Raw, 'late')).rejects.toThrow(/already committed/);
    });
    expect(await rowsOf(db)).toEqual(['inside']);
  });

  it('commits concurrent transactions, each its own writes (one after the other on SQLite)', async () => {
    const { db, transaction } = await open();
    await Promise.all(
      ['a', 'b', 'c', 'd'].map((v) =>
        transaction(async (trx) => {
          await insert(trx, `${v}1`);
          await new Promise((resolve) => setImmediate(resolve));
          await insert(trx, `${v}2`);
        }),
      ),
    );
    const rows = await rowsOf(db);
    expect([...rows].sort()).toEqual(['a1', 'a2', 'b1', 'b2', 'c1', 'c2', 'd1', 'd2']);
    // SQLite has one connection: each transaction's two rows are adjacent, none ran inside
    // another. (PostgreSQL runs them side by side on pooled connections.)
    if (name === 'sqlite')
      for (let i = 0; i < rows.length; i += 2) expect(rows[i]?.[0]).toBe(rows[i + 1]?.[0]);
  });
});

describe('Database.transaction on SQLite: the one connection', () => {
  let database: Database | undefined;
  afterEach(async () => {
    await database?.close();
    database = undefined;
  });

  const open = async (onQuery?: (sql: string) => void) => {
    database = openDatabase('sqlite::memory:', onQuery === undefined ? {} : { onQuery });
    await sql`create table t (id integer primary key, v text not null)`.execute(database.db);
    return database;
  };

  it('makes a statement outside the transaction wait for its end, so a rollback never takes it along', async () => {
    const log: string[] = [];
    const { db, transaction } = await open((text) => void log.push(text));
    log.length = 0;
    let outside: Promise<unknown> | undefined;
    await expect(
      transaction(async (trx) => {
        await insert(trx, 'inside');
        outside = insert(db, 'outside');
        // Give the outside statement every chance to run now.
        await new Promise((resolve) => setImmediate(resolve));
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await outside;
    expect(await rowsOf(db)).toEqual(['outside']);
    // The query log (Kysely's, kept on the direct path) shows the order.
    expect(log.slice(0, 4).map((text) => text.split(' (')[0])).toEqual([
      'begin immediate',
      'insert into t',
      'rollback',
      'insert into t',
    ]);
  });

  it('logs begin immediate, the statements and commit through onQuery', async () => {
    const log: string[] = [];
    const { transaction } = await open((text) => void log.push(text));
    log.length = 0;
    await transaction((trx) => insert(trx, 'a'));
    expect(log).toEqual(['begin immediate', 'insert into t (v) values (?)', 'commit']);
  });

  it('rolls back when the commit itself fails, leaving the connection usable', async () => {
    const { db, transaction } = await open();
    await sql`create table child (id integer primary key, t_id integer not null references t (id))`.execute(
      db,
    );
    await sql`pragma foreign_keys = on`.execute(db);
    // A deferred foreign key is checked at COMMIT: the commit fails and SQLite keeps the
    // transaction open, so only the rollback after it frees the connection.
    await expect(
      transaction(async (trx) => {
        await sql`pragma defer_foreign_keys = on`.execute(trx);
        await insert(trx, 'orphan-parent');
        await sql`insert into child (t_id) values (999)`.execute(trx);
      }),
    ).rejects.toThrow(/FOREIGN KEY/);
    expect(await rowsOf(db)).toEqual([]);
    await transaction((trx) => insert(trx, 'after'));
    expect(await rowsOf(db)).toEqual(['after']);
  });
});
