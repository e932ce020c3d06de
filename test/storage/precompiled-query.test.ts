import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { precompiledQuery } from '../../src/storage/precompiled-query.js';
import type { Schema } from '../../src/storage/schema.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

interface AuditValues {
  event: string;
  actor_id: string | null;
  details: string | null;
  created_at: number;
}

// Kysely emits the WHERE's parameter after the SELECT list's: the mapping must follow the SQL.
const insertAudit = precompiledQuery<Schema, AuditValues>(
  ['event', 'actor_id', 'details', 'created_at'],
  (db, row) => db.insertInto('audit_events').values(row),
);
const selectByEventAndLabel = precompiledQuery<
  Schema,
  { label: string; event: string },
  { label: string; actor_id: string | null }
>(['event', 'label'], (db, { label, event }) =>
  db
    .selectFrom('audit_events')
    .select([sql<string>`cast(${label} as text)`.as('label'), 'actor_id'])
    .where('event', '=', event),
);

describe.each(engines)('precompiledQuery on $name', ({ name }) => {
  let test: TestDatabase | undefined;
  afterEach(async () => {
    await test?.dispose();
    test = undefined;
  });

  it('puts every value in its place, on the database and inside a transaction alike', async () => {
    test = await createTestDatabase(name);
    const { db } = test.database;
    // Keys in another order than the statement's columns: each value still lands in its column.
    await insertAudit(db, { created_at: 7, details: '{"a":1}', actor_id: 'u1', event: 'first' });
    await test.database.transaction((trx) =>
      insertAudit(trx, { details: null, event: 'second', created_at: 8, actor_id: null }),
    );
    const rows = await db
      .selectFrom('audit_events')
      .select(['event', 'actor_id', 'details', 'created_at'])
      .orderBy('created_at')
      .execute();
    expect(rows.map((r) => ({ ...r, created_at: Number(r.created_at) }))).toEqual([
      { event: 'first', actor_id: 'u1', details: '{"a":1}', created_at: 7 },
      { event: 'second', actor_id: null, details: null, created_at: 8 },
    ]);
    const { rows: selected } = await selectByEventAndLabel(db, { event: 'first', label: 'x' });
    expect(selected).toEqual([{ label: 'x', actor_id: 'u1' }]);
  });

  it('refuses, on first use, a statement that does not use every value exactly once as a parameter', async () => {
    test = await createTestDatabase(name);
    const { db } = test.database;
    const unused = precompiledQuery<Schema, { event: string; actor_id: string }>(
      ['event', 'actor_id'],
      (kysely, { event }) => kysely.selectFrom('audit_events').selectAll().where('event', '=', event),
    );
    await expect(unused(db, { event: 'e', actor_id: 'a' })).rejects.toThrow(
      'each value must be one parameter of',
    );
    const twice = precompiledQuery<Schema, { event: string }>(['event'], (kysely, { event }) =>
      kysely.selectFrom('audit_events').selectAll().where('event', '=', event).where('actor_id', '=', event),
    );
    await expect(twice(db, { event: 'e' })).rejects.toThrow('each value must be one parameter of');
  });
});
