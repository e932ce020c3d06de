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
}

/** What {@link NoticeStore.add} did. */
export type NoticeAdded = 'added' | 'address_full';

/**
 * `pending_notices` (migration `033a`): security notices written with the change they report and
 * deleted once sent, so a process dying after the commit does not lose them.
 */
export interface NoticeStore {
  /**
   * Writes a notice (build the store over the change's transaction). `address_full` when
   * `maxPerAddress` notices to that address are pending already: the ones waiting tell the owner
   * that something is happening, and one account changing itself over and over while the relay is
   * down cannot grow the table without bound.
   */
  add(
    notice: { kind: string; recipient: string; values: string },
    now: number,
    maxPerAddress: number,
  ): Promise<NoticeAdded>;
  /**
   * Takes up to `limit` notices whose lease ended (or that no instance took), oldest first, and
   * leases them until `leaseUntil`: of instances claiming at once each row goes to one (PostgreSQL:
   * `FOR UPDATE SKIP LOCKED`; SQLite: one statement, which runs alone).
   */
  claim(now: number, leaseUntil: number, limit: number): Promise<StoredNotice[]>;
  /**
   * Gives a claimed notice back (lease 0) while `leaseUntil` is still its lease: one this instance
   * will not send (it is closing) goes to another at once, not when the lease ends.
   */
  release(id: string, leaseUntil: number): Promise<void>;
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
    async add(notice, now, maxPerAddress) {
      const recipientKey = notice.recipient.toLowerCase();
      // A count then an insert: two changes at once may both pass at cap − 1, one row over at most
      // per concurrent change, which the cap does not need to be exact about.
      const pending = await db
        .selectFrom('pending_notices')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('recipient_key', '=', recipientKey)
        .executeTakeFirstOrThrow();
      if (Number(pending.n) >= maxPerAddress) return 'address_full';
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
    async claim(now, leaseUntil, limit) {
      const rows = await db
        .updateTable('pending_notices')
        .set({ claimed_until: leaseUntil })
        .where('id', 'in', (eb) => {
          const due = eb
            .selectFrom('pending_notices')
            .select('id')
            .where('claimed_until', '<=', now)
            .orderBy('claimed_until')
            .orderBy('created_at')
            .limit(limit);
          // Two instances claiming at once: each skips the rows the other holds, rather than
          // waiting for it and then sending them too (READ COMMITTED re-checks the lease below).
          return dialect === 'postgres' ? due.forUpdate().skipLocked() : due;
        })
        .where('claimed_until', '<=', now)
        .returning(['id', 'kind', 'recipient', 'mail_values', 'created_at'])
        .execute();
      return rows
        .map((row) => ({
          id: row.id,
          kind: row.kind,
          recipient: row.recipient,
          values: row.mail_values,
          createdAt: Number(row.created_at),
        }))
        .sort((a, b) => a.createdAt - b.createdAt);
    },
    async release(id, leaseUntil) {
      await db
        .updateTable('pending_notices')
        .set({ claimed_until: 0 })
        .where('id', '=', id)
        .where('claimed_until', '=', leaseUntil)
        .execute();
    },
    async remove(id) {
      await db.deleteFrom('pending_notices').where('id', '=', id).execute();
    },
    async deleteOlderThan(before) {
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
