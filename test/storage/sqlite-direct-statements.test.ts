import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migrateToLatest } from '../../src/storage/migrate.js';
import { type Database, isDatabaseUnavailable, openDatabase } from '../../src/storage/open-database.js';
import { precompiledQuery } from '../../src/storage/precompiled-query.js';
import type { Schema } from '../../src/storage/schema.js';
import { runDirectStatement } from '../../src/storage/sqlite-direct-statements.js';
import { createUserStore, type NewUser } from '../../src/storage/user-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

// Precompiled statements skip Kysely's executor on SQLite (sqlite-direct-statements.ts) and must
// keep every guarantee Kysely's path gave them: the one connection's order, the transaction's
// bounds, the busy wait, the query log, the result's shape.

const insertAudit = precompiledQuery<Schema, { event: string; created_at: number }>(
  ['event', 'created_at'],
  (db, row) => db.insertInto('audit_events').values(row),
);
const selectEvents = precompiledQuery<Schema, { event: string }, { event: string }>(
  ['event'],
  (db, { event }) => db.selectFrom('audit_events').select('event').where('event', '=', event),
);

const newUser = (email: string): NewUser => ({
  id: randomUUID(),
  email,
  emailKey: email,
  fullName: null,
  passwordHash: 'hash',
  role: 'user',
  isActive: true,
  emailVerified: false,
  createdAt: 1,
  updatedAt: 1,
});

describe.each(engines)('precompiled statements on $name', ({ name }) => {
  let test: TestDatabase | undefined;
  afterEach(async () => {
    await test?.dispose();
    test = undefined;
  });

  it('answer what Kysely answers for the same statement (SQLite directly, PostgreSQL through Kysely)', async () => {
    test = await createTestDatabase(name);
    const { db } = test.database;
    const ran = await insertAudit(db, { event: 'shape', created_at: 1 });
    const { sql, parameters } = db
      .insertInto('audit_events')
      .values({ event: 'shape', created_at: 2 })
      .compile();
    const viaKysely = await db.executeQuery(CompiledQuery.raw(sql, [...parameters]));
    expect(Object.keys(ran).sort()).toEqual(Object.keys(viaKysely).sort());
    expect(ran.numAffectedRows).toBe(1n);
    if (name === 'sqlite') expect(ran.insertId).toBe((viaKysely.insertId ?? 0n) - 1n);
    expect((await selectEvents(db, { event: 'shape' })).rows).toEqual([
      { event: 'shape' },
      { event: 'shape' },
    ]);
    // Only SQLite's own database (and its transactions) has a direct path.
    expect(runDirectStatement(db, 'select 1 as one', []) === undefined).toBe(name === 'postgres');
  });
});

describe('precompiled statements on SQLite: the one connection', () => {
  let database: Database | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await database?.close();
    database = undefined;
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const open = async (onQuery?: (sql: string) => void) => {
    dir = mkdtempSync(join(tmpdir(), 'gh-direct-'));
    const path = join(dir, 'direct.db');
    database = openDatabase(`sqlite:${path}`, onQuery === undefined ? {} : { onQuery });
    await migrateToLatest(database);
    return { database, path };
  };

  it('wait for a transaction that holds the connection: a look-up never reads its uncommitted rows', async () => {
    const { database } = await open();
    const users = createUserStore(database.db);
    let outside: Promise<unknown> | undefined;
    await expect(
      database.transaction(async (trx) => {
        await createUserStore(trx).insertUser(newUser('pending@example.com'));
        outside = users.findUserByEmailKey('pending@example.com');
        // Every chance to run now, inside the open transaction.
        await new Promise((resolve) => setImmediate(resolve));
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await outside).toBeUndefined();
  });

  it('run inside their transaction while it is open, and are refused through it once it has ended', async () => {
    const { database } = await open();
    let kept: Parameters<Parameters<Database['transaction']>[0]>[0] | undefined;
    await database.transaction(async (trx) => {
      await insertAudit(trx, { event: 'inside', created_at: 1 });
      // The transaction's own statement sees its uncommitted row.
      expect((await selectEvents(trx, { event: 'inside' })).rows).toHaveLength(1);
      kept = trx;
    });
    if (kept === undefined) throw new Error('no transaction');
    const late = kept;
    await expect(insertAudit(late, { event: 'late', created_at: 2 })).rejects.toThrow(/already committed/);
    // Not even inside a later transaction that holds the connection meanwhile.
    await database.transaction(async (trx) => {
      await insertAudit(trx, { event: 'second', created_at: 3 });
      await expect(insertAudit(late, { event: 'late', created_at: 4 })).rejects.toThrow(/already committed/);
    });
    expect((await selectEvents(database.db, { event: 'late' })).rows).toEqual([]);
  });

  it("wait out another process's write lock, as Kysely's path does, instead of failing busy", async () => {
    const { database, path } = await open();
    const other = new SQLite(path);
    /** Runs `write` while `other` holds the write lock, which it lets go once `write` is waiting. */
    const underLock = async (write: () => Promise<unknown>) => {
      other.exec('begin immediate');
      let answered = false;
      const pending = write().finally(() => {
        answered = true;
      });
      // Waiting: a busy answer thrown as it came would have rejected it within this turn.
      await new Promise((resolve) => setImmediate(resolve));
      expect(answered).toBe(false);
      other.exec('commit');
      return pending;
    };
    try {
      // A statement outside a transaction, then a transaction's `begin immediate`, each alone.
      await expect(
        underLock(() => insertAudit(database.db, { event: 'after-lock', created_at: 1 })),
      ).resolves.toMatchObject({ numAffectedRows: 1n });
      await expect(
        underLock(() =>
          database.transaction((trx) => insertAudit(trx, { event: 'after-lock', created_at: 2 })),
        ),
      ).resolves.toMatchObject({ numAffectedRows: 1n });
      expect((await selectEvents(database.db, { event: 'after-lock' })).rows).toHaveLength(2);
    } finally {
      if (other.inTransaction) other.exec('rollback');
      other.close();
    }
  });

  it('tell the query log every statement once, a failed one included', async () => {
    const log: string[] = [];
    const { database } = await open((sql) => void log.push(sql));
    const users = createUserStore(database.db);
    await users.insertUser(newUser('logged@example.com'));
    log.length = 0;
    await users.findUserByEmailKey('logged@example.com');
    await database.transaction((trx) => insertAudit(trx, { event: 'logged', created_at: 1 }));
    // `event` is NOT NULL: the insert fails in SQLite.
    const broken = precompiledQuery<Schema, { created_at: number }>(['created_at'], (db, { created_at }) =>
      db.insertInto('audit_events').values({ event: sql<string>`null`, created_at }),
    );
    await expect(broken(database.db, { created_at: 1 })).rejects.toMatchObject({
      code: 'SQLITE_CONSTRAINT_NOTNULL',
    });
    expect(log.map((sql) => sql.split(' ').slice(0, 3).join(' '))).toEqual([
      'select * from',
      'begin immediate',
      'insert into "audit_events"',
      'commit',
      'insert into "audit_events"',
    ]);
  });

  it('fail as unavailable once the database is closed', async () => {
    const { database } = await open();
    const users = createUserStore(database.db);
    await database.close();
    const error = await users.findUserByEmailKey('x@example.com').then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isDatabaseUnavailable(error)).toBe(true);
  });
});
