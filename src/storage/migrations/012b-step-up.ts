import type { Kysely } from 'kysely';

/**
 * Step-up (issue 13): `sessions.auth_time` and `sessions.amr` record when and how (RFC 8176
 * methods, space-separated) the session's user last authenticated: set at login, moved by
 * `POST /auth/reauthenticate`; sensitive changes need a recent one (RFC 9470). Null on sessions
 * from before: read as the creation time and `pwd`.
 *
 * A migration of its own rather than an edit of `012-mfa`, which had already been merged: a
 * database that ran that one must still get these columns.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sessions').addColumn('auth_time', 'bigint').execute();
  await db.schema.alterTable('sessions').addColumn('amr', 'text').execute();
}

/** Drops the step-up columns. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('amr').execute();
  await db.schema.alterTable('sessions').dropColumn('auth_time').execute();
}
