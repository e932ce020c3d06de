import type { Kysely } from 'kysely';

/**
 * `users.credentials_version`: a counter moved in the transaction of everything that ends all of
 * an account's sessions (a password reset or change, "log out everywhere", an administrator's
 * disable, role change or second-factor reset, the first proof of the address), red-team 2026-12d
 * I3. A sign-in reads it with the account before checking the password (or carries it in its
 * `mfa_token`) and reads it again inside the transaction that writes its session: if it moved in
 * between, the sign-in was decided on credentials that no longer hold, and it writes nothing.
 *
 * `bigint`, like the timestamps: one increment per such change, so it cannot run out. Existing rows
 * start at 0, so sign-ins in flight during the upgrade compare 0 with 0, as they should.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('users')
    .addColumn('credentials_version', 'bigint', (column) => column.notNull().defaultTo(0))
    .execute();
}

/** Drops the column (sign-ins no longer notice a reset that commits while they run). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('users').dropColumn('credentials_version').execute();
}
