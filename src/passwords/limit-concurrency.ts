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
