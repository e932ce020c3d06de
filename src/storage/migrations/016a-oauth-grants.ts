import type { Kysely } from 'kysely';

/**
 * Authorization codes and remembered consent (issue 15, item 2).
 *
 * `oauth_codes`: authorization codes, stored only as SHA-256 hashes of 256 random bits (a fast
 * hash suffices for full-entropy secrets). Each is bound to its client, redirect URI, PKCE
 * challenge (S256) and user, lives ≤ 60 s, and is spent once (`used_at`). `session_id` is the
 * session its exchange started, so a replay (`replayed_at`) can revoke it (RFC 6749 §4.1.2).
 * Bounded: ≤ 20 live codes per account (the service refuses more), expired rows swept hourly.
 *
 * `oauth_consents`: the scopes a person allowed a client, one row per account and client (so at
 * most accounts × MAX_OAUTH_CLIENTS rows), revocable from "Connected apps".
 *
 * Both go with their account and their client (`on delete cascade`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('oauth_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) =>
      c.notNull().references('oauth_clients.client_id').onDelete('cascade'),
    )
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('code_challenge', 'text', (c) => c.notNull())
    .addColumn('nonce', 'text')
    .addColumn('auth_time', 'bigint', (c) => c.notNull())
    .addColumn('amr', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addColumn('replayed_at', 'bigint')
    .addColumn('session_id', 'text')
    .execute();
  await db.schema
    .createIndex('oauth_codes_user')
    .on('oauth_codes')
    .columns(['user_id', 'expires_at'])
    .execute();
  await db.schema.createIndex('oauth_codes_expiry').on('oauth_codes').column('expires_at').execute();
  await db.schema
    .createTable('oauth_consents')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) =>
      c.notNull().references('oauth_clients.client_id').onDelete('cascade'),
    )
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('oauth_consents_pk', ['user_id', 'client_id'])
    .execute();
}

/** Drops the code and consent tables. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('oauth_consents').execute();
  await db.schema.dropTable('oauth_codes').execute();
}
