import { DEFAULT_MIGRATION_TABLE, type Kysely, sql } from 'kysely';

/**
 * An index that PostgreSQL builds with `CREATE INDEX CONCURRENTLY`, after the migrations and
 * outside their transaction. A plain `CREATE INDEX` holds a SHARE lock on its table for the whole
 * build, and Kysely runs every pending migration in one transaction, so an upgrade that indexed a
 * large `audit_events` made every login (each writes an audit row) wait for the build and then for
 * the rest of the migrations, on every instance, old ones included. A concurrent build lets writes
 * go on (PostgreSQL documentation, "Building Indexes Concurrently").
 *
 * Only plain, non-unique indexes that nothing in a migration depends on belong here: the migration
 * that owns one builds it itself on SQLite (which has no concurrent build, and one writer anyway)
 * and does nothing on PostgreSQL.
 */
export interface OnlineIndex {
  /** The index's name, unique in the schema. */
  readonly name: string;
  readonly table: string;
  readonly columns: readonly string[];
  /** The core migration that owns it: built only once that migration is in the history. */
  readonly migration: string;
}

/** The core's online indexes, in the order they are built. */
export const ONLINE_INDEXES: readonly OnlineIndex[] = [
  {
    name: 'audit_events_actor_idx',
    table: 'audit_events',
    columns: ['actor_id'],
    migration: '038a-audit-party-indexes',
  },
  {
    name: 'audit_events_target_idx',
    table: 'audit_events',
    columns: ['target_id'],
    migration: '038a-audit-party-indexes',
  },
  {
    name: 'oauth_codes_client_idx',
    table: 'oauth_codes',
    columns: ['client_id'],
    migration: '039a-admin-path-indexes',
  },
  {
    name: 'oauth_consents_client_idx',
    table: 'oauth_consents',
    columns: ['client_id'],
    migration: '039a-admin-path-indexes',
  },
  {
    name: 'users_created_idx',
    table: 'users',
    columns: ['created_at', 'id'],
    migration: '039a-admin-path-indexes',
  },
];

/**
 * The session-level advisory lock one instance holds while it builds. A second instance starting
 * at once skips the step (the first builds them) rather than drop the first one's build in
 * progress as a leftover (below). It must not wait for the lock: a concurrent build waits for every
 * transaction older than its own snapshot, the waiting statement included, and PostgreSQL reported
 * the pair as a deadlock. Any fixed number works; this is "gateid" in ASCII.
 */
const BUILD_LOCK = 0x67_61_74_65_69_64;

/**
 * How long a build waits for the transactions it must outlast (a concurrent build waits for every
 * snapshot older than its own, read-only ones included: a `pg_dump`, a report, a forgotten `BEGIN`).
 * Bounded, and a build that gives up is no failure of the start-up: queries work without the index,
 * only slower, and the next start-up tries again (review 2026-12-06 O1: with 30 minutes, a nightly
 * backup held an upgraded server unready, and `revoke-all`, for the length of the dump).
 */
const BUILD_WAIT = '10s';

/** What {@link buildOnlineIndexes} did. */
export interface OnlineIndexReport {
  /** Indexes built now. */
  built: string[];
  /** True when another session held the build lock: it builds them, this one did not look. */
  busy: boolean;
  /**
   * The index whose build failed, and why (a long transaction, a role that does not own the table,
   * a read-only server): the rest were not tried; the next start-up tries again.
   */
  failed?: { index: string; reason: string };
}

/**
 * Builds every {@link ONLINE_INDEXES} entry whose migration has run and that does not exist yet, or
 * exists invalid (a build interrupted by a crash, a cancel or a lost connection leaves its index
 * in the catalog, marked invalid: unused by queries, yet written by every insert, and skipped by
 * `IF NOT EXISTS`), on PostgreSQL, one at a time, on one connection. Idempotent: with every index
 * valid it only reads the catalog. While another session builds, returns at once (that one
 * finishes them; until then queries run as they did before the index). Never throws for a build
 * that fails: it reports it (see {@link OnlineIndexReport.failed}).
 */
export async function buildOnlineIndexes<DB>(
  db: Kysely<DB>,
  indexes = ONLINE_INDEXES,
): Promise<OnlineIndexReport> {
  return db.connection().execute(async (connection) => {
    const { rows: history } = await sql<{
      name: string;
    }>`select name from ${sql.table(DEFAULT_MIGRATION_TABLE)}`.execute(connection);
    const applied = new Set(history.map((row) => row.name));
    const wanted = indexes.filter((index) => applied.has(index.migration));
    if (wanted.length === 0) return { built: [], busy: false };
    const { rows: lock } = await sql<{
      locked: boolean;
    }>`select pg_try_advisory_lock(${sql.lit(BUILD_LOCK)}) as locked`.execute(connection);
    if (lock[0]?.locked !== true) return { built: [], busy: true };
    const report: OnlineIndexReport = { built: [], busy: false };
    try {
      await sql`set lock_timeout = ${sql.lit(BUILD_WAIT)}`.execute(connection);
      for (const index of wanted) {
        try {
          // `to_regclass` resolves the name through the search path, as the migrations' DDL does.
          const { rows } = await sql<{ valid: boolean }>`select i.indisvalid as valid from pg_index i
            where i.indexrelid = to_regclass(${index.name})`.execute(connection);
          if (rows[0]?.valid === true) continue;
          if (rows[0] !== undefined)
            await sql`drop index concurrently if exists ${sql.id(index.name)}`.execute(connection);
          await sql`create index concurrently if not exists ${sql.id(index.name)} on ${sql.table(index.table)}
            (${sql.join(index.columns.map((column) => sql.id(column)))})`.execute(connection);
          report.built.push(index.name);
        } catch (error) {
          // The others would most likely fail alike (the same long transaction, the same role).
          report.failed = {
            index: index.name,
            reason: error instanceof Error ? error.message : String(error),
          };
          break;
        }
      }
    } finally {
      // Best effort: a connection that broke has lost its session, and with it the lock.
      await sql`select pg_advisory_unlock(${sql.lit(BUILD_LOCK)})`.execute(connection).catch(() => {});
      await sql`reset lock_timeout`.execute(connection).catch(() => {});
    }
    return report;
  });
}
