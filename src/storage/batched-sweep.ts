import { setImmediate as nextTurn } from 'node:timers/promises';
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Schema } from './schema.js';

/**
 * Rows one sweep statement deletes or updates at most. A single `DELETE … WHERE expires_at < ?`
 * over a backlog runs as long as the backlog is big: on PostgreSQL it meets `statement_timeout`
 * and rolls back, every pass, for ever (the table then only grows); on SQLite it holds the only
 * writer and, better-sqlite3 being synchronous, the event loop (1.8 s for a million audit rows).
 * A batch is a few milliseconds on either engine, and the event loop gets a turn between two.
 */
export const SWEEP_BATCH_ROWS = 1000;

/** Options of the batched sweeps. */
export interface SweepBatchOptions {
  /** Rows per statement. @default SWEEP_BATCH_ROWS */
  batchSize?: number;
  /** Stops the sweep between two statements (the server is closing). */
  signal?: AbortSignal;
}

type Table = keyof Schema & string;

const affected = (result: { numAffectedRows?: bigint }) => Number(result.numAffectedRows ?? 0n);

/** Lets requests run between two statements (better-sqlite3 runs each synchronously). */
const yieldTurn = () => nextTurn();

/**
 * Deletes the rows of `table` that match `where`, {@link SWEEP_BATCH_ROWS} per statement, until a
 * statement finds fewer. For filters an index serves (the statement then reads only the rows it
 * deletes); see {@link walkByKey} for the others. `key` is the table's primary key (one or more
 * columns: SQLite and PostgreSQL both take a row value `IN` a subquery). Ends when the rows are
 * gone: the filter must not match rows written after the sweep began (a cutoff in the past).
 * Returns how many rows went.
 */
export async function deleteInBatches(
  db: Kysely<Schema>,
  table: Table,
  key: readonly [string, ...string[]],
  where: RawBuilder<unknown>,
  options: SweepBatchOptions = {},
): Promise<number> {
  const size = options.batchSize ?? SWEEP_BATCH_ROWS;
  const columns = sql.join(key.map((column) => sql.ref(column)));
  const target = key.length === 1 ? columns : sql`(${columns})`;
  let total = 0;
  while (options.signal?.aborted !== true) {
    const count = affected(
      await sql`delete from ${sql.table(table)} where ${target} in (select ${columns} from ${sql.table(table)} where ${where} limit ${size})`.execute(
        db,
      ),
    );
    total += count;
    if (count < size) break;
    await yieldTurn();
  }
  return total;
}

/**
 * Runs `act` over `table` one primary-key range of {@link SWEEP_BATCH_ROWS} rows at a time, in key
 * order, for filters no index serves (`sessions.expires_at`, `refresh_tokens.spent_at`): each
 * statement reads one range of the primary key's index, so a pass costs one walk over the table,
 * in pieces, and no index has to be kept up to date by every sign-in for it. `act` gets the range
 * as a condition to `and` with its own; the sum of what it returns is returned.
 */
export async function walkByKey(
  db: Kysely<Schema>,
  table: Table,
  key: string,
  act: (range: RawBuilder<unknown>) => Promise<number>,
  options: SweepBatchOptions = {},
): Promise<number> {
  const size = options.batchSize ?? SWEEP_BATCH_ROWS;
  const column = sql.ref(key);
  let after: string | undefined;
  let total = 0;
  while (options.signal?.aborted !== true) {
    const from = after === undefined ? sql`true` : sql`${column} > ${after}`;
    // The range's last key: the size-th key after `after` (none when fewer are left: the last range).
    const { rows } = await sql<{
      last: string;
    }>`select ${column} as last from ${sql.table(table)} where ${from} order by ${column} limit 1 offset ${size - 1}`.execute(
      db,
    );
    const last = rows[0]?.last;
    total += await act(last === undefined ? from : sql`${from} and ${column} <= ${last}`);
    if (last === undefined) break;
    after = last;
    await yieldTurn();
  }
  return total;
}

/** {@link walkByKey} deleting the rows of each range that match `where`. */
export function deleteByKeyWalk(
  db: Kysely<Schema>,
  table: Table,
  key: string,
  where: RawBuilder<unknown>,
  options: SweepBatchOptions = {},
): Promise<number> {
  return walkByKey(
    db,
    table,
    key,
    async (range) =>
      affected(await sql`delete from ${sql.table(table)} where ${range} and ${where}`.execute(db)),
    options,
  );
}
