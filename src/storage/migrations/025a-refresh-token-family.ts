import type { Kysely } from 'kysely';

/**
 * `refresh_tokens.tagged`: 1 for a token that names its session under a MAC (the family layout,
 * `tokens/refresh-token.ts`), 0 for one of the earlier, random-only layout. A rotation deletes its
 * session's older spent tokens only where they are tagged: a tagged token coming back after its row
 * went is still recognised by its tag and ends its session (RFC 9700 §4.14.2), an untagged one
 * would be merely unknown, so those rows stay until they expire (`REFRESH_TOKEN_IDLE_TTL`), as
 * before. Every row that exists when this runs is of the earlier layout.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('refresh_tokens')
    .addColumn('tagged', 'integer', (column) => column.notNull().defaultTo(0))
    .execute();
}

/**
 * Drops the column. A build from before it must then run: it never prunes (a build that pruned
 * every spent row, untagged ones included, existed only between two commits of 2026-12-04).
 */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('refresh_tokens').dropColumn('tagged').execute();
}
