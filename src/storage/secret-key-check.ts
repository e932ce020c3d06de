import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { ConfigError } from '../errors.js';
import type { Schema } from './schema.js';

/** What the fingerprint is an HMAC of: a fixed label, so it proves the secret and reveals none of it. */
const LABEL = 'gatehouse secret-key check v1';

/**
 * The fingerprint of a `SECRET_KEY`: HMAC-SHA-256 of a fixed label under it, base64url. Whoever
 * reads the database could test guesses of a weak secret against it, as they already can against
 * the keys and TOTP secrets sealed under it; a generated 256-bit secret leaves nothing to guess.
 */
export function secretKeyFingerprint(secret: Uint8Array): string {
  return createHmac('sha256', secret).update(LABEL).digest('base64url');
}

function same(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** How {@link checkSharedSecretKey} found the stored fingerprint. */
export type SecretKeyCheck = 'recorded' | 'matched' | 'rotated';

function mismatch(): ConfigError {
  return new ConfigError([
    'SECRET_KEY is not the secret the other instances on this database use (its fingerprint is in the ' +
      'table secret_key_check): set the same SECRET_KEY on every instance. To change it, keep the old one as ' +
      'SECRET_KEY_PREVIOUS; to replace it for good (it leaked), run `gatehouse revoke-all --new-secret` with the new one ' +
      '(every session ends). If SECRET_KEY is unset here, this instance generated a secret of its own in DATA_DIR',
  ]);
}

/**
 * The read-only half of {@link checkSharedSecretKey}, for the start of a core: throws its
 * {@link ConfigError} when a fingerprint is stored and is neither this secret's nor
 * `SECRET_KEY_PREVIOUS`'s, and writes nothing, so a core that then fails to start (its signing
 * keys do not open) leaves no fingerprint of a secret that was never proven right.
 */
export async function precheckSharedSecretKey(
  db: Kysely<Schema>,
  secret: Uint8Array,
  previousSecret: Uint8Array | undefined,
): Promise<void> {
  const row = await db
    .selectFrom('secret_key_check')
    .select('fingerprint')
    .where('id', '=', 1)
    .executeTakeFirst();
  if (row === undefined || same(row.fingerprint, secretKeyFingerprint(secret))) return;
  if (previousSecret !== undefined && same(row.fingerprint, secretKeyFingerprint(previousSecret))) return;
  throw mismatch();
}

/**
 * Compares this instance's `SECRET_KEY` with the one the other instances on the database use
 * (migration `036a`), in one transaction, once the core has shown the secret opens what is sealed
 * under it (its signing keys); {@link precheckSharedSecretKey} refuses a wrong one before that:
 * - no fingerprint yet (a new database, or one from before `036a`): this secret's is recorded;
 * - the same: nothing to do;
 * - `SECRET_KEY_PREVIOUS`'s: a rotation, so the stored one becomes this secret's (instances still
 *   on the old secret keep running; one restarted on it alone is refused, since it would refuse
 *   the tokens the rotated ones issue);
 * - anything else: a {@link ConfigError}, before anything is signed or sealed under the wrong
 *   secret. With different secrets, instances refuse each other's HS256 tokens, CSRF, device and
 *   mfa tokens, and cannot open each other's sealed keys and TOTP secrets (red-team 2026-12q Q2).
 */
export async function checkSharedSecretKey(
  db: Kysely<Schema>,
  secret: Uint8Array,
  previousSecret: Uint8Array | undefined,
  now: number,
): Promise<SecretKeyCheck> {
  const own = secretKeyFingerprint(secret);
  return db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('secret_key_check')
      .values({ id: 1, fingerprint: own, updated_at: now })
      .onConflict((conflict) => conflict.column('id').doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return 'recorded';
    const row = await trx
      .selectFrom('secret_key_check')
      .select('fingerprint')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    if (same(row.fingerprint, own)) return 'matched';
    if (previousSecret !== undefined && same(row.fingerprint, secretKeyFingerprint(previousSecret))) {
      await trx
        .updateTable('secret_key_check')
        .set({ fingerprint: own, updated_at: now })
        .where('id', '=', 1)
        .where('fingerprint', '=', row.fingerprint)
        .execute();
      return 'rotated';
    }
    throw mismatch();
  });
}

/**
 * Makes `secret` the one the instances must use, whatever was stored: for `gatehouse revoke-all`,
 * in its transaction, which ends every credential sealed or signed under the old one.
 */
export async function adoptSecretKey(trx: Kysely<Schema>, secret: Uint8Array, now: number): Promise<void> {
  const fingerprint = secretKeyFingerprint(secret);
  await trx
    .insertInto('secret_key_check')
    .values({ id: 1, fingerprint, updated_at: now })
    .onConflict((conflict) => conflict.column('id').doUpdateSet({ fingerprint, updated_at: now }))
    .execute();
}
