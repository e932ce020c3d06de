import type { Kysely, Selectable } from 'kysely';
import { precompiledQuery } from '../../storage/precompiled-query.js';
import type { MfaTotpTable, Schema } from '../../storage/schema.js';

/** An account's stored TOTP authenticator (the secret still sealed). */
export interface TotpRecord {
  userId: string;
  /** The sealed shared secret (see `src/mfa/mfa-service.ts`). */
  sealedSecret: string;
  createdAt: number;
  /** Null while enrolment waits for its first code. */
  confirmedAt: number | null;
  /** RFC 6238 time step of the last accepted code. */
  lastStep: number | null;
}

/**
 * Persistence of second factors (migration 012). Every write that must not race is one
 * conditional statement (compare-and-set), so two requests with the same code cannot both win.
 */
export interface MfaStore {
  /** The account's TOTP row, confirmed or pending. */
  findTotp(userId: string): Promise<TotpRecord | undefined>;
  /**
   * Stores a pending (unconfirmed) secret, replacing an earlier pending one. False, and nothing
   * written, when the account already has a confirmed authenticator.
   */
  putPendingTotp(userId: string, sealedSecret: string, now: number): Promise<boolean>;
  /**
   * Marks the pending authenticator confirmed at `step`, if its secret is still `sealedSecret`
   * (the one the code was checked against); false when none is pending, or a new enrolment
   * replaced it meanwhile (confirming that one would switch on a secret no code was checked
   * against, which the user's app does not hold).
   */
  confirmTotp(userId: string, sealedSecret: string, step: number, now: number): Promise<boolean>;
  /**
   * Records `step` as used when it is later than the last one used (RFC 6238 §5.2: a code is
   * accepted once); false for a replay, or when no confirmed authenticator exists.
   */
  acceptTotpStep(userId: string, step: number): Promise<boolean>;
  /** Removes the account's authenticator and every recovery code; true when something was removed. */
  deleteFactors(userId: string): Promise<boolean>;
  /** Replaces every recovery code of the account with `hashes` (SHA-256, hex). */
  replaceRecoveryCodes(userId: string, hashes: readonly string[], now: number): Promise<void>;
  /** Spends one unused recovery code; false when it is unknown or already used. */
  useRecoveryCode(userId: string, hash: string, now: number): Promise<boolean>;
  /** Unused recovery codes of the account. */
  countRecoveryCodes(userId: string): Promise<number>;
  /** Up to `limit` stored secrets (sealed) of accounts after `afterUserId`, in id order: a page. */
  listSealedSecrets(afterUserId: string, limit: number): Promise<{ userId: string; sealedSecret: string }[]>;
  /**
   * Replaces the account's sealed secret with `next` if it is still `current` (compare-and-set:
   * of two instances re-sealing at start-up, one writes); true when it did.
   */
  replaceSealedSecret(userId: string, current: string, next: string): Promise<boolean>;
}

// Every password login asks whether the account has a second factor: compiled once (see precompiledQuery).
const selectTotp = precompiledQuery<Schema, { user_id: string }, Selectable<MfaTotpTable>>(
  ['user_id'],
  (db, { user_id }) => db.selectFrom('mfa_totp').selectAll().where('user_id', '=', user_id),
);

/** An {@link MfaStore} over Kysely (the pool or a transaction); the same code serves SQLite and PostgreSQL. */
export function createMfaStore(db: Kysely<Schema>): MfaStore {
  return {
    async findTotp(userId) {
      const [row] = (await selectTotp(db, { user_id: userId })).rows;
      if (row === undefined) return undefined;
      return {
        userId: row.user_id,
        sealedSecret: row.secret,
        createdAt: Number(row.created_at),
        confirmedAt: row.confirmed_at === null ? null : Number(row.confirmed_at),
        lastStep: row.last_step === null ? null : Number(row.last_step),
      };
    },

    async putPendingTotp(userId, sealedSecret, now) {
      // One statement: a concurrent confirmation either lands first (then this updates nothing)
      // or after, and then finds the secret it checked its code against replaced and confirms
      // nothing (confirmTotp compares the secret).
      const row = await db
        .insertInto('mfa_totp')
        .values({
          user_id: userId,
          secret: sealedSecret,
          created_at: now,
          confirmed_at: null,
          last_step: null,
        })
        .onConflict((oc) =>
          oc
            .column('user_id')
            .doUpdateSet({ secret: sealedSecret, created_at: now, last_step: null })
            .where('mfa_totp.confirmed_at', 'is', null),
        )
        .returning('user_id')
        .executeTakeFirst();
      return row !== undefined;
    },

    async confirmTotp(userId, sealedSecret, step, now) {
      const result = await db
        .updateTable('mfa_totp')
        .set({ confirmed_at: now, last_step: step })
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is', null)
        .where('secret', '=', sealedSecret)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async acceptTotpStep(userId, step) {
      const result = await db
        .updateTable('mfa_totp')
        .set({ last_step: step })
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is not', null)
        .where((eb) => eb.or([eb('last_step', 'is', null), eb('last_step', '<', step)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async deleteFactors(userId) {
      const codes = await db
        .deleteFrom('mfa_recovery_codes')
        .where('user_id', '=', userId)
        .executeTakeFirst();
      const totp = await db.deleteFrom('mfa_totp').where('user_id', '=', userId).executeTakeFirst();
      return Number(codes.numDeletedRows) + Number(totp.numDeletedRows) > 0;
    },

    async replaceRecoveryCodes(userId, hashes, now) {
      await db.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute();
      if (hashes.length === 0) return;
      await db
        .insertInto('mfa_recovery_codes')
        .values(hashes.map((hash) => ({ user_id: userId, code_hash: hash, created_at: now, used_at: null })))
        .execute();
    },

    async useRecoveryCode(userId, hash, now) {
      const result = await db
        .updateTable('mfa_recovery_codes')
        .set({ used_at: now })
        .where('user_id', '=', userId)
        .where('code_hash', '=', hash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async countRecoveryCodes(userId) {
      const row = await db
        .selectFrom('mfa_recovery_codes')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('user_id', '=', userId)
        .where('used_at', 'is', null)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async listSealedSecrets(afterUserId, limit) {
      const rows = await db
        .selectFrom('mfa_totp')
        .select(['user_id', 'secret'])
        .where('user_id', '>', afterUserId)
        .orderBy('user_id')
        .limit(limit)
        .execute();
      return rows.map((row) => ({ userId: row.user_id, sealedSecret: row.secret }));
    },
    async replaceSealedSecret(userId, current, next) {
      const result = await db
        .updateTable('mfa_totp')
        .set({ secret: next })
        .where('user_id', '=', userId)
        .where('secret', '=', current)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}
