import { type Kysely, sql } from 'kysely';
import { deleteInBatches, type SweepBatchOptions } from './batched-sweep.js';
import type { Schema } from './schema.js';
import type { RevokedSessionRow } from './session-store.js';

/** A revoked `client_credentials` access token, by its `jti`. */
export interface ClientTokenRevocation {
  jti: string;
  clientId: string;
  revokedAt: number;
  /** The token's own expiry (epoch ms): the row is useless after it. */
  expiresAt: number;
}

/**
 * The id a revoked client token has in the in-memory revocation list, beside session ids (UUIDs):
 * a prefix no session id can carry, so the two never collide.
 */
export function clientTokenRevocationId(jti: string): string {
  return `client-token:${jti}`;
}

/** Revoked `client_credentials` tokens, in `client_token_revocations` (migration `020a`). */
export interface ClientTokenRevocationStore {
  /** Records a revocation; false when the token was revoked already (idempotent, atomic). */
  insertRevocation(revocation: ClientTokenRevocation): Promise<boolean>;
  /**
   * Revocations made after `since` of tokens still unexpired at `now`, shaped as the revocation
   * list reads revoked sessions (ids from {@link clientTokenRevocationId}).
   */
  listRevokedSince(since: number, now: number): Promise<RevokedSessionRow[]>;
  /** Deletes rows of tokens that expired before `before`, a batch at a time; returns how many. */
  deleteExpiredRevocations(before: number, options?: SweepBatchOptions): Promise<number>;
}

/** Creates the {@link ClientTokenRevocationStore} (pool or transaction). */
export function createClientTokenRevocationStore(db: Kysely<Schema>): ClientTokenRevocationStore {
  return {
    async insertRevocation(revocation) {
      const row = await db
        .insertInto('client_token_revocations')
        .values({
          jti: revocation.jti,
          client_id: revocation.clientId,
          revoked_at: revocation.revokedAt,
          expires_at: revocation.expiresAt,
        })
        .onConflict((oc) => oc.column('jti').doNothing())
        .returning('jti')
        .executeTakeFirst();
      return row !== undefined;
    },
    async listRevokedSince(since, now) {
      const rows = await db
        .selectFrom('client_token_revocations')
        .select(['jti', 'revoked_at', 'expires_at'])
        .where('revoked_at', '>', since)
        .where('expires_at', '>', now)
        .execute();
      return rows.map((row) => ({
        id: clientTokenRevocationId(row.jti),
        revokedAt: Number(row.revoked_at),
        expiresAt: Number(row.expires_at),
      }));
    },
    deleteExpiredRevocations: (before, options) =>
      deleteInBatches(db, 'client_token_revocations', ['jti'], sql`expires_at < ${before}`, options),
  };
}
