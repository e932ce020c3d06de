import { type Kysely, sql } from 'kysely';

/**
 * `sessions.client_id`: the client a session was started for (RFC 9068 `client_id` of its tokens:
 * a registered OAuth client's id for the authorization code flow, `gatehouse` or a first-party label
 * for the password grant, `gatehouse` for cookie sessions). The per-account session cap
 * (`MAX_SESSIONS_PER_ACCOUNT`) displaces sessions of the client holding the most, so one app that
 * mints sessions cannot push the person's other sessions out (red-team 2026-12f, K2's loop).
 *
 * Existing bearer sessions take the client of their refresh tokens (every token of a session has
 * the session's client); the rest (cookie sessions, tokens from before migration 009, sessions
 * whose refresh tokens were swept) count as first-party.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('sessions')
    .addColumn('client_id', 'text', (column) => column.notNull().defaultTo('gatehouse'))
    .execute();
  await sql`update sessions set client_id = coalesce((select max(refresh_tokens.client_id)
    from refresh_tokens where refresh_tokens.session_id = sessions.id), 'gatehouse')`.execute(db);
}

/** Drops the column (the session cap then cannot tell clients apart). */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sessions').dropColumn('client_id').execute();
}
