import type { Kysely } from 'kysely';

/**
 * Account lifecycle (issue 12): `users.email_verified`, and `account_tokens`, the single-use links
 * mailed for email verification, password reset and email change.
 *
 * A token is stored only as its SHA-256 (the link holds ≥ 256 random bits, so a plain hash is
 * enough: nothing to brute-force), with its purpose and the address it was mailed to, so a token is
 * good for one purpose and one address only. `(user_id, purpose)` is unique: issuing a new link
 * replaces the previous one, which bounds the table to three rows per account (plus the hourly
 * sweep of expired rows). Rows go with their account (ON DELETE CASCADE).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('users')
    .addColumn('email_verified', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createTable('account_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('purpose', 'text', (c) => c.notNull())
    /** The normalized key of the address the link was mailed to. */
    .addColumn('email_key', 'text', (c) => c.notNull())
    /** That address as typed (the new address, for an email change). */
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('account_tokens_user_purpose_unique', ['user_id', 'purpose'])
    .execute();
  await db.schema
    .createIndex('account_tokens_expiry_idx')
    .on('account_tokens')
    .column('expires_at')
    .execute();
}

/** Drops the link table and the verified flag. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('account_tokens').execute();
  await db.schema.alterTable('users').dropColumn('email_verified').execute();
}
