import type { Transaction } from 'kysely';
import type { Database } from '../storage/open-database.js';
import type { Schema } from '../storage/schema.js';
import { createSigningKeyStore, type SigningKeyRecord } from '../storage/signing-key-store.js';
import { SigningKeyError } from './signing-key-error.js';
import {
  type AsymmetricAlgorithm,
  createSigningKeySealer,
  generateSigningKey,
} from './signing-key-material.js';

/** What {@link revokeAllSigningKeysIn} needs. Times are epoch ms. */
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

/** Outcome of {@link revokeAllSigningKeysIn}. */
export interface RevokeAllSigningKeysOutcome {
  /** Every key revoked now, of every algorithm stored (sets no longer configured included). */
  revoked: KeyOfSet[];
  /** The fresh keys, current at once: one per set that signs. */
  replacements: KeyOfSet[];
}

/** Fresh keys made ahead of {@link revokeAllSigningKeysIn}'s transaction, by set. */
export type ReplacementKeyDrafts = ReadonlyMap<AsymmetricAlgorithm, SigningKeyRecord>;

/**
 * The fresh keys {@link revokeAllSigningKeysIn} will need, generated before its transaction (RSA
 * generation takes a while and should hold no lock), for each set known to need one now.
 */
export async function draftReplacementKeys(
  options: RevokeAllSigningKeysOptions,
): Promise<ReplacementKeyDrafts> {
  const drafts = new Map<AsymmetricAlgorithm, SigningKeyRecord>();
  const reader = createSigningKeyStore(options.database.db);
  for (const algorithm of options.algorithms) {
    if (needsKey(options, algorithm, await reader.listKeys(algorithm))) {
      drafts.set(algorithm, await draftKey(options, algorithm));
    }
  }
  return drafts;
}

/**
 * Revokes every stored signing key at once and makes a fresh key current in each set that signs,
 * in the caller's transaction `trx` (`gatehouse revoke-all`, after a backup was restored: the
 * backup brings back keys revoked since, and the keys a thief may have copied). The revoked keys
 * leave the JWKS and their tokens stop verifying on every instance within the key reload interval,
 * as with `rotate-keys --revoke`; verifiers that cached the JWKS refetch on the new kids.
 *
 * Unlike `--revoke=KID`, no old key needs to open: a backup whose keys were sealed under a
 * SECRET_KEY since replaced is the case this is for, and only the public rows are read.
 */
export async function revokeAllSigningKeysIn(
  trx: Transaction<Schema>,
  drafts: ReplacementKeyDrafts,
  options: RevokeAllSigningKeysOptions,
): Promise<RevokeAllSigningKeysOutcome> {
  const store = createSigningKeyStore(trx);
  const revoked = await store.revokeAllKeys(options.now);
  const replacements: KeyOfSet[] = [];
  for (const algorithm of options.algorithms) {
    const keys = await store.listKeys(algorithm);
    if (!needsKey(options, algorithm, keys)) continue;
    // A set another instance made since the drafts were made (its first use): rare, so generated here.
    const record = drafts.get(algorithm) ?? (await draftKey(options, algorithm));
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
}

/** The default set always gets a fresh key; another set only when it held keys (else made on first use). */
function needsKey(
  options: RevokeAllSigningKeysOptions,
  algorithm: AsymmetricAlgorithm,
  keys: readonly SigningKeyRecord[],
): boolean {
  return algorithm === options.algorithms[0] || keys.length > 0;
}

function draftKey(
  options: RevokeAllSigningKeysOptions,
  algorithm: AsymmetricAlgorithm,
): Promise<SigningKeyRecord> {
  const { now } = options;
  return generateSigningKey({
    algorithm,
    generation: 0,
    now,
    activatesAt: now,
    sealer: createSigningKeySealer(options.secret),
  });
}
