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
 * PostgreSQL builds the new index first, which holds `sessions` against writes (not reads) while
 * it builds, as 021a and 027a did, and then drops the column's constraint, whose ACCESS EXCLUSIVE
 * lock (reads wait too) is then held only for the rest of the migration's transaction. SQLite
 * cannot drop a column constraint: the table is rebuilt ({@link rebuildSqliteSessions}).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (!isPostgres(db)) await rebuildSqliteSessions(db, 'text');
  await db.schema
    .createIndex('sessions_cookie_token_hash_idx')
    .on('sessions')
    .column('cookie_token_hash')
    .unique()
    .where((eb) => eb('cookie_token_hash', 'is not', null))
    .execute();
  if (isPostgres(db)) {
    await sql`alter table sessions drop constraint sessions_cookie_token_hash_key`.execute(db);
  }
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

/** A table whose foreign keys reach `sessions`, and what the rebuild keeps of it meanwhile. */
interface Dependent {
  table: string;
  /** The temporary table its rows wait in. */
  copy: string;
  /** Its stored columns (generated ones are computed again on the refill). */
  columns: string[];
  /** Its triggers' SQL: dropped while its rows are moved out and back, so they fire for neither. */
  triggers: string[];
  rows: number;
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
 * `sessions`, directly or through another such table, is copied to a temporary table (its
 * triggers set aside, so moving its rows out and back fires none) and emptied before the drop,
 * and refilled once the new `sessions` stands under its name, with the foreign keys checked at
 * commit. Every index on `sessions` (the core's and any an operator added) is created again from
 * its stored SQL, and its triggers too. Each table must hold as many rows after as before, and
 * none of them may have a broken foreign key; anything else throws, and the whole migration rolls
 * back (a process dying midway does too: it is one transaction).
 *
 * A `sessions` with columns beyond the core's (an app's `ALTER TABLE`) is refused with a message
 * rather than rebuilt without them.
 */
async function rebuildSqliteSessions(
  db: Kysely<unknown>,
  cookieColumn: 'text' | 'text unique',
): Promise<void> {
  const extra = (
    await sql<{ name: string }>`select name from pragma_table_xinfo('sessions')`.execute(db)
  ).rows
    .map((row) => row.name)
    .filter((name) => !(SESSION_COLUMNS as readonly string[]).includes(name));
  if (extra.length > 0) {
    throw new Error(
      `028a: sessions has columns Gatehouse did not create (${extra.join(', ')}); ` +
        'the migration rebuilds the table and would lose them. Move them to a table of your own first.',
    );
  }
  const dependents = await sqliteDependents(db, 'sessions');
  const sessionRows = await countRows(db, 'sessions');
  const sessionIndexes = await storedSql(db, 'index', 'sessions');
  const sessionTriggers = await storedSql(db, 'trigger', 'sessions');
  // Checked at the migration's commit instead of per statement, so the tables can be refilled in
  // any order (a table that references two of them, or itself). Turned off again below once the
  // check has passed (the commit resets it anyway).
  await sql`pragma defer_foreign_keys = on`.execute(db);
  for (const dependent of dependents) {
    const columns = sql.join(dependent.columns.map((column) => sql.id(column)));
    await sql`create temp table ${sql.id(dependent.copy)} as select ${columns} from ${sql.id(dependent.table)}`.execute(
      db,
    );
  }
  // Every copy is taken before the first delete, so a cascade (or SET NULL) from one delete into
  // another dependent changes nothing that is restored.
  for (const dependent of dependents) {
    for (const name of await triggerNames(db, dependent.table))
      await sql`drop trigger ${sql.id(name)}`.execute(db);
    await sql`delete from ${sql.id(dependent.table)}`.execute(db);
  }

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
  // Without legacy renaming, SQLite re-parses the whole schema on a rename and refuses it while
  // a view or another table's trigger names `sessions`, which does not exist at that moment (an
  // operator's reporting view would stop every start-up). Such references are by name and hold
  // again once the new table has it.
  const legacy = (await sql<{ legacy_alter_table: number }>`pragma legacy_alter_table`.execute(db)).rows[0];
  await sql`pragma legacy_alter_table = on`.execute(db);
  await sql`alter table sessions_028a rename to sessions`.execute(db);
  if (legacy?.legacy_alter_table !== 1) await sql`pragma legacy_alter_table = off`.execute(db);
  for (const statement of [...sessionIndexes, ...sessionTriggers]) await sql.raw(statement).execute(db);

  for (const dependent of dependents) {
    const columns = sql.join(dependent.columns.map((column) => sql.id(column)));
    await sql`insert into ${sql.id(dependent.table)} (${columns}) select ${columns} from ${sql.id(dependent.copy)}`.execute(
      db,
    );
    await sql`drop table ${sql.id(dependent.copy)}`.execute(db);
    for (const statement of dependent.triggers) await sql.raw(statement).execute(db);
  }
  const recounted = [
    { table: 'sessions', before: sessionRows, after: await countRows(db, 'sessions') },
    ...(await Promise.all(
      dependents.map(async (d) => ({ table: d.table, before: d.rows, after: await countRows(db, d.table) })),
    )),
  ].filter((count) => count.before !== count.after);
  if (recounted.length > 0) {
    throw new Error(
      `028a: the rebuild of sessions changed row counts (${recounted
        .map((c) => `${c.table} ${c.before} -> ${c.after}`)
        .join(', ')})`,
    );
  }
  // Only the tables the rebuild touched: a broken key elsewhere (an old restore) is not its doing.
  for (const table of ['sessions', ...dependents.map((d) => d.table)]) {
    const broken = await sql<{ table: string }>`select * from pragma_foreign_key_check(${table})`.execute(db);
    if (broken.rows.length > 0) {
      throw new Error(
        `028a: the rebuild of sessions left ${broken.rows.length} broken foreign keys in ${table}`,
      );
    }
  }
  await sql`pragma defer_foreign_keys = off`.execute(db);
}

async function countRows(db: Kysely<unknown>, table: string): Promise<number> {
  const row = (await sql<{ n: number }>`select count(*) as n from ${sql.id(table)}`.execute(db)).rows[0];
  return Number(row?.n ?? 0);
}

/** The stored SQL of `table`'s indexes or triggers (a column constraint's autoindex has none). */
async function storedSql(db: Kysely<unknown>, type: 'index' | 'trigger', table: string): Promise<string[]> {
  const rows = await sql<{ sql: string }>`select sql from sqlite_master
    where type = ${type} and lower(tbl_name) = lower(${table}) and sql is not null`.execute(db);
  return rows.rows.map((row) => row.sql);
}

async function triggerNames(db: Kysely<unknown>, table: string): Promise<string[]> {
  const rows = await sql<{ name: string }>`select name from sqlite_master
    where type = 'trigger' and lower(tbl_name) = lower(${table})`.execute(db);
  return rows.rows.map((row) => row.name);
}

/**
 * The tables whose foreign keys reach `parent`, directly or through one another. SQLite compares
 * table names without regard to case, and `pragma_foreign_key_list` gives the name as the
 * `REFERENCES` clause wrote it (`Sessions`), so names are compared lower-cased.
 */
async function sqliteDependents(db: Kysely<unknown>, parent: string): Promise<Dependent[]> {
  const tables = await sql<{ name: string }>`select name from sqlite_master
    where type = 'table' and name not like 'sqlite_%'`.execute(db);
  const references = new Map<string, string[]>();
  for (const { name } of tables.rows) {
    const keys = await sql<{ table: string }>`select "table" from pragma_foreign_key_list(${name})`.execute(
      db,
    );
    for (const key of keys.rows) {
      const referenced = key.table.toLowerCase();
      const children = references.get(referenced) ?? [];
      if (!children.includes(name)) children.push(name);
      references.set(referenced, children);
    }
  }
  const order: string[] = [];
  const queue = [parent.toLowerCase()];
  while (queue.length > 0) {
    const next = queue.shift() as string;
    for (const child of references.get(next) ?? []) {
      if (child.toLowerCase() === parent.toLowerCase() || order.includes(child)) continue;
      order.push(child);
      queue.push(child.toLowerCase());
    }
  }
  return Promise.all(
    order.map(async (table, i) => {
      // `hidden` 0: a stored column (2 and 3 are generated ones, 1 a virtual table's hidden column).
      const columns = await sql<{ name: string }>`select name from pragma_table_xinfo(${table})
        where hidden = 0`.execute(db);
      return {
        table,
        copy: `migration_028a_${i}`,
        columns: columns.rows.map((row) => row.name),
        triggers: await storedSql(db, 'trigger', table),
        rows: await countRows(db, table),
      };
    }),
  );
}
