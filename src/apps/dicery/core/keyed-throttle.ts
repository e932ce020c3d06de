import type { ScheduledTimer, Scheduler } from '../../../index.js';

/**
 * Runs some work per key at most once per window, always once more after the last trigger: the
 * first trigger of a quiet key runs at once (no added latency when nothing churns), later ones
 * inside the window are folded into one run at its end, which opens the next window. The work
 * reads the key's latest state when it runs, so the final state is never lost, only the
 * intermediate ones (red-team 2026-12b G8: presence churn fanned out per change).
 */
export interface KeyedThrottle {
  /** Asks for a run of `key`'s work: now, or at the end of its current window. */
  trigger(key: string): void;
  /** Keys inside a window now (each holds one timer). */
  size(): number;
  /** Cancels every window and the runs they owed. */
  clear(): void;
}

/**
 * Creates a {@link KeyedThrottle} on `scheduler` (a test clock drives it in tests).
 *
 * Bound: one entry and one timer per key triggered within the last `windowMs`; a window with no
 * trigger in it closes and forgets its key, so the map holds only keys that are changing now.
 */
export function createKeyedThrottle(
  scheduler: Scheduler,
  windowMs: number,
  run: (key: string) => void,
): KeyedThrottle {
  if (!Number.isFinite(windowMs) || windowMs <= 0) {
    throw new Error(`keyed throttle: the window must be a positive number of ms, got ${windowMs}`);
  }
  const windows = new Map<string, { owed: boolean; timer: ScheduledTimer }>();

  const open = (key: string) => {
    windows.set(key, { owed: false, timer: scheduler.setTimeout(() => close(key), windowMs) });
  };
  const close = (key: string) => {
    const entry = windows.get(key);
    windows.delete(key);
    if (entry === undefined || !entry.owed) return;
    // The owed run opens a window of its own, so runs stay at least `windowMs` apart.
    open(key);
    run(key);
  };

  return {
    trigger(key) {
      const entry = windows.get(key);
      if (entry !== undefined) {
        entry.owed = true;
        return;
      }
      open(key);
      run(key);
    },
    size: () => windows.size,
    clear() {
      for (const entry of windows.values()) entry.timer.cancel();
      windows.clear();
    },
  };
}
