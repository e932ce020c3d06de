import type { Kysely } from 'kysely';

/**
 * What an operator can do to a client short of removing it, and to one of its tokens (abuse
 * assignment).
 *
 * `oauth_clients.disabled_at`: a disabled client cannot authenticate, get tokens or start a sign-in,
 * and its tokens stop (its sessions are revoked, its `client_credentials` tokens fail the check on
 * use); enabling it again clears the column. Its registration, consents and secret are kept.
 *
 * `client_token_revocations`: revoked `client_credentials` access tokens (RFC 7009 §2.1: the server SHOULD revoke access
 * tokens it can). Such a token is a stateless JWT with no session, so the session revocation
 * machinery had nothing to mark; a row here names the token's `jti`, and the in-memory revocation
 * list reads these rows like revoked sessions (first load, periodic reload), so a revocation holds
 * on every instance even when its broadcast is lost, and after a restart.
 *
 * Bounded: only the client a token was issued to can revoke it (authenticated with its secret),
 * one row per token (the `jti` is the key), tokens are issued at most `CLIENT_CREDENTIALS_PER_MINUTE`
 * per client, and a row is swept hourly once its token has expired (`ACCESS_TOKEN_TTL`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('oauth_clients').addColumn('disabled_at', 'bigint').execute();
  await db.schema
    .createTable('client_token_revocations')
    .addColumn('jti', 'text', (c) => c.primaryKey())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('client_token_revocations_revoked')
    .on('client_token_revocations')
    .column('revoked_at')
    .execute();
  await db.schema
    .createIndex('client_token_revocations_expiry')
    .on('client_token_revocations')
    .column('expires_at')
    .execute();
}

/** Drops the table and the column. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('client_token_revocations').execute();
  await db.schema.alterTable('oauth_clients').dropColumn('disabled_at').execute();
}
