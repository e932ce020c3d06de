import { type Kysely, sql } from 'kysely';
import { isPostgres } from './dialect.js';

/**
 * Issue 10, item 5: two of the `sessions` indexes stop taking an entry for every login.
 *
 * - `cookie_token_hash` was `UNIQUE` on the column, so every bearer session (no cookie, NULL hash)
 *   still put a NULL entry in the unique index: one more b-tree page written per login. It becomes
 *   a partial unique index over the non-NULL hashes (`sessions_cookie_token_idx`). Uniqueness is
 *   unchanged (NULLs never conflicted), and `where cookie_token_hash = ?` implies the index's
 *   `is not null`, so SQLite and PostgreSQL still use it for the cookie look-up.
 * - `sessions_revoked_idx (revoked_at, expires_at)` serves only the revocation list's
 *   `revoked_at > ? and expires_at > ?`; a new session is never revoked, so it now indexes revoked
 *   sessions only (`where revoked_at is not null`, which that range condition implies). It also
 *   stops SQLite's planner from answering a user's live sessions (`user_id = ? and revoked_at is
 *   null`: listing them, revoking them all) with that index's NULL range, i.e. every live session
 *   of every user; those queries now use `sessions_user_idx`.
 *
 * Measured (bench/login-sql.mjs, SQLite, 20 000 sessions already stored): WAL frames per login
 * 14.3 → 12.5; instructions in SQLite's statements per login 201.6 k → 189.2 k.
 *
 * SQLite cannot drop a column's `UNIQUE` (its index is part of the table), so the table is rebuilt
 * as https://www.sqlite.org/lang_altertable.html#otheralter prescribes, in one transaction: foreign
 * keys off (outside the transaction, where the pragma takes effect), create the new table, copy,
 * drop, rename, recreate the indexes, check the foreign keys, commit, foreign keys back on.
 * `refresh_tokens` and `access_tokens` reference `sessions(id)`: with foreign keys off, dropping the
 * old table does not cascade to them, and their references resolve to the renamed table. Kysely's
 * migrator runs SQLite migrations outside any transaction, so this one brings its own; a crash
 * after its commit and before the migrator records it re-runs it, which rebuilds the table again
 * (the steps work on either shape).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (isPostgres(db)) {
    // PostgreSQL names a column's UNIQUE constraint <table>_<column>_key.
    await sql`alter table sessions drop constraint if exists sessions_cookie_token_hash_key`.execute(db);
    await createCookieIndex(db);
    await db.schema.dropIndex('sessions_revoked_idx').execute();
    await createRevokedIndex(db);
    return;
  }
  await rebuildSqliteSessions(db, async (trx) => {
    await createCookieIndex(trx);
    await createRevokedIndex(trx);
  });
}

/** Puts back the column's `UNIQUE` and the full `(revoked_at, expires_at)` index. */
export async function down(db: Kysely<unknown>): Promise<void> {
  if (isPostgres(db)) {
    await db.schema.dropIndex('sessions_cookie_token_idx').execute();
    await sql`alter table sessions add constraint sessions_cookie_token_hash_key unique (cookie_token_hash)`.execute(
      db,
    );
    await db.schema.dropIndex('sessions_revoked_idx').execute();
    await db.schema
      .createIndex('sessions_revoked_idx')
      .on('sessions')
      .columns(['revoked_at', 'expires_at'])
      .execute();
    return;
  }
  await rebuildSqliteSessions(
    db,
    async (trx) => {
      await trx.schema
        .createIndex('sessions_revoked_idx')
        .on('sessions')
        .columns(['revoked_at', 'expires_at'])
        .execute();
    },
    { uniqueCookieColumn: true },
  );
}

async function createCookieIndex(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('sessions_cookie_token_idx')
    .on('sessions')
    .column('cookie_token_hash')
    .unique()
    .where(sql.ref('cookie_token_hash'), 'is not', null)
    .execute();
}

async function createRevokedIndex(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('sessions_revoked_idx')
    .on('sessions')
    .columns(['revoked_at', 'expires_at'])
    .where(sql.ref('revoked_at'), 'is not', null)
    .execute();
}

/** Every column of `sessions` (migrations 001 and 012b), in table order. */
const SESSION_COLUMNS = [
  'id',
  'user_id',
  'transport',
  'scope',
  'created_at',
  'last_used_at',
  'expires_at',
  'revoked_at',
  'user_agent',
  'ip',
  'cookie_token_hash',
  'auth_time',
  'amr',
] as const;

/**
 * Rebuilds SQLite's `sessions` with the same columns (the cookie hash `UNIQUE` on the column only
 * when `uniqueCookieColumn`), then `sessions_user_idx` and the indexes `indexes` creates.
 */
async function rebuildSqliteSessions(
  db: Kysely<unknown>,
  indexes: (trx: Kysely<unknown>) => Promise<void>,
  { uniqueCookieColumn = false } = {},
): Promise<void> {
  const { rows } = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(db);
  const enforced = rows[0]?.foreign_keys === 1;
  // A no-op inside a transaction: it has to be switched before `begin`.
  if (enforced) await sql`pragma foreign_keys = off`.execute(db);
  try {
    await db.transaction().execute(async (trx) => {
      await trx.schema
        .createTable('sessions_021a')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('transport', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('user_agent', 'text')
        .addColumn('ip', 'text')
        .addColumn('cookie_token_hash', 'text', (c) => (uniqueCookieColumn ? c.unique() : c))
        .addColumn('auth_time', 'bigint')
        .addColumn('amr', 'text')
        .execute();
      const columns = sql.join(SESSION_COLUMNS.map((column) => sql.ref(column)));
      await sql`insert into sessions_021a (${columns}) select ${columns} from sessions`.execute(trx);
      await trx.schema.dropTable('sessions').execute();
      await trx.schema.alterTable('sessions_021a').renameTo('sessions').execute();
      await trx.schema.createIndex('sessions_user_idx').on('sessions').column('user_id').execute();
      await indexes(trx);
      if (enforced) {
        // Step 10 of the procedure: the copy must leave no reference dangling, either way.
        const violations = await sql`pragma foreign_key_check`.execute(trx);
        if (violations.rows.length > 0)
          throw new Error('migration 021a: foreign key check failed after the rebuild');
      }
    });
  } finally {
    if (enforced) await sql`pragma foreign_keys = on`.execute(db);
  }
}
