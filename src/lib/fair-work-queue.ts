import { createSourceTally } from './source-tally.js';

/** Options of {@link createFairWorkQueue}. */
export interface FairWorkQueueOptions {
  /** Tasks running at once. */
  maxRunning: number;
  /** Tasks running or waiting; beyond it a task is dropped (see {@link FairWorkQueue.push}). */
  maxQueued: number;
  /** Told about a dropped task or a task that failed (its name and the error message only). */
  warn(message: string, detail?: Record<string, unknown>): void;
}

/** Outcome of {@link FairWorkQueue.push}. */
export type PushOutcome = 'queued' | 'queued_evicting_other' | 'dropped';

/**
 * Background work detached from requests, bounded and fair between sources. When the queue is
 * full, the oldest waiting task of the source holding the most tasks makes room, so a flood from
 * one client (or from many) cannot make another client's request be dropped: a victim's
 * forgot-password request still gets its turn while an attacker's are thrown away (issue 12:
 * limits must not be aimable at someone else).
 */
export interface FairWorkQueue {
  /** Queues `task` for `source`; it starts on a later turn of the event loop, never in the caller's. */
  push(source: string, name: string, task: () => Promise<void>): PushOutcome;
  /** Tasks running or waiting. */
  size(): number;
  /** Resolves when nothing runs or waits. */
  idle(): Promise<void>;
}

interface Entry {
  source: string;
  name: string;
  task: () => Promise<void>;
}

/** Creates a {@link FairWorkQueue}. */
export function createFairWorkQueue(options: FairWorkQueueOptions): FairWorkQueue {
  const waiting: Entry[] = [];
  const tally = createSourceTally();
  let running = 0;
  let idleWaiters: (() => void)[] = [];

  const settle = () => {
    if (running > 0 || waiting.length > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  };

  const start = () => {
    while (running < options.maxRunning) {
      const entry = waiting.shift();
      if (entry === undefined) break;
      running += 1;
      // The tally counts what a full queue could drop: a started task is no longer that. Counted,
      // a source whose only task runs could be named the heaviest, and the newcomer refused while
      // droppable tasks of other sources wait (a flood from many addresses, one task each).
      tally.remove(entry.source);
      void entry
        .task()
        .catch((error: unknown) =>
          options.warn(`${entry.name} failed`, {
            error: error instanceof Error ? error.message : String(error),
          }),
        )
        .finally(() => {
          running -= 1;
          start();
          settle();
        });
    }
  };

  return {
    push(source, name, task) {
      let outcome: PushOutcome = 'queued';
      if (running + waiting.length >= options.maxQueued) {
        const heaviest = tally.evictionCandidate(source);
        const index = heaviest === undefined ? -1 : waiting.findIndex((entry) => entry.source === heaviest);
        const evicted = index === -1 ? undefined : waiting.splice(index, 1)[0];
        if (evicted === undefined) {
          options.warn(`${name}: too many waiting; request dropped`);
          return 'dropped';
        }
        tally.remove(evicted.source);
        options.warn(`${evicted.name}: too many waiting from one source; its oldest request dropped`);
        outcome = 'queued_evicting_other';
      }
      tally.add(source);
      waiting.push({ source, name, task });
      // The next turn at the earliest: nothing of the task runs in the caller's.
      setImmediate(start);
      return outcome;
    },
    size: () => running + waiting.length,
    idle() {
      if (running === 0 && waiting.length === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}
