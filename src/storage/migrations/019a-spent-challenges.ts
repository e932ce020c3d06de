import type { Kysely } from 'kysely';

/**
 * Spent single-use challenges: the nonce of an `mfa_token` or a passkey challenge (`passkey_token`)
 * once an answer to it verified. These markers used to live in the counter store, whose in-memory
 * form forgets its least recently used keys: a flood of other keys (failed logins from many
 * addresses) could evict a marker and let the same answer be replayed within the token's life.
 * A row here is never evicted, is shared by every instance whether Redis is up or not, and the
 * primary key makes a claim atomic (insert, or find it taken).
 *
 * `nonce` is `<purpose>:<nonce>` (purposes `mfa`, `passkey`; nonces are 128 random bits minted by
 * the server inside a sealed token, so nobody can choose them). Bounded: a row is written only
 * after a right answer (a valid code or a verified signature), lives until its token's
 * `expires_at` (`MFA_TOKEN_TTL`), and expired rows are swept hourly.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('spent_challenges')
    .addColumn('nonce', 'text', (c) => c.primaryKey())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('spent_challenges_expiry')
    .on('spent_challenges')
    .column('expires_at')
    .execute();
}

/** Drops the spent-challenge table. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('spent_challenges').execute();
}
