import type { Kysely } from 'kysely';

/**
 * `oauth_codes.redirect_uri_given`: 1 when the authorization request carried `redirect_uri`, 0 when
 * it was left out (allowed only for a client with one registered URI, RFC 6749 §3.1.2.3). RFC 6749
 * §4.1.3: the token request's `redirect_uri` is "REQUIRED, if the redirect_uri parameter was
 * included in the authorization request", so the exchange must know which it was; the stored
 * `redirect_uri` is the resolved URI either way.
 *
 * Existing rows (codes live 60 s) start at 0, the lenient answer they were issued under.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('oauth_codes')
    .addColumn('redirect_uri_given', 'integer', (column) => column.notNull().defaultTo(0))
    .execute();
}

/** Drops the column: an exchange may then leave out a `redirect_uri` the request carried. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('oauth_codes').dropColumn('redirect_uri_given').execute();
}
