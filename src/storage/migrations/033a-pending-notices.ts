import type { Kysely } from 'kysely';

/**
 * `pending_notices`: security notices (a password changed, an address changed, a second factor
 * added, removed or locked, an account deleted) written in the transaction of the change they
 * report, and deleted once the mail is handed to the relay. Before, the notice waited in the
 * in-memory mail queue after the commit, so a process dying at that moment lost the owner's only
 * word of a change an intruder made (red-team 2026-12j, left open).
 *
 * `claimed_until` (epoch ms) is when an instance may take the row: 0 for a row no instance has taken
 * yet, else the lease of the instance sending it or the end of its backoff after failed attempts
 * (`failures` counts the takes whose every attempt failed, for that backoff). Link mails (reset, verification, email change) are not written here: their tokens
 * are stored hashed only, and whoever asked can ask again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('pending_notices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('recipient_key', 'text', (c) => c.notNull())
    .addColumn('mail_values', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('claimed_until', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  // The claim (due rows, oldest first) and the expiry sweep.
  await db.schema
    .createIndex('pending_notices_created_idx')
    .on('pending_notices')
    .column('created_at')
    .execute();
  // The cap per address and kind, counted at each insert.
  await db.schema
    .createIndex('pending_notices_recipient_idx')
    .on('pending_notices')
    .columns(['recipient_key', 'kind'])
    .execute();
}

/** Drops the table: notices not yet sent are lost. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('pending_notices').execute();
}
