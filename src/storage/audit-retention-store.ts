import { type Kysely, sql } from 'kysely';
import { deleteInBatches, type SweepBatchOptions } from './batched-sweep.js';
import type { Schema } from './schema.js';

/** Length of one failed-login tally window. */
export const LOGIN_FAILURE_WINDOW_MS = 3600_000;

/** One aggregated row: failed logins for an account within one hour. */
export interface LoginFailureTally {
  /** The account's id, or null for addresses with no account and usernames that are not addresses. */
  subjectId: string | null;
  /** Start of the hour, epoch ms. */
  windowStart: number;
  failures: number;
  firstAt: number;
  lastAt: number;
  lastIp: string | null;
}

/**
 * Bounded audit storage: failed logins as one counted row per account and hour, and deletion of
 * everything older than the retention (AUDIT_RETENTION), so an anonymous flood of wrong passwords
 * cannot grow the database (issue 8).
 */
export interface AuditRetentionStore {
  /** Adds one failed login for `subjectId` (null: no such account) to the tally of the hour holding `at`. */
  recordLoginFailure(subjectId: string | null, ip: string | null, at: number): Promise<void>;
  /** Tallies, newest first; `subjectId` null lists the no-account tallies. */
  listLoginFailures(query: { subjectId?: string | null; limit: number }): Promise<LoginFailureTally[]>;
  /**
   * Deletes audit entries and tallies from before `cutoff` (epoch ms), a batch at a time through
   * their time indexes; returns how many rows went.
   */
  deleteBefore(cutoff: number, options?: SweepBatchOptions): Promise<number>;
  /**
   * Strips personal data (IP, user agent) from the audit entries and tallies about `userId`, who
   * deleted their account: the rows keep the id, so the trail stays complete.
   */
  forgetPersonalData(userId: string): Promise<void>;
  /**
   * {@link forgetPersonalData} again, for what was written at or after each deletion, for every
   * account deleted at or after `since` (its `user_deleted` entry, which itself keeps the deleting
   * administrator's IP and user agent), returning how many: a request already past its checks when the account
   * went (a logout on another device, a wrong password being hashed) writes its row, with its IP,
   * after the deletion's own pass (race review 2026-12-06 P3). The hourly sweep runs it over the
   * last two hours, so each deletion is passed over again at least an hour after it.
   */
  forgetPersonalDataOfDeletedSince(since: number): Promise<number>;
}

/** Creates the {@link AuditRetentionStore} over the `login_failures` and `audit_events` tables. */
export function createAuditRetentionStore(db: Kysely<Schema>): AuditRetentionStore {
  /**
   * Strips the IP and user agent of `userId`'s audit entries and tallies; with `from`, only of those
   * written at or after it, and never the `user_deleted` entry (it keeps the deleting
   * administrator's, for the deletion's accountability: ARCHITECTURE "Retention decision").
   */
  const forget = async (userId: string, from?: number): Promise<void> => {
    let entries = db
      .updateTable('audit_events')
      .set({ ip: null, user_agent: null })
      .where((eb) => eb.or([eb('actor_id', '=', userId), eb('target_id', '=', userId)]));
    let tallies = db.updateTable('login_failures').set({ last_ip: null }).where('subject_id', '=', userId);
    if (from !== undefined) {
      entries = entries.where('created_at', '>=', from).where('event', '!=', 'user_deleted');
      tallies = tallies.where('last_at', '>=', from);
    }
    await entries.execute();
    await tallies.execute();
  };
  return {
    async recordLoginFailure(subjectId, ip, at) {
      const windowStart = at - (at % LOGIN_FAILURE_WINDOW_MS);
      // One upsert: concurrent failures on any instance add to the same row, never a second one.
      await db
        .insertInto('login_failures')
        .values({
          subject_id: subjectId ?? '',
          window_start: windowStart,
          failures: 1,
          first_at: at,
          last_at: at,
          last_ip: ip,
        })
        .onConflict((oc) =>
          oc.columns(['subject_id', 'window_start']).doUpdateSet({
            failures: sql<number>`login_failures.failures + 1`,
            last_at: (eb) => eb.ref('excluded.last_at'),
            last_ip: (eb) => eb.ref('excluded.last_ip'),
          }),
        )
        .execute();
    },
    async listLoginFailures(query) {
      let select = db.selectFrom('login_failures').selectAll();
      if (query.subjectId !== undefined) select = select.where('subject_id', '=', query.subjectId ?? '');
      const rows = await select.orderBy('window_start', 'desc').limit(query.limit).execute();
      return rows.map((row) => ({
        subjectId: row.subject_id === '' ? null : row.subject_id,
        windowStart: Number(row.window_start),
        failures: Number(row.failures),
        firstAt: Number(row.first_at),
        lastAt: Number(row.last_at),
        lastIp: row.last_ip,
      }));
    },
    forgetPersonalData: (userId) => forget(userId),
    async forgetPersonalDataOfDeletedSince(since) {
      // Through the created_at index: only the last hours' entries are read.
      const deletions = await db
        .selectFrom('audit_events')
        .select(['target_id', 'created_at'])
        .where('created_at', '>=', since)
        .where('event', '=', 'user_deleted')
        .where('target_id', 'is not', null)
        .execute();
      // What was written at or after each deletion (the party indexes, 038a, bound the rows read).
      for (const { target_id: userId, created_at: deletedAt } of deletions) {
        if (userId !== null) await forget(userId, Number(deletedAt));
      }
      return deletions.length;
    },
    async deleteBefore(cutoff, options) {
      const events = await deleteInBatches(db, 'audit_events', ['id'], sql`created_at < ${cutoff}`, options);
      // A tally is kept while any of its hour is inside the retention.
      const tallies = await deleteInBatches(
        db,
        'login_failures',
        ['subject_id', 'window_start'],
        sql`window_start < ${cutoff - LOGIN_FAILURE_WINDOW_MS}`,
        options,
      );
      return events + tallies;
    },
  };
}
