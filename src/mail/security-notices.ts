import type { Kysely } from 'kysely';
import type { CoreWarn } from '../events/redis-connections.js';
import type { Scheduler } from '../lib/scheduler.js';
import { createSweepClock } from '../lib/sweep-clock.js';
import type { DialectName } from '../storage/open-database.js';
import type { Schema } from '../storage/schema.js';
import type { UserStore } from '../storage/user-store.js';
import type { MailKind, MailKinds } from './mail-templates.js';
import type { Mailer, MailOutcome } from './mailer.js';
import { createNoticeStore, type NoticeStore, type StoredNotice } from './storage/notice-store.js';

/**
 * The mails that tell an account's owner of a change to it: what someone holding a stolen password
 * or session would rather the owner never read. They are written in the change's own transaction
 * (`pending_notices`, migration `033a`) and deleted once the relay took them, so a process dying
 * between the commit and the delivery does not lose them: another instance, or this one restarted,
 * sends them when the lease of the instance that held them ends. Link mails (reset, verification,
 * email change, "you already have an account") are not among them: their tokens are stored hashed
 * only, and whoever asked can ask again.
 */
export const NOTICE_KINDS = [
  'password_changed',
  'email_change_requested',
  'email_changed',
  'second_factor_added',
  'second_factor_removed',
  'second_factor_locked',
  'recovery_codes_replaced',
  'recovery_code_used',
  'account_deleted',
] as const satisfies readonly MailKind[];

/** A kind of security notice (see {@link NOTICE_KINDS}). */
export type NoticeKind = (typeof NOTICE_KINDS)[number];

/**
 * How long an instance holds a notice it took before another may send it. Each sweep renews the
 * leases of the notices still in this instance's mail queue (however long its queue or its relay
 * takes), so a notice is sent twice only when its sender stopped, or the database did not take a
 * renewal in time. It is also how long a notice a dead instance held waits.
 */
export const NOTICE_LEASE_MS = 10 * 60_000;

/**
 * The most a notice waits between two takes after failed deliveries (each take is the mailer's
 * five attempts): 10, 20, 40 … minutes, then this. About 80 attempts over {@link NOTICE_MAX_AGE_MS}.
 */
export const NOTICE_MAX_BACKOFF_MS = 6 * 60 * 60_000;

/** How often each instance looks for notices that are due (its own retries and other instances' leftovers). */
export const NOTICE_SWEEP_INTERVAL_MS = 60_000;

/**
 * Notices not delivered within this time are deleted with a warning: a relay down for three days is
 * an outage the operator has heard of, and the stored addresses should not outlive it.
 */
export const NOTICE_MAX_AGE_MS = 3 * 24 * 60 * 60_000;

/**
 * Notices of one kind pending to one address at most; a change beyond it writes none (with a
 * warning). The pending ones already tell the owner the same thing, and an account changing itself
 * over and over while the relay is down cannot grow the table without bound: with the three-day
 * age, the table holds at most this many rows per kind and address any change mails. Per kind, so
 * a burst of one (email change requests) cannot keep another (the change itself) from the owner.
 */
export const NOTICE_MAX_PENDING_PER_KIND = 3;

/** Notices taken per claim. */
const CLAIM_BATCH = 20;

/** Writes security notices in a change's transaction (see {@link SecurityNotices.writer}). */
export interface NoticeWriter {
  /**
   * Records `kind` to `to`; it is mailed once the transaction commits and `flush` is called. Writes
   * nothing (with a warning) when {@link NOTICE_MAX_PENDING_PER_KIND} of that kind to that address
   * are pending already.
   */
  add<K extends NoticeKind>(kind: K, to: string, values: MailKinds[K]): Promise<void>;
}

/**
 * Writes `kind` to the account's address as it stands in the change's transaction (`users` and
 * `notices` over that transaction); nothing when the account is gone.
 */
export async function addAccountNotice<K extends NoticeKind>(
  stores: { users: Pick<UserStore, 'findUserById'>; notices: NoticeWriter },
  userId: string,
  kind: K,
  values: MailKinds[K],
): Promise<void> {
  const user = await stores.users.findUserById(userId);
  if (user !== undefined) await stores.notices.add(kind, user.email, values);
}

/** Security notices: stored with the change, mailed after it (see {@link NOTICE_KINDS}). */
export interface SecurityNotices {
  /** A writer over `trx`, the transaction of the change the notices report. */
  writer(trx: Kysely<Schema>): NoticeWriter;
  /**
   * After a change that wrote notices committed: takes what is due and hands it to the mailer, at
   * once and in the background (never throws, never delays the caller).
   */
  flush(): void;
  /** The periodic pass: deletes notices older than {@link NOTICE_MAX_AGE_MS}, then flushes. */
  sweep(): Promise<void>;
  /** Resolves when no claim is running and the mailer is idle (tests). */
  idle(): Promise<void>;
  /** This instance's figures since it started (metrics). */
  stats(): SecurityNoticeStats;
  /**
   * Stops the periodic pass and gives back the notices this instance took and has not seen
   * delivered, so another instance (or this one restarted) sends them at once rather than after the
   * lease; the notices still in this instance's mail queue are withdrawn from it first, so only
   * one the relay is taking at that moment may then arrive twice.
   */
  close(): Promise<void>;
}

/** What {@link SecurityNotices.stats} reports: one instance's figures since it started. */
export interface SecurityNoticeStats {
  /** Notices in this instance's mail queue now. */
  held: number;
  /** Notices the relay took. */
  delivered: number;
  /** Takes whose every attempt failed, or that the relay refused (each then waits its backoff). */
  failedTakes: number;
  /** Notices deleted undelivered after {@link NOTICE_MAX_AGE_MS} (by this instance's sweeps). */
  expired: number;
}

/** Dependencies of {@link createSecurityNotices}. */
export interface SecurityNoticesOptions {
  database: { db: Kysely<Schema>; dialect: DialectName };
  mailer: Pick<Mailer, 'send' | 'pending' | 'idle' | 'withdraw'>;
  /**
   * `MAIL_QUEUE_MAX`: a claim takes at most half of what is free, leaving room for link mails, but
   * always one (the mailer's fair eviction then makes room in a flood).
   */
  maxQueued: number;
  /**
   * Whether this instance sends notices (sweeps and claims) or only writes them. The CLI writes
   * only: a command that ends at once would take notices and leave them leased, or mail them
   * through its own transport (an outbox directory no one reads). @default true
   */
  deliver?: boolean;
  clock: () => number;
  scheduler: Scheduler;
  warn: CoreWarn;
}

/** Reads a stored row back into a notice the templates can render; undefined when it is not one. */
function readNotice(row: StoredNotice): { kind: NoticeKind; values: Record<string, string> } | undefined {
  // Claims ask for NOTICE_KINDS only: another kind here is not a row this version took.
  const kind = NOTICE_KINDS.find((known) => known === row.kind);
  if (kind === undefined) return undefined;
  let values: unknown;
  try {
    values = JSON.parse(row.values);
  } catch {
    return undefined;
  }
  if (typeof values !== 'object' || values === null || Array.isArray(values)) return undefined;
  const entries = Object.entries(values);
  if (!entries.every(([, value]) => typeof value === 'string')) return undefined;
  return { kind, values: Object.fromEntries(entries) as Record<string, string> };
}

const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The wait before the next take of a notice after its `failures`-th failed take (1, 2, …). */
export function noticeBackoffMs(failures: number): number {
  return Math.min(NOTICE_LEASE_MS * 2 ** Math.max(0, Math.min(failures - 1, 10)), NOTICE_MAX_BACKOFF_MS);
}

/**
 * Creates the {@link SecurityNotices}: a sweep every {@link NOTICE_SWEEP_INTERVAL_MS} on
 * `scheduler`, and one at once (a restart sends what the previous process left).
 */
export function createSecurityNotices(options: SecurityNoticesOptions): SecurityNotices {
  const { database, mailer, clock, warn } = options;
  const deliver = options.deliver ?? true;
  const store: NoticeStore = createNoticeStore(database.db, database.dialect);
  let closed = false;
  let claiming: Promise<void> | undefined;
  let again = false;
  /** The last claim took a full batch: more may be due, taken as deliveries make room. */
  let backlog = false;

  const room = () =>
    Math.min(CLAIM_BATCH, Math.max(1, Math.floor((options.maxQueued - mailer.pending()) / 2)));

  /**
   * Notices this instance took and handed to its mailer, each with its lease (renewed by each sweep
   * while the mailer holds it, given back on close). An entry leaves when the mailer settles that
   * take (delivered, refused for good, dropped, evicted), so the map holds at most what the mail
   * queue holds; a settlement acts only on its own take's entry (`entry === held.get(id)`).
   */
  const held = new Map<string, { leaseUntil: number }>();
  /** This instance's mark on the notices it queues, to withdraw them on close. */
  const queueOwner = {};
  const totals = { delivered: 0, failedTakes: 0, expired: 0 };
  /** Database writes after a settlement, in flight (for `idle` and `close`). */
  const writes = new Set<Promise<void>>();
  const track = (write: Promise<void>, failure: string) => {
    const settled = write
      .catch((error: unknown) => {
        if (!closed) warn(failure, { error: reason(error) });
      })
      .finally(() => writes.delete(settled));
    writes.add(settled);
  };

  const settle = (row: StoredNotice, entry: { leaseUntil: number }, outcome: MailOutcome) => {
    const own = held.get(row.id) === entry;
    if (own) held.delete(row.id);
    if (outcome === 'delivered') {
      totals.delivered += 1;
      // Also after close, or for an older take (the relay took it): fewer second copies.
      // Sent again after its lease if this fails: a second notice, never none.
      track(store.remove(row.id), 'security notice sent but not deleted; it will be sent again');
      if (backlog) flush();
      return;
    }
    // Given back on close already (the mailer drops its queue after this closed), or a take
    // superseded by a newer one of this instance.
    if (closed || !own) return;
    const now = clock();
    if (outcome === 'evicted') {
      // Never attempted: a full queue made room for another source. Offered again at the next
      // sweep, with no failure counted (an intruder's flood must not age it into its backoff).
      track(
        store.postpone(row.id, entry.leaseUntil, now + NOTICE_SWEEP_INTERVAL_MS, false),
        'security notice not postponed; taken again when its lease ends',
      );
      return;
    }
    // Every attempt failed, or the relay refused the address (for a notice, not trusted to be
    // final: a relay refusing everyone at RCPT TO looks the same): the next take after a growing
    // wait, until NOTICE_MAX_AGE_MS.
    totals.failedTakes += 1;
    if (outcome === 'rejected') {
      warn('security notice refused by the relay for its recipient; retried later', { kind: row.kind });
    }
    track(
      store.postpone(row.id, entry.leaseUntil, now + noticeBackoffMs(row.failures + 1), true),
      'security notice not postponed; taken again when its lease ends',
    );
  };

  const claimOnce = async (): Promise<void> => {
    const limit = room();
    const now = clock();
    const leaseUntil = now + NOTICE_LEASE_MS;
    const rows = await store.claim(now, leaseUntil, limit, NOTICE_KINDS);
    backlog = rows.length === limit;
    for (const row of rows) {
      const mine = held.get(row.id);
      if (mine !== undefined) {
        // Still in this instance's mail queue (its renewals did not reach the database in time):
        // the new lease is this take's, and the queued copy stays the only one.
        mine.leaseUntil = leaseUntil;
        continue;
      }
      const notice = readNotice(row);
      if (notice === undefined) {
        // Nothing will ever render it: kept, it would be taken again and again for three days.
        warn('unreadable security notice dropped', { kind: row.kind });
        await store.remove(row.id);
        continue;
      }
      const entry = { leaseUntil };
      held.set(row.id, entry);
      const queued = mailer.send(notice.kind, row.recipient, notice.values as MailKinds[NoticeKind], {
        onSettled: (outcome) => settle(row, entry, outcome),
        owner: queueOwner,
      });
      if (!queued) {
        // The mailer's per-address or queue bound: offered again at a later sweep, not a lease later.
        held.delete(row.id);
        track(
          store.postpone(row.id, leaseUntil, now + NOTICE_SWEEP_INTERVAL_MS, false),
          'security notice not postponed; taken again when its lease ends',
        );
      }
    }
  };

  function flush(): void {
    if (closed || !deliver) return;
    if (claiming !== undefined) {
      again = true;
      return;
    }
    claiming = (async () => {
      do {
        again = false;
        try {
          await claimOnce();
        } catch (error) {
          // The database is down or slow: the notices stay stored, and the next sweep (or the next
          // change's flush) tries again.
          if (!closed)
            warn('security notices not claimed; retrying on the next sweep', { error: reason(error) });
          return;
        }
      } while (again && !closed);
    })().finally(() => {
      claiming = undefined;
    });
  }

  /** Keeps the notices still in this instance's mail queue its own for another lease. */
  const renewHeld = async () => {
    const now = clock();
    const ending = [...held]
      .filter(([, entry]) => entry.leaseUntil - now < 2 * NOTICE_SWEEP_INTERVAL_MS)
      .map(([id, entry]) => ({ id, leaseUntil: entry.leaseUntil }));
    if (ending.length === 0) return;
    const until = now + NOTICE_LEASE_MS;
    const renewed = new Set(await store.renew(ending, until));
    // Only what the database extended: a row another instance took is no longer this lease's.
    for (const { id, leaseUntil } of ending) {
      const entry = held.get(id);
      if (renewed.has(id) && entry?.leaseUntil === leaseUntil) entry.leaseUntil = until;
    }
  };

  // A wall clock stepped days ahead must not delete notices that are hours old (see createSweepClock).
  const sweepClock = createSweepClock(clock, 2 * NOTICE_SWEEP_INTERVAL_MS);
  /** One sweep at a time: a slow database (or a test clock jumping hours) never piles them up. */
  let sweeping: Promise<void> | undefined;
  const sweepOnce = async () => {
    try {
      await renewHeld();
    } catch (error) {
      if (!closed) warn('security notice leases not renewed', { error: reason(error) });
    }
    try {
      const dropped = await store.deleteOlderThan(sweepClock() - NOTICE_MAX_AGE_MS);
      totals.expired += dropped;
      if (dropped > 0) warn('security notices not delivered within three days; dropped', { count: dropped });
    } catch (error) {
      if (!closed) warn('old security notices not swept', { error: reason(error) });
    }
    flush();
  };
  const sweep = () => {
    if (closed || !deliver) return Promise.resolve();
    sweeping ??= sweepOnce().finally(() => {
      sweeping = undefined;
    });
    return sweeping;
  };

  const timers = deliver
    ? [
        options.scheduler.setInterval(() => void sweep(), NOTICE_SWEEP_INTERVAL_MS),
        options.scheduler.setTimeout(() => void sweep(), 0),
      ]
    : [];

  return {
    writer(trx) {
      const notices = createNoticeStore(trx, database.dialect);
      return {
        async add(kind, to, values) {
          const added = await notices.add(
            { kind, recipient: to, values: JSON.stringify(values) },
            clock(),
            NOTICE_MAX_PENDING_PER_KIND,
          );
          if (added === 'cap_reached') {
            warn('security notices of this kind pending to this address at their cap; notice not written', {
              kind,
            });
          }
        },
      };
    },
    flush,
    sweep,
    stats: () => ({ held: held.size, ...totals }),
    async idle() {
      while (claiming !== undefined || writes.size > 0 || mailer.pending() > 0) {
        await claiming;
        await mailer.idle();
        await Promise.all(writes);
      }
    },
    async close() {
      closed = true;
      for (const timer of timers) timer.cancel();
      await sweeping;
      await claiming;
      await Promise.all(writes);
      const mine = [...held].map(([id, entry]) => ({ id, leaseUntil: entry.leaseUntil }));
      // Out of the mail queue before their leases go back: another instance takes them then, and
      // this one must not send them as well (reviewer's R6: the mailer kept sending what it held
      // until it closed, after this). Only the notice the relay has now may still go out twice.
      mailer.withdraw(queueOwner);
      held.clear();
      await Promise.all(mine.map(({ id, leaseUntil }) => store.postpone(id, leaseUntil, 0, false))).catch(
        (error: unknown) =>
          warn('security notices not given back on close; sent after their lease', { error: reason(error) }),
      );
    },
  };
}
