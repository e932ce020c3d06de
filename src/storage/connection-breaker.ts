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

  const close = () => {
    if (failure === undefined) return;
    failure = undefined;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    options.onChange?.(true);
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
      options.onChange?.(false, error);
      scheduleProbe();
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
