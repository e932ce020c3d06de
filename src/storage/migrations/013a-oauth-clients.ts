import type { Kysely } from 'kysely';

/**
 * Registered OAuth clients (issue 15, item 1). Only administrators add rows (admin routes,
 * `gatehouse clients create`), so the table grows only as fast as they register apps; the service
 * also caps it (`MAX_OAUTH_CLIENTS`).
 *
 * `secret_hash` is the SHA-256 of a confidential client's 256-bit random secret (null for public
 * clients). A fast hash is enough here: the secret is machine-generated with full entropy, so
 * there is no dictionary to try (OWASP Password Storage Cheat Sheet: slow hashes are for
 * low-entropy, human-chosen secrets). The URI, grant and scope lists are JSON arrays of strings.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('oauth_clients')
    .addColumn('client_id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text')
    .addColumn('redirect_uris', 'text', (c) => c.notNull())
    .addColumn('post_logout_redirect_uris', 'text', (c) => c.notNull())
    .addColumn('grant_types', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
}

/** Drops the client table. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('oauth_clients').execute();
}
