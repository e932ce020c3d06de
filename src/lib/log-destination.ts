import { write, writeSync } from 'node:fs';
import type { Scheduler } from './scheduler.js';

/** Bytes of log lines held while the destination does not take them; lines past it are dropped. */
export const LOG_BUFFER_MAX_BYTES = 4 * 1024 * 1024;

/** How long after a refused write the held lines are offered again, when nothing new is logged. */
export const LOG_RETRY_MS = 1_000;

/** Where the server's log lines go: see {@link createLogDestination}. */
export interface LogDestination {
  /** Queues `line`; never throws, never blocks. Answers true (pino's stream contract). */
  write(line: string): boolean;
  /**
   * Writes what is held, synchronously: at exit, so the last lines ("stopped", a fatal error) are
   * not lost. Gives up (the lines are dropped) at the first refusal, or when a write is still in
   * flight (writing after it would tear its lines).
   */
  flushSync(): void;
  /**
   * Resolves once every line so far is written (none held, none in flight), or after `timeoutMs`
   * (never rejects): what a graceful shutdown awaits before `process.exit`, which does not wait
   * for writes still in the thread pool.
   */
  drain(timeoutMs: number): Promise<void>;
  /** Lines dropped because the buffer was full, plus one for each exit flush that could not write. */
  readonly dropped: number;
  /** Whether the last write the destination answered was refused. */
  readonly failing: boolean;
}

/**
 * The server's log destination on file descriptor `fd` (stdout): pino's default (SonicBoom) with
 * the two ways a refused write took the whole process down removed (ops review 2026-12s O1, a
 * full disk under `StandardOutput=append:`, or stdout on /dev/full). Pino's stream had no error
 * listener, so the first ENOSPC was an uncaught exception; and its exit handler then called
 * SonicBoom's `flushSync`, which retries every error but EAGAIN every 100 ms for ever (only EAGAIN
 * and EBUSY may be retried, and the check is the wrong way round): the process neither served nor
 * exited, and a supervisor that restarts on exit never acted.
 *
 * Here a refused write keeps its lines (at most {@link LOG_BUFFER_MAX_BYTES}; lines past that are
 * dropped and counted) and offers them again with the next line, or after {@link LOG_RETRY_MS}.
 * Requests never wait for the log. Written here rather than configured: SonicBoom's exit flush is
 * the part that hangs, and it cannot be bounded from outside.
 */
export function createLogDestination(
  fd: number,
  /** Unref'd timers (`systemScheduler`): a retry must not keep the process alive. */
  scheduler: Pick<Scheduler, 'setTimeout'>,
  maxBytes: number = LOG_BUFFER_MAX_BYTES,
): LogDestination {
  let held: Buffer[] = [];
  let heldBytes = 0;
  let writing = false;
  let failing = false;
  let dropped = 0;
  let retryPending = false;

  const retryLater = (): void => {
    if (retryPending) return;
    retryPending = true;
    scheduler.setTimeout(() => {
      retryPending = false;
      pump();
    }, LOG_RETRY_MS);
  };

  const send = (chunk: Buffer): void => {
    write(fd, chunk, 0, chunk.length, null, (error, written) => {
      if (error !== null) {
        failing = true;
        writing = false;
        held.unshift(chunk);
        retryLater();
        return;
      }
      failing = false;
      heldBytes -= written;
      if (written < chunk.length) {
        send(chunk.subarray(written));
        return;
      }
      writing = false;
      pump();
    });
  };

  function pump(): void {
    if (writing || held.length === 0) return;
    writing = true;
    const chunk = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held);
    held = [];
    send(chunk);
  }

  return {
    write(line) {
      const bytes = Buffer.from(line);
      if (heldBytes + bytes.length > maxBytes) {
        dropped += 1;
        return true;
      }
      held.push(bytes);
      heldBytes += bytes.length;
      // While the destination refuses, the next try is the timer's: a line per request must not
      // become a failing write per request.
      if (!failing) pump();
      return true;
    },
    flushSync() {
      if (held.length === 0) return;
      // A chunk still being written by the thread pool would be torn by a write after it (the
      // review of 719acbb: a line landed inside a 512 KiB one): what is held then is dropped.
      if (writing) {
        held = [];
        heldBytes = 0;
        dropped += 1;
        return;
      }
      const chunk = Buffer.concat(held);
      held = [];
      heldBytes = 0;
      let offset = 0;
      try {
        while (offset < chunk.length) {
          const written = writeSync(fd, chunk, offset);
          if (written <= 0) break;
          offset += written;
        }
      } catch {
        // Refused at exit: nothing can be done with the lines but count them.
      }
      if (offset < chunk.length) dropped += 1;
    },
    async drain(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while ((writing || held.length > 0) && Date.now() < deadline) {
        pump(); // a refused destination is tried again now, not at its retry timer
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    get dropped() {
      return dropped;
    },
    get failing() {
      return failing;
    },
  };
}
