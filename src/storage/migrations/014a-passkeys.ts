import type { Kysely } from 'kysely';

/**
 * Passkeys (issue 13; WebAuthn level 3 public-key credentials).
 *
 * `passkeys`: one row per registered credential. `id` is the credential id (base64url, unique
 * across accounts: an authenticator never hands out one id twice), `public_key` the COSE public
 * key (base64url). `counter` is the signature counter last seen (WebAuthn §6.1.1: a counter that
 * does not grow flags a cloned authenticator; many passkeys always send 0). `device_type`
 * (`singleDevice` / `multiDevice`) and `backed_up` are the authenticator data's BE and BS flags
 * (§6.1, synced passkeys). `transports` (comma-separated hints) helps browsers find it again.
 * At most `MAX_PASSKEYS_PER_ACCOUNT` rows per account (checked by the service); rows go with their
 * account (`on delete cascade`). Booleans are 0/1 integers, as everywhere in the schema.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('passkeys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('counter', 'bigint', (c) => c.notNull())
    .addColumn('device_type', 'text', (c) => c.notNull())
    .addColumn('backed_up', 'integer', (c) => c.notNull())
    .addColumn('transports', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint')
    .execute();
  await db.schema.createIndex('passkeys_user_id').on('passkeys').column('user_id').execute();
}

/** Drops the passkeys table. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('passkeys').execute();
}
