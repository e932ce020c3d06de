import type { CoreWarn } from '../events/redis-connections.js';
import type { Scheduler } from '../lib/scheduler.js';
import { createSourceTally, type SourceTally } from '../lib/source-tally.js';
import { withTimeout } from '../lib/with-timeout.js';
import type { MailKind, MailKinds, MailTemplates } from './mail-templates.js';
import { isPermanentRejection, type MailMessage, type MailTransport } from './mail-transport.js';

/**
 * `text` with every mail address replaced by `<address>`: a relay's reply repeats the recipient
 * ("550 5.1.1 <alice@example.com>: Recipient address rejected"), and warnings name the kind and
 * the error, never whom a message was for (red-team 2026-12k P3).
 */
export function withoutAddresses(text: string): string {
  return text.replace(/<[^<>\s]*@[^<>\s]*>|[^\s<>"'(),;:]+@[^\s<>"'(),;:]+/g, '<address>');
}

/** Delays before the 2nd, 3rd, … attempt: 5 attempts over about 5 minutes, then the message is dropped. */
export const MAIL_RETRY_DELAYS_MS = [2_000, 15_000, 60_000, 240_000] as const;

/**
 * Longest a shutdown waits for queued mail to go out ({@link Mailer.drain}), and never longer than
 * `SHUTDOWN_GRACE_PERIOD`: `gatehouse serve` exits by force 5 s after the grace period, and closing
 * the rest of the core needs part of those.
 */
export const MAIL_DRAIN_MAX_MS = 3_000;

/**
 * Messages to one address waiting or retrying at once. The per-address hourly cap
 * (`ACCOUNT_MAILS_PER_HOUR`) already limits what requests can ask for; this bound keeps any one
 * address from holding a large part of the queue whatever asks. At the bound a newcomer takes the
 * place of a waiting message a stranger caused ({@link SendOptions.fromStranger}) when it is the
 * owner's, or when another stranger's source holds at least two more of them than its own;
 * otherwise the newcomer is dropped.
 */
export const MAIL_MAX_QUEUED_PER_ADDRESS = 5;

/** Options of {@link Mailer.send}. */
export interface SendOptions {
  /**
   * Who caused the message, for fairness: a full queue drops the oldest waiting message of the
   * source holding the most, not the newcomer's. Requests pass their client's address bucket
   * (`ip:…`); the default is the recipient, so notices are fair per address.
   */
  source?: string;
  /**
   * Called once the message leaves the queue of a `send` that returned true: `delivered` (the
   * relay accepted it), `rejected` (the relay refused its recipient for good, see
   * {@link isPermanentRejection}), `dropped` (every attempt failed, or the mailer closed), or
   * `evicted` (a full queue made room for another source's message before it was sent). The
   * security notices keep their stored row by it (`security-notices.ts`).
   */
  onSettled?: (outcome: MailOutcome) => void;
  /** Whose message it is, for {@link Mailer.withdraw}: any object its sender keeps. */
  owner?: object;
  /**
   * Whether anyone who knows the address could have caused the message (an anonymous
   * forgot-password, a sign-up or an email change naming a taken address), rather than the
   * address's owner, an administrator or the account's own activity. At either bound
   * ({@link MAIL_MAX_QUEUED_PER_ADDRESS}, `MAIL_QUEUE_MAX`) such a message never pushes out one that
   * is not, and at the address's bound one that is not pushes out the oldest such: with a slow or
   * failing relay, strangers' queued mail must not crowd out the owner's reset (red-team 2026-12t,
   * noticed). @default false
   */
  fromStranger?: boolean;
}

/** How a queued message left the queue (see {@link SendOptions.onSettled}). */
export type MailOutcome = 'delivered' | 'rejected' | 'dropped' | 'evicted';

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
   * Queues a message; false when it is dropped, with a warning: when {@link MAIL_MAX_QUEUED_PER_ADDRESS}
   * messages to `to` already wait, or when the queue is full (`MAIL_QUEUE_MAX`) and the sender's
   * source already holds as many messages as any other (otherwise the oldest waiting message of
   * the source holding the most is dropped to make room: a flood cannot crowd out a victim's
   * reset mail). At either bound a message a stranger could cause ({@link SendOptions.fromStranger})
   * only ever displaces another such message. Links in `values` must come from {@link Mailer.link}.
   */
  send<K extends MailKind>(kind: K, to: string, values: MailKinds[K], options?: SendOptions): boolean;
  /**
   * An absolute link to a web UI page carrying `token`, built from `PUBLIC_URL` only. The token
   * goes in the fragment (`/#/reset-password?token=…`): browsers never send a fragment to a server,
   * so it stays out of access logs, proxies and `Referer` headers.
   */
  link(page: 'verify-email' | 'reset-password' | 'confirm-email' | 'forgot-password', token?: string): string;
  /** The transport's own check ({@link MailTransport.check}): could mail be delivered now? */
  checkTransport(): Promise<void>;
  /** Messages waiting or in flight. */
  pending(): number;
  /** Resolves when nothing is waiting or in flight (tests; graceful shutdown). */
  idle(): Promise<void>;
  /**
   * Sends what is queued before a shutdown: messages waiting for a retry get one last attempt now
   * (a failure drops them rather than scheduling another), and the promise resolves once nothing
   * is queued or after `timeoutMs` of real time, whichever is first, with how many messages are
   * still queued ({@link close} drops them). New messages are still accepted meanwhile.
   */
  drain(timeoutMs: number): Promise<number>;
  /**
   * Takes back the queued messages sent with `owner` ({@link SendOptions.owner}), waiting or ready,
   * each settled `dropped`; the one in flight, if it is one of them, goes on. Returns how many. For
   * the security notices' close: what they give back to the database for another instance to
   * send must not be sent from this queue as well.
   */
  withdraw(owner: object): number;
  /**
   * Stops retries and closes the transport; queued messages are dropped, with one warning naming
   * how many and of which kinds.
   */
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
  source: string;
  recipient: string;
  onSettled: ((outcome: MailOutcome) => void) | undefined;
  owner: object | undefined;
  fromStranger: boolean;
}

/** A job waiting for its retry time, with the timer that will make it ready. */
interface Waiting {
  job: Job;
  cancel(): void;
}

/** Creates the {@link Mailer}: one delivery at a time, in order, retries scheduled on `scheduler`. */
export function createMailer(options: MailerOptions): Mailer {
  const { transport, templates, scheduler, warn } = options;
  const delays = options.retryDelaysMs ?? MAIL_RETRY_DELAYS_MS;
  const ready: Job[] = [];
  /** Jobs waiting for their retry time: counted against the bound too. */
  const waiting = new Set<Waiting>();
  /**
   * Droppable messages (ready or waiting to retry) per source: what a full queue may drop. The one
   * in flight is not counted, or a source whose only message is being sent could be named the
   * heaviest and a newcomer refused while other sources' messages wait (a flood from many
   * addresses, one message each). Bounded by the queue.
   */
  const bySource = createSourceTally();
  /** Queued messages (ready, waiting, in flight) per recipient, for the per-address cap. */
  const byRecipient = createSourceTally();
  let running = false;
  /** The message being handed to the transport, while `running`. */
  let current: Job | undefined;
  let closed = false;
  /** Set by `drain`: a failed attempt is the last one (no retry is scheduled). */
  let draining = false;
  let idleWaiters: (() => void)[] = [];

  const count = () => ready.length + waiting.size + (running ? 1 : 0);
  const idle = (): Promise<void> => {
    if (count() === 0) return Promise.resolve();
    return new Promise((resolve) => idleWaiters.push(resolve));
  };
  const settle = () => {
    if (count() > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  };

  /** Tells the sender how its message left the queue; a callback that throws is its bug, reported. */
  const notify = (job: Job, outcome: MailOutcome) => {
    try {
      job.onSettled?.(outcome);
    } catch (error) {
      warn('a mail settlement callback threw', {
        kind: job.kind,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  };

  const forget = (job: Job, outcome: MailOutcome) => {
    bySource.remove(job.source);
    byRecipient.remove(job.recipient);
    notify(job, outcome);
  };

  /**
   * Drops the oldest ready (else retrying) message `which` picks, with warning `why.ready` or
   * `why.retrying`; false when there is none (the one in flight is never dropped).
   */
  const evictFirst = (which: (job: Job) => boolean, why: { ready: string; retrying: string }): boolean => {
    const index = ready.findIndex(which);
    const evicted = index === -1 ? undefined : ready.splice(index, 1)[0];
    if (evicted !== undefined) {
      forget(evicted, 'evicted');
      warn(why.ready, { kind: evicted.kind });
      return true;
    }
    for (const entry of waiting) {
      if (!which(entry.job)) continue;
      entry.cancel();
      waiting.delete(entry);
      forget(entry.job, 'evicted');
      warn(why.retrying, { kind: entry.job.kind });
      return true;
    }
    return false;
  };

  /**
   * Drops the oldest droppable message of `source`, to admit another source's into a full queue;
   * for a newcomer a stranger could cause, only one of that source's such messages (a review: at
   * `MAIL_QUEUE_MAX` a stranger's message from a fresh network pushed out the owner's reset).
   */
  const evictOldest = (source: string, fromStranger: boolean): boolean =>
    evictFirst((job) => job.source === source && (job.fromStranger || !fromStranger), {
      ready: 'mail queue full; the oldest message of the source holding the most dropped',
      retrying: 'mail queue full; a retrying message of the source holding the most dropped',
    });

  /** The droppable messages `which` picks (ready or retrying), per source: O(queue), when full only. */
  const tallyOf = (which: (job: Job) => boolean): SourceTally => {
    const held = createSourceTally();
    for (const job of ready) if (which(job)) held.add(job.source);
    for (const { job } of waiting) if (which(job)) held.add(job.source);
    return held;
  };

  /**
   * Makes room at {@link MAIL_MAX_QUEUED_PER_ADDRESS} for a message to `recipient` from `source`:
   * drops a waiting message to it that a stranger caused, the oldest of them for an owner's
   * newcomer, the oldest of the source holding the most of them for a stranger's newcomer when
   * that source holds at least two more than the newcomer's own. The margin matters: the owner on
   * a new device asks for a reset in the strangers' lane (nothing tells it from a stranger's), and
   * with a margin of one any later message from a fresh network pushed out that one queued reset
   * (a review's finding); now only a source that asked more than once gives way. Scans the queue
   * only when an address is full.
   */
  const makeRoomAtAddress = (recipient: string, source: string, fromStranger: boolean): boolean => {
    const strangers = (job: Job) => job.recipient === recipient && job.fromStranger;
    const why = {
      ready: "mail queue holds enough for this address; a stranger's message to it dropped",
      retrying: "mail queue holds enough for this address; a stranger's retrying message to it dropped",
    };
    if (!fromStranger) return evictFirst(strangers, why);
    const held = tallyOf(strangers);
    const heaviest = held.evictionCandidate(source, 2);
    if (heaviest === undefined) return false;
    return evictFirst((job) => strangers(job) && job.source === heaviest, why);
  };

  const pump = async () => {
    if (running || closed) return;
    running = true;
    try {
      for (let job = ready.shift(); job !== undefined && !closed; job = ready.shift()) {
        bySource.remove(job.source);
        let delivered = false;
        current = job;
        try {
          await transport.send(job.message);
          delivered = true;
        } catch (error) {
          const reason = withoutAddresses(error instanceof Error ? error.message : String(error));
          // Failed while the mailer closed: no retry will run.
          if (closed) {
            byRecipient.remove(job.recipient);
            notify(job, 'dropped');
            continue;
          }
          // A recipient the relay refused for good (550 no such user) is refused on every retry:
          // retrying only costs the relay's reputation (and a warning each time).
          if (isPermanentRejection(error)) {
            byRecipient.remove(job.recipient);
            warn('mail refused by the relay for its recipient; dropped', { kind: job.kind, error: reason });
            notify(job, 'rejected');
            continue;
          }
          // Failed while the mailer drains for a shutdown: that was its last attempt.
          const delay = draining ? undefined : delays[job.attempt];
          if (delay === undefined) {
            byRecipient.remove(job.recipient);
            warn(
              draining
                ? 'mail not delivered before shutdown; dropped'
                : 'mail not delivered after every retry; dropped',
              {
                kind: job.kind,
                attempts: job.attempt + 1,
                error: reason,
              },
            );
            notify(job, 'dropped');
            continue;
          }
          warn('mail delivery failed; retrying', { kind: job.kind, attempt: job.attempt + 1, error: reason });
          const retry = { ...job, attempt: job.attempt + 1 };
          bySource.add(retry.source);
          const timer = scheduler.setTimeout(() => {
            waiting.delete(entry);
            if (closed) return;
            ready.push(retry);
            void pump();
          }, delay);
          const entry: Waiting = { job: retry, cancel: () => timer.cancel() };
          waiting.add(entry);
        }
        if (delivered) {
          byRecipient.remove(job.recipient);
          // Outside the attempt's try: a callback that throws is not a failed delivery (retried).
          notify(job, 'delivered');
        }
      }
    } finally {
      running = false;
      current = undefined;
      settle();
    }
  };

  return {
    transport: transport.kind,
    checkTransport: () => transport.check(),
    send(kind, to, values, sendOptions) {
      if (closed) {
        // Background work that outlived the shutdown's drain bound (a forgot-password look-up
        // still running) lands here: said, like the queue's drop at close (reviewer's R5).
        warn('mail dropped at shutdown', { messages: 1, kinds: [kind] });
        return false;
      }
      const recipient = `to:${to.toLowerCase()}`;
      const source = sendOptions?.source ?? recipient;
      const fromStranger = sendOptions?.fromStranger ?? false;
      if (
        byRecipient.count(recipient) >= MAIL_MAX_QUEUED_PER_ADDRESS &&
        !makeRoomAtAddress(recipient, source, fromStranger)
      ) {
        warn('mail queue holds enough for this address; message dropped', { kind });
        return false;
      }
      if (count() >= options.maxQueued) {
        // A stranger's newcomer weighs the sources by their strangers' messages only: it may push
        // out only such a message (see evictOldest).
        const tally = fromStranger ? tallyOf((job) => job.fromStranger) : bySource;
        const heaviest = tally.evictionCandidate(source);
        if (heaviest === undefined || !evictOldest(heaviest, fromStranger)) {
          warn('mail queue full (MAIL_QUEUE_MAX); message dropped', { kind });
          return false;
        }
      }
      bySource.add(source);
      byRecipient.add(recipient);
      ready.push({
        kind,
        message: templates.render(kind, to, values),
        attempt: 0,
        source,
        recipient,
        onSettled: sendOptions?.onSettled,
        owner: sendOptions?.owner,
        fromStranger,
      });
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
    idle,
    async drain(timeoutMs) {
      if (closed) return count();
      draining = true;
      for (const entry of waiting) {
        entry.cancel();
        ready.push(entry.job);
      }
      waiting.clear();
      void pump();
      // Real time (withTimeout), not the scheduler's: a test clock must not hold up a shutdown.
      await withTimeout(idle(), timeoutMs, undefined);
      return count();
    },
    withdraw(owner) {
      const taken: Job[] = [];
      const kept: Job[] = [];
      for (const job of ready) (job.owner === owner ? taken : kept).push(job);
      ready.splice(0, ready.length, ...kept);
      for (const entry of waiting) {
        if (entry.job.owner !== owner) continue;
        entry.cancel();
        waiting.delete(entry);
        taken.push(entry.job);
      }
      for (const job of taken) forget(job, 'dropped');
      settle();
      return taken.length;
    },
    close() {
      if (!closed && count() > 0) {
        const jobs = [
          ...ready,
          ...[...waiting].map((entry) => entry.job),
          ...(current === undefined ? [] : [current]),
        ];
        warn('mail dropped at shutdown', {
          messages: count(),
          kinds: [...new Set(jobs.map((job) => job.kind))].sort(),
        });
      }
      closed = true;
      for (const job of ready) forget(job, 'dropped');
      ready.length = 0;
      for (const entry of waiting) {
        entry.cancel();
        forget(entry.job, 'dropped');
      }
      waiting.clear();
      transport.close();
      settle();
    },
  };
}
