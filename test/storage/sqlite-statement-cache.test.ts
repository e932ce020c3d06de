import SQLite from 'better-sqlite3';
import { type Generated, Kysely, SqliteDialect, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { withStatementCache } from '../../src/storage/sqlite-statement-cache.js';

/** An in-memory better-sqlite3 database that counts its `prepare` calls. */
function countingDatabase() {
  const sqlite = new SQLite(':memory:');
  const prepared: string[] = [];
  const database = {
    prepare(text: string) {
      prepared.push(text);
      return sqlite.prepare(text);
    },
    close: () => sqlite.close(),
  };
  return { sqlite, prepared, database };
}

interface Rows {
  items: { id: Generated<number>; name: string; note?: string | null };
}

describe('withStatementCache (SQLite)', () => {
  const opened: Kysely<Rows>[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((db) => db.destroy()));
  });

  function open(size?: number) {
    const counting = countingDatabase();
    const db = new Kysely<Rows>({
      dialect: new SqliteDialect({ database: withStatementCache(counting.database, size) }),
    });
    opened.push(db);
    return { ...counting, db };
  }

  it('prepares each distinct SQL text once and answers every run with its own parameters', async () => {
    const { db, prepared } = open();
    await sql`create table items (id integer primary key, name text not null)`.execute(db);
    for (const name of ['a', 'b', 'c']) await db.insertInto('items').values({ name }).execute();
    const byName = (name: string) =>
      db.selectFrom('items').select('id').where('name', '=', name).executeTakeFirst();
    expect(await byName('b')).toEqual({ id: 2 });
    expect(await byName('c')).toEqual({ id: 3 });
    expect(await byName('z')).toBeUndefined();
    const texts = prepared.filter((text) => text.startsWith('insert') || text.startsWith('select'));
    expect(texts).toHaveLength(2);
    expect(new Set(texts).size).toBe(2);
  });

  it('is bounded: beyond `size` texts the oldest is dropped and prepared again when next used', async () => {
    const { db, prepared } = open(2);
    const select = (n: number) => sql`select ${sql.lit(n)} as n`.execute(db);
    await select(1);
    await select(2);
    await select(1); // cached
    expect(prepared).toHaveLength(2);
    await select(3); // evicts "select 1"
    await select(2); // still cached
    await select(1); // prepared again
    expect(prepared).toEqual(['select 1 as n', 'select 2 as n', 'select 3 as n', 'select 1 as n']);
  });

  it('follows a schema change under a cached statement (a migration after the first queries)', async () => {
    const { db } = open();
    await sql`create table items (id integer primary key, name text not null)`.execute(db);
    await db.insertInto('items').values({ name: 'a' }).execute();
    const all = () => db.selectFrom('items').selectAll().execute();
    expect(await all()).toEqual([{ id: 1, name: 'a' }]);
    await sql`alter table items add column note text`.execute(db);
    expect(await all()).toEqual([{ id: 1, name: 'a', note: null }]);
  });

  it('does not cache a text that fails to prepare', async () => {
    const { db, prepared } = open();
    await expect(sql`select * from nowhere`.execute(db)).rejects.toThrow(/no such table/);
    await sql`create table nowhere (id integer)`.execute(db);
    expect((await sql`select * from nowhere`.execute(db)).rows).toEqual([]);
    expect(prepared.filter((text) => text === 'select * from nowhere')).toHaveLength(2);
  });
});
