import { type Kysely, type Selectable, sql } from 'kysely';
import { deleteInBatches, type SweepBatchOptions } from './batched-sweep.js';
import type { AccountTokensTable, Schema } from './schema.js';

/** What a mailed link is for; a token is good for its own purpose only. */
export type AccountTokenPurpose = 'verify_email' | 'reset_password' | 'change_email';

/** A stored link token (only its hash is stored). */
export interface AccountTokenRecord {
  tokenHash: string;
  userId: string;
  purpose: AccountTokenPurpose;
  /** Normalized key of the address the link was mailed to. */
  emailKey: string;
  /** That address as typed (the new address, for `change_email`). */
  email: string;
  createdAt: number;
  expiresAt: number;
  /**
   * The session that asked for it (`change_email`: the link applies only while that session is
   * live, red-team 2026-12d I1); null for the other purposes.
   */
  sessionId: string | null;
}

/** Persistence of mailed link tokens (`account_tokens`, migration 010). */
export interface AccountTokenStore {
  /**
   * Stores `token` and keeps at most `keep` live links of its account and purpose, the newest:
   * the older ones beyond that, and expired ones, are deleted first (`keep` 1 replaces the
   * previous link). A reset link no longer dies because someone else asked for another. An
   * email change is always one per account: a racing second one takes the first's place.
   */
  storeToken(token: AccountTokenRecord, keep: number): Promise<void>;
  /** The unexpired token with this hash and purpose, without using it up. */
  findToken(
    tokenHash: string,
    purpose: AccountTokenPurpose,
    now: number,
  ): Promise<AccountTokenRecord | undefined>;
  /**
   * Deletes and returns the unexpired token with this hash and purpose: one statement, so of two
   * concurrent uses exactly one gets it (single use).
   */
  consumeToken(
    tokenHash: string,
    purpose: AccountTokenPurpose,
    now: number,
  ): Promise<AccountTokenRecord | undefined>;
  /** Deletes the account's tokens (of one purpose, or all). */
  deleteUserTokens(userId: string, purpose?: AccountTokenPurpose): Promise<void>;
  /** Deletes expired tokens (the hourly sweep), a batch at a time; returns how many. */
  deleteExpired(now: number, options?: SweepBatchOptions): Promise<number>;
}

function toRecord(row: Selectable<AccountTokensTable>): AccountTokenRecord {
  return {
    tokenHash: row.token_hash,
    userId: row.user_id,
    purpose: row.purpose as AccountTokenPurpose,
    emailKey: row.email_key,
    email: row.email,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    sessionId: row.session_id ?? null,
  };
}

/** An {@link AccountTokenStore} over Kysely (the pool or a transaction). */
export function createAccountTokenStore(db: Kysely<Schema>): AccountTokenStore {
  return {
    async storeToken(token, keep) {
      // Delete, then insert: with `keep` 1 the insert never meets a same-millisecond twin that a
      // "newest first" cut could rank above it.
      await db
        .deleteFrom('account_tokens')
        .where('user_id', '=', token.userId)
        .where('purpose', '=', token.purpose)
        .where((eb) =>
          eb.or([
            eb('expires_at', '<=', token.createdAt),
            eb(
              'token_hash',
              'not in',
              eb
                .selectFrom('account_tokens')
                .select('token_hash')
                .where('user_id', '=', token.userId)
                .where('purpose', '=', token.purpose)
                .orderBy('created_at', 'desc')
                .orderBy('token_hash', 'desc')
                .limit(Math.max(0, keep - 1)),
            ),
          ]),
        )
        .execute();
      const row = {
        token_hash: token.tokenHash,
        user_id: token.userId,
        purpose: token.purpose,
        email_key: token.emailKey,
        email: token.email,
        created_at: token.createdAt,
        expires_at: token.expiresAt,
        session_id: token.sessionId,
      };
      const insert = db.insertInto('account_tokens').values(row);
      // One email change per account (a partial unique index, migration 026a). Two requests
      // racing past the delete both insert; the later takes the earlier's place instead of
      // failing (23505, a 500), so the newest request is the one that applies.
      await (token.purpose === 'change_email'
        ? insert.onConflict((conflict) =>
            // The index's own predicate, as a literal: SQLite matches a partial index's
            // conflict target only against the same expression, never a bound parameter.
            conflict.column('user_id').where(sql<boolean>`purpose = 'change_email'`).doUpdateSet(row),
          )
        : insert
      ).execute();
    },
    async findToken(tokenHash, purpose, now) {
      const row = await db
        .selectFrom('account_tokens')
        .selectAll()
        .where('token_hash', '=', tokenHash)
        .where('purpose', '=', purpose)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return row && toRecord(row);
    },
    async consumeToken(tokenHash, purpose, now) {
      const row = await db
        .deleteFrom('account_tokens')
        .where('token_hash', '=', tokenHash)
        .where('purpose', '=', purpose)
        .where('expires_at', '>', now)
        .returningAll()
        .executeTakeFirst();
      return row && toRecord(row);
    },
    async deleteUserTokens(userId, purpose) {
      let query = db.deleteFrom('account_tokens').where('user_id', '=', userId);
      if (purpose !== undefined) query = query.where('purpose', '=', purpose);
      await query.execute();
    },
    deleteExpired: (now, options) =>
      deleteInBatches(db, 'account_tokens', ['token_hash'], sql`expires_at <= ${now}`, options),
  };
}
