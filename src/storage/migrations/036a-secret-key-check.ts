import { type Kysely, sql } from 'kysely';

/**
 * `secret_key_check`: one row, the fingerprint of the `SECRET_KEY` the instances on this database
 * use (an HMAC of a fixed label under it, never the secret). An instance whose secret differs
 * refuses to start: instances sharing a database with different secrets (one left unset, so each
 * generated its own; a typo in one deployment) refused each other's HS256 tokens, CSRF, device and
 * mfa tokens, and could not open each other's sealed keys and TOTP secrets (red-team 2026-12q Q2).
 * Written by the first instance to start, moved on by a rotation (`SECRET_KEY_PREVIOUS`) or by
 * `gatehouse revoke-all`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('secret_key_check')
    // Always 1: the table holds one row, and the key makes a second one impossible.
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
}

/** Drops the table: instances no longer compare their secrets. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('secret_key_check').execute();
}
