import type { Database } from '../storage/open-database.js';
import { createSigningKeyStore, type SigningKeyStore } from '../storage/signing-key-store.js';
import { KEY_PUBLICATION_DELAY_SECONDS } from './keyring.js';
import { SigningKeyError } from './signing-key-error.js';
import {
  type AsymmetricAlgorithm,
  createSigningKeySealer,
  generateSigningKey,
} from './signing-key-material.js';
import { currentKid, signingKeyStates } from './signing-key-set.js';

/** What `gatehouse rotate-keys` needs. Times are epoch ms. */
export interface RotationOptions {
  database: Database;
  algorithm: AsymmetricAlgorithm;
  /** SECRET_KEY, which seals the new private key. */
  secret: Uint8Array;
  now: number;
  /** Seconds a retired key stays published (see `retiredKeyRetentionSeconds`). */
  retentionSeconds: number;
  /** Seconds the new key is published before it signs. @default KEY_PUBLICATION_DELAY_SECONDS */
  publicationDelaySeconds?: number;
}

/** Outcome of {@link rotateSigningKeys}. */
export interface Rotation {
  /** The new *next* key. */
  kid: string;
  /** When it starts signing, on every instance (epoch ms). */
  activatesAt: number;
  /** Expired and revoked keys purged by this rotation. */
  removed: string[];
}

/**
 * Adds a *next* key: published in the JWKS as soon as the instances re-read the key set, signing
 * from `now + publicationDelaySeconds` on every instance with no restart, while the current key
 * retires then. Keys whose last token has expired (and revoked keys past the retention) are
 * purged in the same transaction, which bounds the table.
 *
 * Throws `KEY_ROTATION_PENDING` while a next key is still waiting (stacking two would retire the
 * first before verifiers had it for long), and `KEY_ROTATION_CONFLICT` when a concurrent rotation
 * took the same generation first: `(alg, generation)` is unique, so two `rotate-keys` at once can
 * never make two current keys.
 */
export async function rotateSigningKeys(options: RotationOptions): Promise<Rotation> {
  const { algorithm, now } = options;
  const sealer = createSigningKeySealer(options.secret);
  const activatesAt = now + (options.publicationDelaySeconds ?? KEY_PUBLICATION_DELAY_SECONDS) * 1000;
  // Generated before the transaction: key generation (RSA especially) holds no lock.
  const draft = await generateSigningKey({ algorithm, generation: 0, now, activatesAt, sealer });
  return options.database.transaction(async (trx) => {
    const store = createSigningKeyStore(trx);
    const keys = await store.listKeys(algorithm);
    const pending = keys.find((key) => key.revokedAt === null && key.activatesAt > now);
    if (pending !== undefined) {
      throw new SigningKeyError(
        'KEY_ROTATION_PENDING',
        `Key ${pending.kid} is already waiting to sign from ${new Date(pending.activatesAt).toISOString()}; ` +
          'rotate again after that',
      );
    }
    const removed = await purge(store, algorithm, now, options.retentionSeconds * 1000);
    const generation = Math.max(0, ...keys.map((key) => key.generation)) + 1;
    if (!(await store.insertKey({ ...draft, generation }))) {
      throw new SigningKeyError(
        'KEY_ROTATION_CONFLICT',
        'Another rotation added a key at the same moment; run rotate-keys again if you still need one',
      );
    }
    return { kid: draft.kid, activatesAt, removed };
  });
}

/** Outcome of {@link revokeSigningKey}. */
export interface Revocation {
  revoked: string;
  /** The key that signs from now on when the revoked one was signing. */
  replacement: string | undefined;
}

/**
 * Withdraws a key at once (`rotate-keys --revoke=KID`, for a compromised key): it leaves the JWKS
 * and its tokens stop verifying on every instance within the reload interval. When it was the
 * signing key, a waiting next key signs from now, or else a new key is made current at once
 * (verifiers that cached the JWKS refetch on the unknown kid; the revoked key's tokens fail
 * anyway).
 */
export async function revokeSigningKey(
  options: Omit<RotationOptions, 'publicationDelaySeconds'> & { kid: string },
): Promise<Revocation> {
  const { algorithm, now, kid } = options;
  const sealer = createSigningKeySealer(options.secret);
  const draft = await generateSigningKey({ algorithm, generation: 0, now, activatesAt: now, sealer });
  return options.database.transaction(async (trx) => {
    const store = createSigningKeyStore(trx);
    const keys = await store.listKeys(algorithm);
    const target = keys.find((key) => key.kid === kid);
    if (target === undefined) {
      throw new SigningKeyError('SIGNING_KEY_UNKNOWN', `No ${algorithm} key ${kid} is stored`);
    }
    const wasCurrent = currentKid(keys, now) === kid;
    await store.revokeKey(kid, now);
    if (!wasCurrent) return { revoked: kid, replacement: undefined };
    const waiting = keys
      .filter((key) => key.revokedAt === null && key.activatesAt > now)
      .sort((a, b) => b.generation - a.generation)[0];
    if (waiting !== undefined) {
      await store.activateKey(waiting.kid, now);
      return { revoked: kid, replacement: waiting.kid };
    }
    const generation = Math.max(0, ...keys.map((key) => key.generation)) + 1;
    if (!(await store.insertKey({ ...draft, generation }))) {
      throw new SigningKeyError(
        'KEY_ROTATION_CONFLICT',
        'Another rotation ran at the same moment; try again',
      );
    }
    return { revoked: kid, replacement: draft.kid };
  });
}

/** Deletes keys whose tokens have all expired, and revoked keys older than the retention. */
async function purge(
  store: SigningKeyStore,
  algorithm: string,
  now: number,
  retentionMs: number,
): Promise<string[]> {
  const keys = await store.listKeys(algorithm);
  const states = signingKeyStates(keys, now, retentionMs);
  const gone = keys
    .filter((key) => {
      const state = states.get(key.kid)?.state;
      return state === 'expired' || (key.revokedAt !== null && key.revokedAt + retentionMs <= now);
    })
    .map((key) => key.kid);
  await store.deleteKeys(gone);
  return gone;
}
