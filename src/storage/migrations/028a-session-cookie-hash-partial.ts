import { type Kysely, sql } from 'kysely';
import { isPostgres } from './dialect.js';

/**
 * Issue 10, item 5: a bearer sign-in stops writing an entry into the cookie hash's unique index.
 *
 * `sessions.cookie_token_hash` was declared `UNIQUE` on its column, so every session put an entry
 * into its index, bearer sessions (all password grants, refresh-token families, OAuth clients) a
 * NULL. Only cookie sessions have a hash, and the one query on it is `cookie_token_hash = ?`,
 * which implies `is not null`; the uniqueness is now a partial unique index over the hashes alone
 * (`sessions_cookie_token_hash_idx … where cookie_token_hash is not null`). A bearer login writes
 * one b-tree fewer: on SQLite ≈ 1 WAL frame (two `pwrite` calls) of its ≈ 12 (bench/README.md,
 * seventh and thirteenth rounds), on PostgreSQL one index entry fewer per session.
 *
 * PostgreSQL drops the column's constraint and builds the index (which holds `sessions` against
 * writes while it builds, as 021a and 027a did). SQLite cannot drop a column constraint: the table
 * is rebuilt ({@link rebuildSqliteSessions}).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (isPostgres(db)) {
    await sql`alter table sessions drop constraint sessions_cookie_token_hash_key`.execute(db);
  } else {
    await rebuildSqliteSessions(db, 'text');
  }
  await db.schema
    .createIndex('sessions_cookie_token_hash_idx')
    .on('sessions')
    .column('cookie_token_hash')
    .unique()
    .where((eb) => eb('cookie_token_hash', 'is not', null))
    .execute();
}

/** Puts back the column's `UNIQUE` (and its index over every session). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('sessions_cookie_token_hash_idx').execute();
  if (isPostgres(db)) {
    await sql`alter table sessions add constraint sessions_cookie_token_hash_key unique (cookie_token_hash)`.execute(
      db,
    );
  } else {
    await rebuildSqliteSessions(db, 'text unique');
  }
}

/** `sessions`' columns at 027a, in their order (the rebuild copies them by name). */
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
  'client_id',
] as const;

/** Tables whose rows a rebuild of `sessions` must keep aside: those whose foreign keys reach it. */
interface Dependent {
  table: string;
  copy: string;
}

/**
 * Rebuilds SQLite's `sessions` with `cookie_token_hash` declared as `cookieColumn`, keeping every
 * row of it and of the tables that depend on it.
 *
 * SQLite's own recipe ("Making Other Kinds Of Table Schema Changes", sqlite.org/lang_altertable.html)
 * turns foreign keys off first, but migrations run inside one `BEGIN IMMEDIATE`
 * (`sqlite-busy-wait.ts`), where `PRAGMA foreign_keys` is a no-op; with them on, `DROP TABLE
 * sessions` deletes its rows first and that cascades into `refresh_tokens` and `access_tokens`
 * (and any app table whose foreign keys reach them). So every table whose foreign keys reach
 * `sessions`, directly or through another such table, is copied to a temporary table and emptied
 * before the drop, and refilled once the new `sessions` stands under its name. A
 * failure anywhere rolls the whole migration back. `foreign_key_check` must then find nothing.
 *
 * Indexes and triggers on `sessions` go with the old table: the indexes are the ones 001, 021a and
 * 027a define, recreated here; any trigger is recreated from its stored SQL.
 */
async function rebuildSqliteSessions(
  db: Kysely<unknown>,
  cookieColumn: 'text' | 'text unique',
): Promise<void> {
  const dependents = await sqliteDependents(db, 'sessions');
  // Checked at the migration's commit instead of per statement, so the tables can be refilled in
  // any order (a table that references two of them, or itself). Reset by the commit; turned off
  // again below once the check has passed.
  await sql`pragma defer_foreign_keys = on`.execute(db);
  for (const dependent of dependents) {
    await sql`create temp table ${sql.id(dependent.copy)} as select * from ${sql.id(dependent.table)}`.execute(
      db,
    );
  }
  // Every copy is taken before the first delete, so a cascade (or SET NULL) from one delete into
  // another dependent changes nothing that is restored.
  for (const dependent of dependents) {
    await sql`delete from ${sql.id(dependent.table)}`.execute(db);
  }
  const triggers = await sql<{ sql: string }>`select sql from sqlite_master
    where type = 'trigger' and tbl_name = 'sessions' and sql is not null`.execute(db);

  await sql`create table sessions_028a (
    id text primary key,
    user_id text not null references users (id) on delete cascade,
    transport text not null,
    scope text not null,
    created_at bigint not null,
    last_used_at bigint not null,
    expires_at bigint not null,
    revoked_at bigint,
    user_agent text,
    ip text,
    cookie_token_hash ${sql.raw(cookieColumn)},
    auth_time bigint,
    amr text,
    client_id text default 'gatehouse' not null
  )`.execute(db);
  const columns = sql.join(SESSION_COLUMNS.map((column) => sql.id(column)));
  await sql`insert into sessions_028a (${columns}) select ${columns} from sessions`.execute(db);
  await sql`drop table sessions`.execute(db);
  await sql`alter table sessions_028a rename to sessions`.execute(db);
  await db.schema
    .createIndex('sessions_user_idx')
    .on('sessions')
    .columns(['user_id', 'revoked_at', 'expires_at', 'client_id'])
    .execute();
  await db.schema
    .createIndex('sessions_revoked_idx')
    .on('sessions')
    .columns(['revoked_at', 'expires_at'])
    .where((eb) => eb('revoked_at', 'is not', null))
    .execute();
  for (const trigger of triggers.rows) await sql.raw(trigger.sql).execute(db);

  for (const dependent of dependents) {
    await sql`insert into ${sql.id(dependent.table)} select * from ${sql.id(dependent.copy)}`.execute(db);
    await sql`drop table ${sql.id(dependent.copy)}`.execute(db);
  }
  const broken = await sql<{ table: string }>`select * from pragma_foreign_key_check`.execute(db);
  if (broken.rows.length > 0) {
    throw new Error(`028a: the rebuild of sessions left ${broken.rows.length} broken foreign keys`);
  }
  await sql`pragma defer_foreign_keys = off`.execute(db);
}

/** The tables whose foreign keys reach `parent`, directly or through one another. */
async function sqliteDependents(db: Kysely<unknown>, parent: string): Promise<Dependent[]> {
  const tables = await sql<{ name: string }>`select name from sqlite_master
    where type = 'table' and name not like 'sqlite_%'`.execute(db);
  const references = new Map<string, string[]>();
  for (const { name } of tables.rows) {
    const keys = await sql<{ table: string }>`select "table" from pragma_foreign_key_list(${name})`.execute(
      db,
    );
    for (const key of keys.rows) {
      const children = references.get(key.table) ?? [];
      if (!children.includes(name)) children.push(name);
      references.set(key.table, children);
    }
  }
  const order: string[] = [];
  const queue = [parent];
  while (queue.length > 0) {
    const next = queue.shift() as string;
    for (const child of references.get(next) ?? []) {
      if (child === parent || order.includes(child)) continue;
      order.push(child);
      queue.push(child);
    }
  }
  return order.map((table, i) => ({ table, copy: `migration_028a_${i}` }));
}
