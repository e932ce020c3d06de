/** A timer scheduled by a {@link Scheduler}. */
export interface ScheduledTimer {
  /** Stops the timer; safe to call more than once. */
  cancel(): void;
}

/**
 * Where the core's periodic work (the hourly sweep, the revocation list's reloads) is scheduled.
 * Injectable so tests drive it with the same clock the code reads (`createTestClock` from
 * `gatehouse/testing`: advancing it fires the timers that fall due) instead of sleeping.
 */
export interface Scheduler {
  /** Runs `run` once, `ms` from now. */
  setTimeout(run: () => void, ms: number): ScheduledTimer;
  /** Runs `run` every `ms`. */
  setInterval(run: () => void, ms: number): ScheduledTimer;
}

/**
 * Node's timers, unref'd: background upkeep never keeps the process alive on its own (a server
 * is kept alive by its socket; a CLI command should exit when its work is done).
 */
export const systemScheduler: Scheduler = {
  setTimeout(run, ms) {
    const timer = setTimeout(run, ms);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
  setInterval(run, ms) {
    const timer = setInterval(run, ms);
    timer.unref();
    return { cancel: () => clearInterval(timer) };
  },
};
