import { type Kysely, sql } from 'kysely';
import { isPostgres } from './dialect.js';

/**
 * Several live reset and verification links per account (`account_tokens`).
 *
 * Migration `010` made `(user_id, purpose)` unique, so each new link replaced the previous one.
 * Anyone who knows an address can ask for a reset link, so a stranger's request killed the link
 * the owner had just been mailed (and a slow first mail, followed after a second request, answered
 * "invalid link"). The account store now keeps the newest links of a purpose, as many as the mail
 * budget can send in the link's life (`storeToken`'s `keep`), and a used reset link still ends
 * them all. An email change keeps one live link: the newest request is the only one that applies,
 * which a partial unique index enforces (`storeToken` upserts on it, so of two racing requests
 * the later one applies).
 *
 * SQLite cannot drop a table constraint, so it rebuilds the table (the documented
 * create-copy-drop-rename procedure; the migrator runs it in one transaction, see
 * `sqlite-busy-wait.ts`, so a crash between the drop and the rename loses nothing).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (isPostgres(db)) {
    await sql`ALTER TABLE account_tokens DROP CONSTRAINT account_tokens_user_purpose_unique`.execute(db);
    await createIndexes(db);
    return;
  }
  await sql`CREATE TABLE account_tokens_next (
    token_hash text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose text NOT NULL,
    email_key text NOT NULL,
    email text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    session_id text
  )`.execute(db);
  await sql`INSERT INTO account_tokens_next
    (token_hash, user_id, purpose, email_key, email, created_at, expires_at, session_id)
    SELECT token_hash, user_id, purpose, email_key, email, created_at, expires_at, session_id
    FROM account_tokens`.execute(db);
  await sql`DROP TABLE account_tokens`.execute(db);
  await sql`ALTER TABLE account_tokens_next RENAME TO account_tokens`.execute(db);
  await sql`CREATE INDEX account_tokens_expiry_idx ON account_tokens (expires_at)`.execute(db);
  await createIndexes(db);
}

/** The per-account look-up of `storeToken`, and one live email change per account. */
async function createIndexes(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX account_tokens_user_purpose_idx
    ON account_tokens (user_id, purpose, created_at)`.execute(db);
  await sql`CREATE UNIQUE INDEX account_tokens_one_email_change
    ON account_tokens (user_id) WHERE purpose = 'change_email'`.execute(db);
}

/** One link per account and purpose again: only the newest of each is kept. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM account_tokens WHERE token_hash NOT IN (
    SELECT token_hash FROM (
      SELECT token_hash, row_number() OVER (
        PARTITION BY user_id, purpose ORDER BY created_at DESC, token_hash DESC
      ) AS rank FROM account_tokens
    ) AS ranked WHERE rank = 1
  )`.execute(db);
  await sql`DROP INDEX account_tokens_one_email_change`.execute(db);
  await sql`DROP INDEX account_tokens_user_purpose_idx`.execute(db);
  // PostgreSQL: the constraint `010` made, which `up` drops by name. SQLite: `up` rebuilds the
  // table, so an index does.
  if (isPostgres(db)) {
    await sql`ALTER TABLE account_tokens
      ADD CONSTRAINT account_tokens_user_purpose_unique UNIQUE (user_id, purpose)`.execute(db);
  } else {
    await sql`CREATE UNIQUE INDEX account_tokens_user_purpose_unique
      ON account_tokens (user_id, purpose)`.execute(db);
  }
}
