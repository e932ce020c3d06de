import { type Kysely, sql } from 'kysely';

/**
 * `account_tokens.session_id`: the session that asked for an email change (red-team 2026-12d I1).
 *
 * A `change_email` link applies only while the session that asked for it is live (not revoked, not
 * expired), so every way an owner takes a compromised account back (a password reset or change,
 * "log out everywhere", ending that one session, an admin disabling the account, the first proof
 * of the address) also ends the change an intruder asked for. Before, the link outlived all of
 * them and moved the account to the intruder's address when followed.
 *
 * Null for the other purposes (a verification or reset link is asked without a session, or for
 * someone else). Pending `change_email` rows from before this migration name no session: they are
 * deleted, so none escapes the rule (each lives ≤ `EMAIL_VERIFICATION_TTL`; the owner asks again).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('account_tokens').addColumn('session_id', 'text').execute();
  await sql`DELETE FROM account_tokens WHERE purpose = 'change_email'`.execute(db);
}

/** Drops the column (pending email changes keep working, unbound, as before). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('account_tokens').dropColumn('session_id').execute();
}
