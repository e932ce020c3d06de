/**
 * A tiny FIFO semaphore: runs at most `max` tasks at once, the rest in arrival order. With
 * `maxQueued`, a task arriving when that many already wait calls `onFull` (which should throw)
 * instead of waiting: an unbounded queue lets a flood of requests delay everyone else without end.
 */
export function createLimiter(
  max: number,
  maxQueued = Number.POSITIVE_INFINITY,
  onFull: () => never = () => {
    throw new Error('limiter queue full');
  },
): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const queue: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= max && queue.length >= maxQueued) onFull();
    // A finishing task hands its slot straight to the next waiter, so `running` never exceeds max.
    if (running >= max) await new Promise<void>((resolve) => queue.push(resolve));
    else running += 1;
    try {
      return await task();
    } finally {
      const next = queue.shift();
      if (next === undefined) running -= 1;
      else next();
    }
  };
}

/** Which lane a task of a {@link createLaneLimiter} limiter runs in. */
export type Lane = 'shared' | 'reserved';

/** What a {@link createLaneLimiter} limiter is doing, for metrics. */
export interface LaneLimiterStats {
  /** Tasks holding a slot now. */
  running: number;
  /** Tasks waiting for a slot now, by lane. */
  queued: Record<Lane, number>;
  /** Tasks that got a slot since start (monotonic). */
  started: number;
  /** Total time those tasks waited for their slot, in seconds (monotonic). */
  waitSecondsTotal: number;
}

/** A lane limiter: runs `task` in `lane` when a slot is free; `stats()` reports its state. */
export interface LaneLimiter {
  <T>(task: () => Promise<T>, lane?: Lane): Promise<T>;
  stats(): LaneLimiterStats;
}

/**
 * A FIFO semaphore with slots reserved for one class of work. `shared` tasks use at most `shared`
 * slots; `reserved` tasks may use those and `reserved` more, and a freed slot goes to a waiting
 * reserved task first. Each lane has its own bounded queue (`onFull` when full), so a flood in the
 * shared lane can neither delay nor refuse reserved work: logins from trusted devices keep a hash
 * slot however many untrusted attempts arrive (OWASP device-cookie design, issue 8).
 */
export function createLaneLimiter(options: {
  shared: number;
  reserved: number;
  maxQueued: number;
  onFull: () => never;
}): LaneLimiter {
  let running = 0;
  let started = 0;
  let waitSecondsTotal = 0;
  const queues: Record<Lane, (() => void)[]> = { shared: [], reserved: [] };
  const capacity = (lane: Lane) => options.shared + (lane === 'reserved' ? options.reserved : 0);
  const pump = () => {
    for (const lane of ['reserved', 'shared'] as const) {
      while (running < capacity(lane) && queues[lane].length > 0) {
        running += 1;
        queues[lane].shift()?.();
      }
    }
  };
  const limit = async <T>(task: () => Promise<T>, lane: Lane = 'shared'): Promise<T> => {
    if (running < capacity(lane) && queues[lane].length === 0) running += 1;
    else if (queues[lane].length >= options.maxQueued) options.onFull();
    else {
      const queuedAt = performance.now();
      await new Promise<void>((resolve) => queues[lane].push(resolve));
      waitSecondsTotal += (performance.now() - queuedAt) / 1000;
    }
    started += 1;
    try {
      return await task();
    } finally {
      running -= 1;
      pump();
    }
  };
  return Object.assign(limit, {
    stats: (): LaneLimiterStats => ({
      running,
      queued: { shared: queues.shared.length, reserved: queues.reserved.length },
      started,
      waitSecondsTotal,
    }),
  });
}
