import type { Kysely } from 'kysely';
import type { CoreWarn } from '../events/redis-connections.js';
import type { Scheduler } from '../lib/scheduler.js';
import { createSweepClock } from '../lib/sweep-clock.js';
import type { DialectName } from '../storage/open-database.js';
import type { Schema } from '../storage/schema.js';
import type { UserStore } from '../storage/user-store.js';
import type { MailKind, MailKinds } from './mail-templates.js';
import type { Mailer } from './mailer.js';
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
  'account_deleted',
] as const satisfies readonly MailKind[];

/** A kind of security notice (see {@link NOTICE_KINDS}). */
export type NoticeKind = (typeof NOTICE_KINDS)[number];

/**
 * How long an instance holds the notices it took before another may send them: longer than the
 * mailer's own attempts (5 over about 5 minutes, each bounded by `MAIL_SEND_TIMEOUT`), so a notice
 * is sent twice only when its sender stopped. It is also how long a notice waits after a crash.
 */
export const NOTICE_LEASE_MS = 10 * 60_000;

/** How often each instance looks for notices that are due (its own retries and other instances' leftovers). */
export const NOTICE_SWEEP_INTERVAL_MS = 60_000;

/**
 * Notices not delivered within this time are deleted with a warning: a relay down for three days is
 * an outage the operator has heard of, and the stored addresses should not outlive it.
 */
export const NOTICE_MAX_AGE_MS = 3 * 24 * 60 * 60_000;

/**
 * Notices pending to one address at most; a change beyond it writes none (with a warning). The
 * pending ones already tell the owner that something is happening, and an account changing itself
 * over and over while the relay is down cannot grow the table without bound: with the three-day
 * age, the table holds at most this many rows per address any change mails.
 */
export const NOTICE_MAX_PENDING_PER_ADDRESS = 10;

/** Notices taken per claim. */
const CLAIM_BATCH = 20;

/** Writes security notices in a change's transaction (see {@link SecurityNotices.writer}). */
export interface NoticeWriter {
  /** Records `kind` to `to`; it is mailed once the transaction commits and `flush` is called. */
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
  /**
   * Stops the periodic pass and gives back the notices this instance took and has not sent, so
   * another instance (or this one restarted) sends them at once rather than after the lease.
   */
  close(): Promise<void>;
}

/** Dependencies of {@link createSecurityNotices}. */
export interface SecurityNoticesOptions {
  database: { db: Kysely<Schema>; dialect: DialectName };
  mailer: Pick<Mailer, 'send' | 'pending' | 'idle'>;
  /** `MAIL_QUEUE_MAX`: a claim takes at most half of what is free, leaving room for link mails. */
  maxQueued: number;
  clock: () => number;
  scheduler: Scheduler;
  warn: CoreWarn;
}

/** Reads a stored row back into a notice the templates can render; undefined when it is not one. */
function readNotice(row: StoredNotice): { kind: NoticeKind; values: Record<string, string> } | undefined {
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

/**
 * Creates the {@link SecurityNotices}: a sweep every {@link NOTICE_SWEEP_INTERVAL_MS} on
 * `scheduler`, and one at once (a restart sends what the previous process left, once its lease ends).
 */
export function createSecurityNotices(options: SecurityNoticesOptions): SecurityNotices {
  const { database, mailer, clock, warn } = options;
  const store: NoticeStore = createNoticeStore(database.db, database.dialect);
  let closed = false;
  let claiming: Promise<void> | undefined;
  let again = false;
  /** The last claim took a full batch: more may be due, taken as deliveries make room. */
  let backlog = false;

  const room = () => Math.min(CLAIM_BATCH, Math.floor((options.maxQueued - mailer.pending()) / 2));

  /**
   * Notices this instance took and has not seen delivered, with their lease: given back on close.
   * Bounded by what the claims of one lease can take (entries past their lease are pruned).
   */
  const held = new Map<string, number>();
  /** Deletions of delivered notices in flight (for `idle`). */
  const removals = new Set<Promise<void>>();
  const delivered = (id: string) => {
    held.delete(id);
    const removal = store
      .remove(id)
      .catch((error: unknown) =>
        // Sent again when its lease ends: a second notice, never none.
        warn('security notice sent but not deleted; it will be sent again', { error: reason(error) }),
      )
      .finally(() => removals.delete(removal));
    removals.add(removal);
    if (backlog) flush();
  };

  const claimOnce = async (): Promise<void> => {
    const limit = room();
    if (limit <= 0) return;
    const now = clock();
    for (const [id, leaseUntil] of held) if (leaseUntil <= now) held.delete(id);
    const leaseUntil = now + NOTICE_LEASE_MS;
    const rows = await store.claim(now, leaseUntil, limit);
    backlog = rows.length === limit;
    for (const row of rows) {
      held.set(row.id, leaseUntil);
      const notice = readNotice(row);
      if (notice === undefined) {
        // Nothing will ever render it: kept, it would be claimed again every lease for three days.
        warn('unreadable security notice dropped', { kind: row.kind });
        held.delete(row.id);
        await store.remove(row.id);
        continue;
      }
      // Refused (the mailer's per-address or queue bound): the row stays, its lease runs out,
      // and a later claim offers it again.
      mailer.send(notice.kind, row.recipient, notice.values as MailKinds[NoticeKind], {
        onDelivered: () => delivered(row.id),
      });
    }
  };

  function flush(): void {
    if (closed) return;
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

  // A wall clock stepped days ahead must not delete notices that are hours old (see createSweepClock).
  const sweepClock = createSweepClock(clock, 2 * NOTICE_SWEEP_INTERVAL_MS);
  /** One sweep at a time: a slow database (or a test clock jumping hours) never piles them up. */
  let sweeping: Promise<void> | undefined;
  const sweepOnce = async () => {
    try {
      const dropped = await store.deleteOlderThan(sweepClock() - NOTICE_MAX_AGE_MS);
      if (dropped > 0) warn('security notices not delivered within three days; dropped', { count: dropped });
    } catch (error) {
      if (!closed) warn('old security notices not swept', { error: reason(error) });
    }
    flush();
  };
  const sweep = () => {
    if (closed) return Promise.resolve();
    sweeping ??= sweepOnce().finally(() => {
      sweeping = undefined;
    });
    return sweeping;
  };

  const timer = options.scheduler.setInterval(() => void sweep(), NOTICE_SWEEP_INTERVAL_MS);
  const first = options.scheduler.setTimeout(() => void sweep(), 0);

  return {
    writer(trx) {
      const notices = createNoticeStore(trx, database.dialect);
      return {
        async add(kind, to, values) {
          const added = await notices.add(
            { kind, recipient: to, values: JSON.stringify(values) },
            clock(),
            NOTICE_MAX_PENDING_PER_ADDRESS,
          );
          if (added === 'address_full') {
            warn('security notices pending to this address at their cap; notice not written', { kind });
          }
        },
      };
    },
    flush,
    sweep,
    async idle() {
      while (claiming !== undefined || removals.size > 0 || mailer.pending() > 0) {
        await claiming;
        await mailer.idle();
        await Promise.all(removals);
      }
    },
    async close() {
      closed = true;
      timer.cancel();
      first.cancel();
      await sweeping;
      await claiming;
      await Promise.all(removals);
      const now = clock();
      const mine = [...held].filter(([, leaseUntil]) => leaseUntil > now);
      held.clear();
      await Promise.all(mine.map(([id, leaseUntil]) => store.release(id, leaseUntil))).catch(
        (error: unknown) =>
          warn('security notices not given back on close; sent after their lease', { error: reason(error) }),
      );
    },
  };
}
