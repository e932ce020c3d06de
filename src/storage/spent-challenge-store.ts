import { type Kysely, sql } from 'kysely';
import { deleteInBatches, type SweepBatchOptions } from './batched-sweep.js';
import type { Schema } from './schema.js';

/** What a single-use challenge is for: each purpose has its own nonces. */
export type ChallengePurpose = 'mfa' | 'passkey';

/**
 * Single use of stateless sealed challenges (`mfa_token`, `passkey_token`), in `spent_challenges`
 * (migration `019a`): unlike the counter store, nothing evicts a marker before its token expires.
 */
export interface SpentChallengeStore {
  /**
   * Marks `nonce` spent until `expiresAt` (epoch ms): true for the first claim, false when it was
   * spent already (atomic: of two racing claims exactly one wins).
   */
  claimChallenge(purpose: ChallengePurpose, nonce: string, expiresAt: number): Promise<boolean>;
  /** True when `nonce` was claimed (a cheap refusal before any other work). */
  isChallengeSpent(purpose: ChallengePurpose, nonce: string): Promise<boolean>;
  /** Deletes markers that expired before `before`, a batch at a time; returns how many. */
  deleteExpiredChallenges(before: number, options?: SweepBatchOptions): Promise<number>;
}

/** Creates the {@link SpentChallengeStore} over `spent_challenges` (pool or transaction). */
export function createSpentChallengeStore(db: Kysely<Schema>): SpentChallengeStore {
  const key = (purpose: ChallengePurpose, nonce: string) => `${purpose}:${nonce}`;
  return {
    async claimChallenge(purpose, nonce, expiresAt) {
      const row = await db
        .insertInto('spent_challenges')
        .values({ nonce: key(purpose, nonce), expires_at: expiresAt })
        .onConflict((oc) => oc.column('nonce').doNothing())
        .returning('nonce')
        .executeTakeFirst();
      return row !== undefined;
    },
    async isChallengeSpent(purpose, nonce) {
      const row = await db
        .selectFrom('spent_challenges')
        .select('nonce')
        .where('nonce', '=', key(purpose, nonce))
        .executeTakeFirst();
      return row !== undefined;
    },
    deleteExpiredChallenges: (before, options) =>
      deleteInBatches(db, 'spent_challenges', ['nonce'], sql`expires_at < ${before}`, options),
  };
}
