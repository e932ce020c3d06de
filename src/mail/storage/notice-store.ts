import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { DialectName } from '../../storage/open-database.js';
import type { Schema } from '../../storage/schema.js';

/** A security notice as stored: its template's values are a JSON object of strings. */
export interface StoredNotice {
  id: string;
  kind: string;
  recipient: string;
  /** The raw JSON; the sender checks it against the kind before rendering. */
  values: string;
  createdAt: number;
  /** Earlier takes whose every delivery attempt failed. */
  failures: number;
}

/** What {@link NoticeStore.add} did. */
export type NoticeAdded = 'added' | 'cap_reached';

/**
 * `pending_notices` (migration `033a`): security notices written with the change they report and
 * deleted once sent, so a process dying after the commit does not lose them.
 */
export interface NoticeStore {
  /**
   * Writes a notice (build the store over the change's transaction). `cap_reached` when
   * `maxPerKind` notices of that kind to that address are pending already: the ones waiting tell
   * the owner the same thing, and one account changing itself over and over while the relay is
   * down cannot grow the table without bound. Counted per kind, so a burst of one kind (email
   * change requests) cannot keep another (the change itself) from being written.
   */
  add(
    notice: { kind: string; recipient: string; values: string },
    now: number,
    maxPerKind: number,
  ): Promise<NoticeAdded>;
  /**
   * Takes up to `limit` notices of `kinds` due at `now` (never taken, or their lease or backoff
   * ended), oldest first, and leases them until `leaseUntil`: of instances claiming at once each
   * row goes to one (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one statement, which runs
   * alone). Only `kinds`: an older instance leaves a newer version's kinds alone.
   */
  claim(now: number, leaseUntil: number, limit: number, kinds: readonly string[]): Promise<StoredNotice[]>;
  /**
   * Moves a notice's next take to `until` while `leaseUntil` is still its lease (0 gives it back
   * at once; later is a wait), counting a failed take when `failed`. A row another instance took
   * since is left alone.
   */
  postpone(id: string, leaseUntil: number, until: number, failed: boolean): Promise<void>;
  /**
   * Extends the leases of notices this instance still holds (`leaseUntil` each) to `until`;
   * answers the ids whose lease it extended (not those another instance took meanwhile).
   */
  renew(held: readonly { id: string; leaseUntil: number }[], until: number): Promise<string[]>;
  /** Deletes a notice that was sent (or cannot be). */
  remove(id: string): Promise<void>;
  /** Deletes notices written before `before`; returns how many. */
  deleteOlderThan(before: number): Promise<number>;
  /** Notices pending. */
  count(): Promise<number>;
}

/** Creates the {@link NoticeStore} over `db` (the pool, or a change's transaction). */
export function createNoticeStore(db: Kysely<Schema>, dialect: DialectName): NoticeStore {
  return {
    async add(notice, now, maxPerKind) {
      const recipientKey = notice.recipient.toLowerCase();
      // A count then an insert: two changes at once may both pass at cap − 1, one row over at most
      // per concurrent change, which the cap does not need to be exact about.
      const pending = await db
        .selectFrom('pending_notices')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('recipient_key', '=', recipientKey)
        .where('kind', '=', notice.kind)
        .executeTakeFirstOrThrow();
      if (Number(pending.n) >= maxPerKind) return 'cap_reached';
      await db
        .insertInto('pending_notices')
        .values({
          id: randomUUID(),
          kind: notice.kind,
          recipient: notice.recipient,
          recipient_key: recipientKey,
          mail_values: notice.values,
          created_at: now,
        })
        .execute();
      return 'added';
    },
    async claim(now, leaseUntil, limit, kinds) {
      // A read first: an idle instance's sweeps write nothing (no WAL frame, no row lock, nothing
      // in a query log) when no notice is due, which is nearly always.
      const due = await db
        .selectFrom('pending_notices')
        .select('id')
        .where('claimed_until', '<=', now)
        .where('kind', 'in', kinds)
        .limit(1)
        .executeTakeFirst();
      if (due === undefined) return [];
      const rows = await db
        .updateTable('pending_notices')
        .set({ claimed_until: leaseUntil })
        .where('id', 'in', (eb) => {
          const due = eb
            .selectFrom('pending_notices')
            .select('id')
            .where('claimed_until', '<=', now)
            .where('kind', 'in', kinds)
            .orderBy('created_at')
            .limit(limit);
          // Two instances claiming at once: each skips the rows the other holds, rather than
          // waiting for it and then sending them too (READ COMMITTED re-checks the lease below).
          return dialect === 'postgres' ? due.forUpdate().skipLocked() : due;
        })
        .where('claimed_until', '<=', now)
        .returning(['id', 'kind', 'recipient', 'mail_values', 'created_at', 'failures'])
        .execute();
      return rows
        .map((row) => ({
          id: row.id,
          kind: row.kind,
          recipient: row.recipient,
          values: row.mail_values,
          createdAt: Number(row.created_at),
          failures: Number(row.failures),
        }))
        .sort((a, b) => a.createdAt - b.createdAt);
    },
    async postpone(id, leaseUntil, until, failed) {
      await db
        .updateTable('pending_notices')
        .set((eb) => ({
          claimed_until: until,
          failures: failed ? eb('failures', '+', 1) : eb.ref('failures'),
        }))
        .where('id', '=', id)
        .where('claimed_until', '=', leaseUntil)
        .execute();
    },
    async renew(held, until) {
      // One statement per lease value (a claim's batch shares one), not per row.
      const byLease = new Map<number, string[]>();
      for (const { id, leaseUntil } of held)
        byLease.set(leaseUntil, [...(byLease.get(leaseUntil) ?? []), id]);
      const renewed: string[] = [];
      for (const [leaseUntil, ids] of byLease) {
        const rows = await db
          .updateTable('pending_notices')
          .set({ claimed_until: until })
          .where('id', 'in', ids)
          .where('claimed_until', '=', leaseUntil)
          .returning('id')
          .execute();
        renewed.push(...rows.map((row) => row.id));
      }
      return renewed;
    },
    async remove(id) {
      await db.deleteFrom('pending_notices').where('id', '=', id).execute();
    },
    async deleteOlderThan(before) {
      // As the claim: a read first, so an idle sweep writes nothing.
      const old = await db
        .selectFrom('pending_notices')
        .select('id')
        .where('created_at', '<', before)
        .limit(1)
        .executeTakeFirst();
      if (old === undefined) return 0;
      const result = await db
        .deleteFrom('pending_notices')
        .where('created_at', '<', before)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
    async count() {
      const row = await db
        .selectFrom('pending_notices')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}
