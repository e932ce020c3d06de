import { ConfigError, GatehouseError } from '../errors.js';
import type { ScheduledTimer, Scheduler } from '../lib/scheduler.js';

/** How long after a check that could not read the database (down, frozen) it runs again. */
export const SECRET_RECHECK_RETRY_MS = 5_000;

/**
 * The refusal of anything that would sign a token on an instance whose `SECRET_KEY` was
 * superseded: every token it signed would be refused (by itself, through its infinite cut-off; by
 * the others, by its key), so a client would only loop (refresh, 401, refresh). 503 with
 * `Retry-After`: another, ready instance answers the retry.
 */
export function secretSupersededError(): GatehouseError {
  return new GatehouseError(
    'SERVICE_UNAVAILABLE',
    'This instance was left on a SECRET_KEY that gatehouse revoke-all replaced; try again.',
    { retryAfterSeconds: 5 },
  );
}

/**
 * Whether `gatehouse revoke-all` replaced this instance's `SECRET_KEY` while it ran (see
 * {@link createSecretSupersededCheck}).
 */
export interface SecretSupersededCheck {
  /** True once a check found the secret replaced; never false again in this process. */
  readonly superseded: boolean;
  /** Checks now; a call while one runs makes one more run after it. */
  run(): void;
  /** Stops the retries; a check still running is ignored when it ends. */
  close(): void;
}

/**
 * Runs `check` (which throws a `ConfigError` when the database's secret fingerprint is neither
 * this instance's `SECRET_KEY`'s nor `SECRET_KEY_PREVIOUS`'s) when asked, that is when the
 * revocation cut-off rises; calls `onSuperseded` once when it throws so. A check that fails
 * otherwise (the database did not answer) is retried after {@link SECRET_RECHECK_RETRY_MS}, since
 * the cut-off that asked for it will not rise again. Its state is three flags and one timer.
 */
export function createSecretSupersededCheck(options: {
  check: () => Promise<void>;
  onSuperseded: () => void;
  onError: (error: unknown) => void;
  scheduler: Scheduler;
}): SecretSupersededCheck {
  let superseded = false;
  let running = false;
  let again = false;
  let closed = false;
  let retry: ScheduledTimer | undefined;
  const run = (): void => {
    if (superseded || closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    retry?.cancel();
    retry = undefined;
    options
      .check()
      .then(undefined, (error: unknown) => {
        if (closed) return;
        if (error instanceof ConfigError) {
          superseded = true;
          options.onSuperseded();
          return;
        }
        options.onError(error);
        retry ??= options.scheduler.setTimeout(() => {
          retry = undefined;
          run();
        }, SECRET_RECHECK_RETRY_MS);
      })
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          run();
        }
      });
  };
  return {
    get superseded() {
      return superseded;
    },
    run,
    close() {
      closed = true;
      retry?.cancel();
    },
  };
}
