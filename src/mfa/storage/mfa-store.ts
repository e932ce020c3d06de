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
  /** Wrong codes since the account's last accepted second factor (migration `029a`). */
  consecutiveFailures: number;
}

/** Outcome of {@link MfaStore.chargeConsecutiveFailure}. */
export type ConsecutiveFailureCharge =
  /** Charged: `count` is the account's run of wrong codes, this try included. */
  | { charged: true; count: number }
  /**
   * Nothing charged: `locked` when the run is already at the cap, else the account has no
   * confirmed authenticator (no code of it can be right, so there is nothing to count).
   */
  | { charged: false; locked: boolean };

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
   * accepted once), and ends the account's run of wrong codes in the same statement, only while
   * the run is below `cap` when one is given; false for a replay, a run at the cap, or when no
   * confirmed authenticator exists.
   */
  acceptTotpStep(userId: string, step: number, cap?: number): Promise<boolean>;
  /**
   * Adds a wrong code to the account's run, only while the run is below `cap` when one is given
   * (no cap: a trusted device, counted but never refused). One conditional `UPDATE … RETURNING`:
   * concurrent wrong codes queue on the row's lock, so no more than `cap` of them are counted,
   * and each one learns its own count.
   */
  chargeConsecutiveFailure(userId: string, cap: number | undefined): Promise<ConsecutiveFailureCharge>;
  /**
   * Ends the account's run of wrong codes (a passkey's sign-in, a password change); writes, and so
   * locks the row, only when there is a run to end.
   */
  clearConsecutiveFailures(userId: string): Promise<void>;
  /**
   * Ends the account's run of wrong codes before a recovery code is used (at any count: recovery
   * codes are checked at the cap too; rolled back with the transaction when the code turns out
   * wrong or used). Always writes, and so locks, the authenticator's row, run or not: the
   * second-factor lock order (ARCHITECTURE.md), the authenticator's row before the recovery codes.
   */
  endRunBeforeRecoveryCode(userId: string): Promise<void>;
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
  /** True when the account's confirmed authenticator has a run of wrong codes at `cap` or more. */
  const runAtCap = async (userId: string, cap: number) => {
    const row = await db
      .selectFrom('mfa_totp')
      .select('consecutive_failures')
      .where('user_id', '=', userId)
      .where('confirmed_at', 'is not', null)
      .executeTakeFirst();
    return row !== undefined && Number(row.consecutive_failures) >= cap;
  };
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
        consecutiveFailures: Number(row.consecutive_failures),
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

    async acceptTotpStep(userId, step, cap) {
      let accept = db
        .updateTable('mfa_totp')
        .set({ last_step: step, consecutive_failures: 0 })
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is not', null)
        .where((eb) => eb.or([eb('last_step', 'is', null), eb('last_step', '<', step)]));
      if (cap !== undefined) accept = accept.where('consecutive_failures', '<', cap);
      const result = await accept.executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async chargeConsecutiveFailure(userId, cap) {
      let charge = db
        .updateTable('mfa_totp')
        .set((eb) => ({ consecutive_failures: eb('consecutive_failures', '+', 1) }))
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is not', null);
      if (cap !== undefined) charge = charge.where('consecutive_failures', '<', cap);
      const row = await charge.returning('consecutive_failures').executeTakeFirst();
      if (row !== undefined) return { charged: true, count: Number(row.consecutive_failures) };
      // Nothing charged: at the cap, or no confirmed authenticator. Read only on this rare path.
      return { charged: false, locked: cap !== undefined && (await runAtCap(userId, cap)) };
    },

    async clearConsecutiveFailures(userId) {
      // `> 0`: the common case (no run) writes nothing and takes no lock.
      await db
        .updateTable('mfa_totp')
        .set({ consecutive_failures: 0 })
        .where('user_id', '=', userId)
        .where('consecutive_failures', '>', 0)
        .execute();
    },

    async endRunBeforeRecoveryCode(userId) {
      // The row is written, and so locked, even with no run to end, so the code's spending takes
      // the authenticator's row before the codes in every case (the lock order, ARCHITECTURE.md;
      // without it a code-paid disable, which deletes this row after using the code, deadlocked on
      // PostgreSQL with a TOTP-paid change of the codes).
      await db
        .updateTable('mfa_totp')
        .set({ consecutive_failures: 0 })
        .where('user_id', '=', userId)
        .execute();
    },

    async deleteFactors(userId) {
      // The authenticator's row first, as every second-factor transaction takes it (ARCHITECTURE.md,
      // lock order): the other order could deadlock with a code's spending on PostgreSQL.
      const totp = await db.deleteFrom('mfa_totp').where('user_id', '=', userId).executeTakeFirst();
      const codes = await db
        .deleteFrom('mfa_recovery_codes')
        .where('user_id', '=', userId)
        .executeTakeFirst();
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
