import type { ScheduledTimer, Scheduler } from './scheduler.js';

/** One piece of a {@link PeriodicSweep}'s pass: deletes or clears what is past its time. */
export interface SweepStep {
  /** Names the step in the warning when it fails. */
  readonly name: string;
  /** Does the step's work as of `now`; stops between two statements once `signal` is aborted. */
  run(now: number, signal: AbortSignal): Promise<unknown>;
}

/** Options of {@link startPeriodicSweep}. */
export interface PeriodicSweepOptions {
  steps: readonly SweepStep[];
  scheduler: Scheduler;
  /** The time a pass deletes by, read once per pass (a clamped clock: `lib/sweep-clock.ts`). */
  now: () => number;
  /** Told of each step that failed (once per step and pass: at most a few lines an hour). */
  warn: (message: string, detail: Record<string, unknown>) => void;
  intervalMs: number;
  /** The first pass, after start-up: an instance restarted more often than `intervalMs` sweeps too. */
  firstPassAfterMs: number;
}

/** A running {@link startPeriodicSweep}. */
export interface PeriodicSweep {
  /**
   * Runs a pass now; while one runs, another follows it (once, with the time read now). Resolves
   * when no pass runs. Passes never overlap.
   */
  runPass(): Promise<void>;
  /** Stops the timers, asks a pass under way to stop after its current statement, and waits for it. */
  stop(): Promise<void>;
}

/**
 * Runs `steps` one after the other, a pass every `intervalMs` and once soon after start-up. Each
 * step runs whatever the others did: a step that fails (a statement timed out, the database
 * unreachable) is warned about and the next one runs, where before one failure skipped the rest and
 * every failure was dropped unseen. A pass that falls due while one runs follows it, once, with the
 * time read when it fell due (passes never overlap: a slow pass does not pile up more).
 */
export function startPeriodicSweep(options: PeriodicSweepOptions): PeriodicSweep {
  const { steps, warn } = options;
  const stopping = new AbortController();
  let running: Promise<void> | undefined;

  const pass = async (now: number) => {
    for (const step of steps) {
      if (stopping.signal.aborted) return;
      try {
        await step.run(now, stopping.signal);
      } catch (error) {
        if (stopping.signal.aborted) return;
        warn('sweep step failed; it runs again at the next pass', {
          step: step.name,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  };
  /** The time of a pass that fell due while one ran: it runs right after, once. */
  let due: number | undefined;
  const tick = (): Promise<void> => {
    // Read at every tick, also one that only queues a pass: the clamped clock moves at most its
    // step per reading, so a skipped reading would hold the sweep back.
    const now = options.now();
    if (running !== undefined) {
      due = now;
      return running;
    }
    running = (async () => {
      let next: number | undefined = now;
      while (next !== undefined && !stopping.signal.aborted) {
        due = undefined;
        await pass(next);
        next = due;
      }
    })().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timers: ScheduledTimer[] = [
    options.scheduler.setTimeout(() => void tick(), options.firstPassAfterMs),
    options.scheduler.setInterval(() => void tick(), options.intervalMs),
  ];
  return {
    runPass: () => (stopping.signal.aborted ? Promise.resolve() : tick()),
    async stop() {
      for (const timer of timers) timer.cancel();
      stopping.abort();
      await running;
    },
  };
}
