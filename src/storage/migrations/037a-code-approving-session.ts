import type { Kysely } from 'kysely';

/**
 * `oauth_codes.approved_by_session`: the browser session whose approval issued the code. The
 * exchange refuses a code whose approving session has ended since (a logout, "end this session"):
 * ending one session deletes no codes, so a thief looping silent `/authorize` visits with a stolen
 * cookie always held one the owner's logout left exchangeable for up to 60 s, and with it a new
 * 30-day session (red-team 2026-12t V2). No foreign key: sessions are revoked, not deleted, and the
 * exchange reads the session's state anyway.
 *
 * Existing rows (codes live 60 s) start at null, which the exchange does not check.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('oauth_codes').addColumn('approved_by_session', 'text').execute();
}

/** Drops the column: a code outlives the session that approved it again. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('oauth_codes').dropColumn('approved_by_session').execute();
}
