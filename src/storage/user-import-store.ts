import type { Kysely } from 'kysely';
import type { Schema } from './schema.js';
import type { NewUser } from './user-store.js';

/** Writes of `gatehouse import-users`, run inside the import's transaction. */
export interface UserImportStore {
  /**
   * Inserts a batch of accounts in one statement; an email key that exists (from before, or from
   * an earlier batch of this import) is skipped by the unique index, never overwritten. Returns
   * the email keys actually inserted.
   */
  insertUsers(users: readonly NewUser[]): Promise<Set<string>>;
  /** When each of these email keys' accounts was created (for telling why a row was a duplicate). */
  createdAtOf(emailKeys: readonly string[]): Promise<Map<string, number>>;
}

/** A {@link UserImportStore} over Kysely (a transaction's handle); SQLite and PostgreSQL alike. */
export function createUserImportStore(db: Kysely<Schema>): UserImportStore {
  return {
    async insertUsers(users) {
      if (users.length === 0) return new Set();
      const rows = await db
        .insertInto('users')
        .values(
          users.map((user) => ({
            id: user.id,
            email: user.email,
            email_key: user.emailKey,
            full_name: user.fullName,
            password_hash: user.passwordHash,
            role: user.role,
            is_active: user.isActive ? 1 : 0,
            created_at: user.createdAt,
            updated_at: user.updatedAt,
          })),
        )
        .onConflict((conflict) => conflict.column('email_key').doNothing())
        .returning('email_key')
        .execute();
      return new Set(rows.map((row) => row.email_key));
    },
    async createdAtOf(emailKeys) {
      if (emailKeys.length === 0) return new Map();
      const rows = await db
        .selectFrom('users')
        .select(['email_key', 'created_at'])
        .where('email_key', 'in', [...emailKeys])
        .execute();
      return new Map(rows.map((row) => [row.email_key, Number(row.created_at)]));
    },
  };
}
