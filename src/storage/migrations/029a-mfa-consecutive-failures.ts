import type { Kysely } from 'kysely';

/**
 * `mfa_totp.consecutive_failures`: the account's run of wrong second-factor codes (TOTP or
 * recovery code) since its last accepted second factor. NIST SP 800-63B §5.2.2: "the verifier SHALL
 * limit consecutive failed authentication attempts on a single subscriber account to no more than
 * 100"; the windowed counters (`MFA_MAX_FAILURES_PER_ACCOUNT` per `LOGIN_FAILURE_WINDOW`) alone let
 * a thief of the password guess about 960 codes a day for ever. At `MFA_MAX_CONSECUTIVE_FAILURES`
 * untrusted clients and session step-ups are refused before any code is checked.
 *
 * On the authenticator's row rather than the account's: the codes it counts exist only with a
 * confirmed authenticator (recovery codes are issued with it and removed with it), so an account
 * without one has nothing to guess and needs no count; removing the factor (turning it off, an
 * administrator's reset, a first proof of the address) removes the count with it, in that
 * transaction; and the row is already the one a login reads (the TOTP look-up) and writes (the
 * accepted step), so a right code clears the count in the statement that spends it. `users` is read
 * and share-locked by every sign-in and refresh: a counter that anyone holding the password can
 * write does not belong on it. A database column, not the counter store: it must not expire, be
 * evicted, or be missed by another instance while Redis is down.
 *
 * `integer`: it counts wrong codes, which a trusted device may add past the cap only within its own
 * windowed lane (`LOGIN_MAX_FAILURES_PER_DEVICE` per window), far from 2³¹. Existing rows start at 0.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('mfa_totp')
    .addColumn('consecutive_failures', 'integer', (column) => column.notNull().defaultTo(0))
    .execute();
}

/** Drops the column: wrong codes are then limited by the windowed counters alone. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('mfa_totp').dropColumn('consecutive_failures').execute();
}
