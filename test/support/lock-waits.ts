import { sql } from 'kysely';
import type { Database } from '../../src/storage/open-database.js';

/** A gate a transaction waits on: `open()` lets it go on (and commit). */
export function gate(): { opened: Promise<void>; open(): void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** A call held by {@link holdNextCall}. */
export interface HeldCall {
  /** Resolves once the held call has run (it has not returned yet). */
  reached: Promise<void>;
  /** Lets the held call return. */
  release(): void;
  /** Puts the method back and lets a held call return: call it in `finally`. */
  restore(): void;
}

/**
 * Holds the next call of `target[method]` after it has run, before it returns: the transaction
 * that called it stays open (its locks held) until `release()`. Later calls run as before.
 */
export function holdNextCall<T extends object, K extends keyof T>(target: T, method: K): HeldCall {
  const original = target[method];
  if (typeof original !== 'function') throw new Error(`holdNextCall: ${String(method)} is not a method`);
  const reached = gate();
  const held = gate();
  const restore = () => {
    target[method] = original;
  };
  target[method] = (async (...args: unknown[]) => {
    const result = await original.apply(target, args);
    restore();
    reached.open();
    await held.opened;
    return result;
  }) as T[K];
  return {
    reached: reached.opened,
    release: held.open,
    restore: () => {
      restore();
      held.open();
    },
  };
}

/**
 * Resolves once `waiters` other connections of `database` (one by default) wait on a lock
 * (PostgreSQL), or at once
 * (SQLite: a transaction holds the only connection, so whatever was started meanwhile is queued
 * behind it whatever the timing). Also resolves when `settled` does, so a run that never blocks
 * (the bug) ends the wait and fails on its assertions instead of hanging. Polls on the event loop
 * (`setImmediate`), never on a timer: the wait is for a condition, not for time to pass.
 */
export async function someoneWaitsOnALock(
  database: Database,
  settled: Promise<unknown>,
  waiters = 1,
): Promise<void> {
  if (database.dialect !== 'postgres') return;
  let done = false;
  void settled.finally(() => {
    done = true;
  });
  while (!done) {
    const { rows } = await sql<{ n: string }>`select count(*) as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`.execute(database.db);
    if (Number(rows[0]?.n) >= waiters) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
