import type { Kysely } from 'kysely';

/**
 * Second factors (issue 13).
 *
 * `mfa_totp`: at most one TOTP authenticator per account (RFC 6238). `secret` is the shared secret,
 * AES-256-GCM sealed under a key derived from SECRET_KEY (never stored in clear: a database dump
 * alone must not let anyone compute codes). `confirmed_at` is null while enrolment waits for its
 * first code; only a confirmed row makes the account ask for a second factor. `last_step` is the
 * RFC 6238 time step of the last accepted code, so a code is accepted once (§5.2, replay).
 *
 * `mfa_recovery_codes`: single-use recovery codes, stored only as SHA-256 hashes (the codes carry
 * 80 random bits, so a fast hash suffices and a check costs one hash, not ten argon2 runs).
 * `used_at` marks a spent code. Both tables go with their account (`on delete cascade`).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('mfa_totp')
    .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('confirmed_at', 'bigint')
    .addColumn('last_step', 'bigint')
    .execute();
  await db.schema
    .createTable('mfa_recovery_codes')
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addPrimaryKeyConstraint('mfa_recovery_codes_pk', ['user_id', 'code_hash'])
    .execute();
}

/** Drops the second-factor tables. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('mfa_recovery_codes').execute();
  await db.schema.dropTable('mfa_totp').execute();
}
