import type { Kysely } from 'kysely';

/**
 * `oauth_clients.id_token_signed_response_alg`: the JWS algorithm a client asked its ID tokens to
 * be signed with (OpenID Connect Dynamic Client Registration §2), or null for the installation's
 * default (JWT_ALG when asymmetric, else ES256). OpenID Connect Core §15.1 makes RS256 mandatory
 * for an OP, and some relying parties accept nothing else, whatever JWT_ALG is.
 *
 * Existing clients start at null, which signs as they were signed before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('oauth_clients').addColumn('id_token_signed_response_alg', 'text').execute();
}

/** Drops the column: every client's ID tokens are then signed with the default algorithm. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('oauth_clients').dropColumn('id_token_signed_response_alg').execute();
}
