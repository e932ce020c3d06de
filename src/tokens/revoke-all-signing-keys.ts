import type { Database } from '../storage/open-database.js';
import { createSigningKeyStore, type SigningKeyRecord } from '../storage/signing-key-store.js';
import { SigningKeyError } from './signing-key-error.js';
import {
  type AsymmetricAlgorithm,
  createSigningKeySealer,
  generateSigningKey,
} from './signing-key-material.js';

/** What {@link revokeAllSigningKeys} needs. Times are epoch ms. */
export interface RevokeAllSigningKeysOptions {
  database: Database;
  /**
   * The key sets the instances sign with, the default first: the access-token set when JWT_ALG is
   * asymmetric (else the ES256 ID-token set), then the other ID-token sets (`IdTokenKeys.algorithms`).
   * The first always gets a fresh key; the others only when they held keys (a set with none is
   * made on its first use, fresh anyway).
   */
  algorithms: readonly [AsymmetricAlgorithm, ...AsymmetricAlgorithm[]];
  /** SECRET_KEY, which seals the new private keys. */
  secret: Uint8Array;
  now: number;
}

/** A key, by its set. */
export interface KeyOfSet {
  algorithm: string;
  kid: string;
}

/** Outcome of {@link revokeAllSigningKeys}. */
export interface RevokeAllSigningKeysOutcome {
  /** Every key revoked now, of every algorithm stored (sets no longer configured included). */
  revoked: KeyOfSet[];
  /** The fresh keys, current at once: one per set that signs. */
  replacements: KeyOfSet[];
}

/**
 * Revokes every stored signing key at once and makes a fresh key current in each set that signs,
 * in one transaction (`gatehouse revoke-all`, after a backup was restored: the backup brings back
 * keys revoked since, and the keys a thief may have copied). The revoked keys leave the JWKS and
 * their tokens stop verifying on every instance within the key reload interval, as with
 * `rotate-keys --revoke`; verifiers that cached the JWKS refetch on the new kids.
 *
 * Unlike `--revoke=KID`, no old key needs to open: a backup whose keys were sealed under a
 * SECRET_KEY since replaced is the case this is for, and only the public rows are read.
 */
export async function revokeAllSigningKeys(
  options: RevokeAllSigningKeysOptions,
): Promise<RevokeAllSigningKeysOutcome> {
  const { algorithms, now, database } = options;
  const sealer = createSigningKeySealer(options.secret);
  const [defaultAlgorithm] = algorithms;
  const draft = (algorithm: AsymmetricAlgorithm) =>
    generateSigningKey({ algorithm, generation: 0, now, activatesAt: now, sealer });
  const needsKey = (algorithm: AsymmetricAlgorithm, keys: readonly SigningKeyRecord[]) =>
    algorithm === defaultAlgorithm || keys.length > 0;
  // Generated before the transaction where the set is known to need one: RSA generation holds no lock.
  const drafts = new Map<AsymmetricAlgorithm, SigningKeyRecord>();
  const reader = createSigningKeyStore(database.db);
  for (const algorithm of algorithms) {
    if (needsKey(algorithm, await reader.listKeys(algorithm))) drafts.set(algorithm, await draft(algorithm));
  }
  return database.transaction(async (trx) => {
    const store = createSigningKeyStore(trx);
    const revoked = await store.revokeAllKeys(now);
    const replacements: KeyOfSet[] = [];
    for (const algorithm of algorithms) {
      const keys = await store.listKeys(algorithm);
      if (!needsKey(algorithm, keys)) continue;
      // A set another instance made since the read above (its first use): rare, so generated here.
      const record = drafts.get(algorithm) ?? (await draft(algorithm));
      const generation = Math.max(0, ...keys.map((key) => key.generation)) + 1;
      if (!(await store.insertKey({ ...record, generation }))) {
        throw new SigningKeyError(
          'KEY_ROTATION_CONFLICT',
          'Another rotation ran at the same moment; nothing was revoked: run revoke-all again',
        );
      }
      replacements.push({ algorithm, kid: record.kid });
    }
    return { revoked, replacements };
  });
}
