import type { CoreWarn } from '../events/redis-connections.js';
import type { Scheduler } from '../lib/scheduler.js';
import type { MailKind, MailKinds, MailTemplates } from './mail-templates.js';
import type { MailMessage, MailTransport } from './mail-transport.js';

/** Delays before the 2nd, 3rd, … attempt: 5 attempts over about 5 minutes, then the message is dropped. */
export const MAIL_RETRY_DELAYS_MS = [2_000, 15_000, 60_000, 240_000] as const;

/**
 * Sends mail in the background. `send` only queues and returns at once, so no request ever waits
 * for (or fails with) an SMTP server; callers queue mail after their transaction committed, so a
 * rolled-back change never mails. Failed attempts are retried with backoff
 * ({@link MAIL_RETRY_DELAYS_MS}). Warnings name the kind and the error, never the recipient's link
 * or the message body (they hold tokens).
 */
export interface Mailer {
  /** `smtp` or `outbox`. */
  readonly transport: MailTransport['kind'];
  /**
   * Queues a message; false when the queue is full (`MAIL_QUEUE_MAX`), in which case it is dropped
   * with a warning. Links in `values` must come from {@link Mailer.link}.
   */
  send<K extends MailKind>(kind: K, to: string, values: MailKinds[K]): boolean;
  /**
   * An absolute link to a web UI page carrying `token`, built from `PUBLIC_URL` only. The token
   * goes in the fragment (`/#/reset-password?token=…`): browsers never send a fragment to a server,
   * so it stays out of access logs, proxies and `Referer` headers.
   */
  link(page: 'verify-email' | 'reset-password' | 'confirm-email' | 'forgot-password', token?: string): string;
  /** Messages waiting or in flight. */
  pending(): number;
  /** Resolves when nothing is waiting or in flight (tests; graceful shutdown). */
  idle(): Promise<void>;
  /** Stops retries and closes the transport; queued messages are dropped. */
  close(): void;
}

/** Options of {@link createMailer}. */
export interface MailerOptions {
  transport: MailTransport;
  templates: MailTemplates;
  /** `PUBLIC_URL`: read from the configuration, never from a request. */
  publicUrl: string;
  /** `MAIL_QUEUE_MAX`. */
  maxQueued: number;
  scheduler: Scheduler;
  warn: CoreWarn;
  /** @default MAIL_RETRY_DELAYS_MS */
  retryDelaysMs?: readonly number[];
}

interface Job {
  kind: MailKind;
  message: MailMessage;
  attempt: number;
}

/** Creates the {@link Mailer}: one delivery at a time, in order, retries scheduled on `scheduler`. */
export function createMailer(options: MailerOptions): Mailer {
  const { transport, templates, scheduler, warn } = options;
  const delays = options.retryDelaysMs ?? MAIL_RETRY_DELAYS_MS;
  const ready: Job[] = [];
  /** Jobs waiting for their retry time: counted against the bound too. */
  const waiting = new Set<{ cancel(): void }>();
  let running = false;
  let closed = false;
  let idleWaiters: (() => void)[] = [];

  const count = () => ready.length + waiting.size + (running ? 1 : 0);
  const settle = () => {
    if (count() > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  };

  const pump = async () => {
    if (running || closed) return;
    running = true;
    try {
      for (let job = ready.shift(); job !== undefined && !closed; job = ready.shift()) {
        try {
          await transport.send(job.message);
        } catch (error) {
          const delay = delays[job.attempt];
          const reason = error instanceof Error ? error.message : String(error);
          if (delay === undefined) {
            warn('mail not delivered after every retry; dropped', {
              kind: job.kind,
              attempts: job.attempt + 1,
              error: reason,
            });
            continue;
          }
          warn('mail delivery failed; retrying', { kind: job.kind, attempt: job.attempt + 1, error: reason });
          const retry = { ...job, attempt: job.attempt + 1 };
          const timer = scheduler.setTimeout(() => {
            waiting.delete(timer);
            if (closed) return;
            ready.push(retry);
            void pump();
          }, delay);
          waiting.add(timer);
        }
      }
    } finally {
      running = false;
      settle();
    }
  };

  return {
    transport: transport.kind,
    send(kind, to, values) {
      if (closed) return false;
      if (count() >= options.maxQueued) {
        warn('mail queue full (MAIL_QUEUE_MAX); message dropped', { kind });
        return false;
      }
      ready.push({ kind, message: templates.render(kind, to, values), attempt: 0 });
      // Started on the next turn: the caller's response goes out first.
      setImmediate(() => void pump());
      return true;
    },
    link(page, token) {
      const url = new URL('/', options.publicUrl);
      url.hash = token === undefined ? `/${page}` : `/${page}?token=${encodeURIComponent(token)}`;
      return url.href;
    },
    pending: count,
    idle() {
      if (count() === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    close() {
      closed = true;
      ready.length = 0;
      for (const timer of waiting) timer.cancel();
      waiting.clear();
      transport.close();
      settle();
    },
  };
}
