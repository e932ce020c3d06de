/** Bounds of a {@link KeyedGate}. */
export interface KeyedGateLimits {
  /** Tasks that may wait per key behind the running one; more are refused. */
  maxWaitingPerKey: number;
  /** Keys with a task running or waiting; more are refused. */
  maxKeys: number;
}

/** Outcome of {@link KeyedGate.run}: the task's value, or `busy` when a bound was hit. */
export type GateResult<T> = { ok: true; value: T } | { ok: false; reason: 'busy' };

/**
 * Runs at most one task per key at a time, the others for that key in arrival order.
 *
 * Login throttling uses it per account (and per trusted device): with one password check per
 * account in flight, "check the counter, verify, count the failure" is exact without counting an
 * attempt before it is checked, so a burst of parallel guesses cannot slip past the limit and a
 * burst of correct logins is never taken for failures (issue 8).
 *
 * Bounded: an entry exists only while a task for its key runs or waits, at most `maxKeys` entries
 * with at most `maxWaitingPerKey` waiters each; past either bound `run` answers `busy` at once.
 * In memory and per instance: across instances the counters (in Redis) still bound guesses, with
 * a slack of one check per instance.
 */
export interface KeyedGate {
  /** Runs `task` once no other task for `key` is running. */
  run<T>(key: string, task: () => Promise<T>): Promise<GateResult<T>>;
  /** Keys currently held (for tests and metrics). */
  readonly size: number;
}

/** Creates a {@link KeyedGate}. */
export function createKeyedGate(limits: KeyedGateLimits): KeyedGate {
  // key → waiters behind the running task; presence of the key means a task is running.
  const lanes = new Map<string, (() => void)[]>();
  return {
    get size() {
      return lanes.size;
    },
    async run(key, task) {
      const lane = lanes.get(key);
      if (lane === undefined) {
        if (lanes.size >= limits.maxKeys) return { ok: false, reason: 'busy' };
        lanes.set(key, []);
      } else {
        if (lane.length >= limits.maxWaitingPerKey) return { ok: false, reason: 'busy' };
        await new Promise<void>((resolve) => lane.push(resolve));
      }
      try {
        return { ok: true, value: await task() };
      } finally {
        // Hand the key straight to the next waiter, or free it.
        const next = lanes.get(key)?.shift();
        if (next === undefined) lanes.delete(key);
        else next();
      }
    },
  };
}
