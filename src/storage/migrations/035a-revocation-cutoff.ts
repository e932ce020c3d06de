import { type Kysely, sql } from 'kysely';

/**
 * `revocation_cutoff`: one row, `not_before` (epoch ms), below which no access token's `iat` is
 * accepted, whatever key signed it. `gatehouse revoke-all` raises it in the transaction that
 * revokes the keys and the sessions. Revoking keys cannot reach tokens signed with `SECRET_KEY`
 * (HS256), which no backup holds: after a restore, access tokens of sessions opened after the
 * backup and `client_credentials` tokens verified until they expired (red-team 2026-12n, left open
 * from R1). Empty until the first `revoke-all`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('revocation_cutoff')
    // Always 1: the table holds one row, and the key makes a second one impossible.
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('not_before', 'bigint', (c) => c.notNull())
    .execute();
}

/** Drops the table: tokens issued before the last `revoke-all` verify again until they expire. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('revocation_cutoff').execute();
}
