/**
 * Thrown for a PostgreSQL call refused at once because the server stopped answering moments ago
 * (see {@link createConnectionBreaker}). `cause` is the failure that showed it; `isDatabaseUnavailable`
 * recognizes it, so a request gets the usual 503 `DATABASE_UNAVAILABLE`.
 */
export class DatabaseUnreachableError extends Error {
  override readonly name = 'DatabaseUnreachableError';

  constructor(cause: Error) {
    super('the database did not answer recently; not waiting for it again until a probe reaches it', {
      cause,
    });
  }
}

/** Options of {@link createConnectionBreaker}. */
export interface ConnectionBreakerOptions {
  /** Milliseconds between the failure and the first probe, and between two failed probes. */
  retryMs: number;
  /**
   * Asks the server one question on a connection of its own; resolves true when the server
   * answered (even with an error), false when it did not. Bounded by the pool's own timeouts.
   */
  probe: () => Promise<boolean>;
  /** Told when calls start failing fast (`error`: what showed it) and when they stop. */
  onChange?: (reachable: boolean, error?: Error) => void;
}

/** The state behind {@link createConnectionBreaker}. */
export interface ConnectionBreaker {
  /** Throws {@link DatabaseUnreachableError} while the server is known not to answer. */
  check(): void;
  /**
   * Reports a call the server did not answer at all (a refused or timed-out connect, a query past
   * the client-side timeout): later calls fail fast until a probe gets an answer.
   */
  noAnswer(error: Error): void;
  /** Reports an answer from the server (a result, or an error it sent): calls go through again. */
  answered(): void;
  /** True while calls fail fast. */
  readonly unreachable: boolean;
  /** Stops probing for good (the pool is closing); later reports are ignored. */
  dispose(): void;
}

/**
 * A circuit breaker for the PostgreSQL pool (operator red-team 2026-12h F4). Without it, every
 * request during an outage waited its own connect timeout or client-side query timeout (5–6 s by
 * default) before its 503, and held a pool slot and a socket meanwhile: a frozen or unreachable
 * server turned each request into seconds of waiting, and a route that reads twice waited twice.
 *
 * Only failures where the server gave no answer open it: an error the server sent (a SQLSTATE,
 * even "too many clients" or "starting up") proves it reachable and comes back fast by itself, and a
 * connection that dies mid-query (`pg_terminate_backend`, a restart) says nothing about the next
 * connect. While open, a probe of its own (never a user's request) asks the server every
 * `retryMs`; the first answer, the probe's or a call that was already in flight, closes it.
 */
export function createConnectionBreaker(options: ConnectionBreakerOptions): ConnectionBreaker {
  let failure: Error | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let disposed = false;

  const tell = (reachable: boolean, error?: Error) => {
    try {
      options.onChange?.(reachable, error);
    } catch {
      // A logging listener's failure is not the database's.
    }
  };

  const close = () => {
    if (failure === undefined) return;
    failure = undefined;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    tell(true);
  };

  const scheduleProbe = () => {
    // unref: a probe loop must not keep a process (a CLI command, a test) alive by itself.
    timer = setTimeout(() => {
      timer = undefined;
      void options.probe().then(
        (reached) => settle(reached),
        () => settle(false),
      );
    }, options.retryMs);
    timer.unref?.();
  };

  const settle = (reached: boolean) => {
    if (disposed || failure === undefined) return;
    if (reached) close();
    else if (timer === undefined) scheduleProbe();
  };

  return {
    check() {
      if (failure !== undefined) throw new DatabaseUnreachableError(failure);
    },
    noAnswer(error) {
      if (disposed) return;
      const opening = failure === undefined;
      failure = error;
      if (!opening) return;
      // The probe first: a listener that throws must neither leave the breaker open for good nor
      // replace the caller's error.
      scheduleProbe();
      tell(false, error);
    },
    answered: close,
    get unreachable() {
      return failure !== undefined;
    },
    dispose() {
      disposed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      failure = undefined;
    },
  };
}

/** Where {@link reachabilityLog} writes: the core's warning function. */
export type ReachabilityWarn = (message: string, detail?: Record<string, unknown>) => void;

/**
 * A listener for the breaker's changes that logs them through `warn`, one "not answering" line
 * and one "answering again" line per `everyMs` at most. In a partial outage (new connections
 * refused while pooled ones still answer) the breaker opens on a failed connect and closes on the
 * next answer, request after request; each change logged would flood the log. An "answering
 * again" that falls within `everyMs` of the last "not answering" line is held until then, and
 * written only if the database still answers; it says how many times the breaker opened
 * meanwhile and since when calls have gone through.
 */
export function reachabilityLog(
  warn: ReachabilityWarn,
  options: { everyMs?: number; clock?: () => number } = {},
): (reachable: boolean, error?: Error) => void {
  const everyMs = options.everyMs ?? 10_000;
  const clock = options.clock ?? Date.now;
  let reachable = true;
  let loggedDown = false;
  let downLoggedAt = Number.NEGATIVE_INFINITY;
  let openings = 0;
  let reachableSince = 0;
  let held: ReturnType<typeof setTimeout> | undefined;

  const logUp = () => {
    loggedDown = false;
    warn('database answering again; calls go through', {
      since: new Date(reachableSince).toISOString(),
      ...(openings > 1 ? { timesNotAnswering: openings } : {}),
    });
    openings = 0;
  };

  return (nowReachable, error) => {
    reachable = nowReachable;
    const now = clock();
    if (!nowReachable) {
      openings += 1;
      if (loggedDown) return;
      loggedDown = true;
      downLoggedAt = now;
      openings = 1;
      warn('database not answering; calls fail at once (503) until a probe reaches it', {
        error: error?.message,
      });
      return;
    }
    reachableSince = now;
    if (!loggedDown) return;
    if (now - downLoggedAt >= everyMs) {
      logUp();
      return;
    }
    if (held !== undefined) return;
    held = setTimeout(
      () => {
        held = undefined;
        if (reachable && loggedDown) logUp();
      },
      downLoggedAt + everyMs - now,
    );
    held.unref?.();
  };
}
