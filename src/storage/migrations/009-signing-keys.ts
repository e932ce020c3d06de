import type { Kysely } from 'kysely';

/**
 * Signing keys in the database (issue 11 item 3), so every instance sees one key set with no
 * shared file, and the client a refresh or opaque access token was issued to.
 *
 * `signing_keys`: one row per asymmetric key. A key's state is derived from its timestamps, never
 * flipped by a writer, so every instance agrees on it at the same instant (see
 * `src/tokens/signing-key-set.ts`): `activates_at` in the future is *next* (published, not
 * signing); the activated key with the highest `generation` is *current*; older activated keys are
 * *retired* (published until their tokens have expired, then purged); `revoked_at` set is
 * *revoked*. `(alg, generation)` is unique, so two concurrent rotations cannot both add the same
 * successor, and there is exactly one current key per algorithm. Private keys are stored
 * AES-256-GCM sealed under a key derived from SECRET_KEY; public JWKs in clear.
 *
 * `client_id` on `refresh_tokens` and `access_tokens`: the RFC 9068 `client_id` of the client that
 * obtained the token, so a refresh keeps it and `/revoke` can check it (RFC 7009 §2.1). Null on
 * rows written before this migration (treated as the first-party client).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('signing_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('generation', 'integer', (c) => c.notNull())
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('private_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('activates_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addUniqueConstraint('signing_keys_generation_unique', ['alg', 'generation'])
    .execute();
  await db.schema.alterTable('refresh_tokens').addColumn('client_id', 'text').execute();
  await db.schema.alterTable('access_tokens').addColumn('client_id', 'text').execute();
}

/** Drops the key table and the client columns. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('access_tokens').dropColumn('client_id').execute();
  await db.schema.alterTable('refresh_tokens').dropColumn('client_id').execute();
  await db.schema.dropTable('signing_keys').execute();
}
