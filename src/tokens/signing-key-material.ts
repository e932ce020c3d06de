import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { JwtAlgorithm } from '../config/config.js';
import type { SigningKeyRecord } from '../storage/signing-key-store.js';
import { createSealer, type TokenSealer } from './token-sealer.js';

/** The asymmetric algorithms, whose keys live in the database. */
export type AsymmetricAlgorithm = Exclude<JwtAlgorithm, 'HS256'>;

/** File name of the key set that Gatehouse kept in `DATA_DIR` before keys moved to the database. */
export const KEY_FILE = 'signing-keys.json';

// HKDF label (RFC 5869 §3.2) of the key that seals private signing keys at rest: derived from
// SECRET_KEY, but never the key of any other use of it.
const SIGNING_KEY_SEAL_PURPOSE = 'gatehouse signing-key seal v1';

/** The sealer for stored private keys under `secret` (AES-256-GCM, HKDF-derived key). */
export function createSigningKeySealer(secret: Uint8Array): TokenSealer {
  return createSealer(secret, SIGNING_KEY_SEAL_PURPOSE);
}

/**
 * The additional authenticated data a private key is sealed with: a sealed key copied to another
 * row (another kid or algorithm) does not open there.
 */
export function sealContext(algorithm: string, kid: string): string {
  return `${algorithm}:${kid}`;
}

/** The public members of a private JWK: RSA's CRT members (RFC 7518 §6.3.2) go too. */
export function publicJwkOf(privateJwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, ...publicJwk } = privateJwk;
  return publicJwk;
}

/** A new key pair for `algorithm`, as a record ready to store (private key sealed). */
export async function generateSigningKey(options: {
  algorithm: AsymmetricAlgorithm;
  generation: number;
  now: number;
  activatesAt: number;
  sealer: TokenSealer;
}): Promise<SigningKeyRecord> {
  const { algorithm } = options;
  const { privateKey } = await generateKeyPair(algorithm, {
    extractable: true,
    crv: algorithm === 'EdDSA' ? 'Ed25519' : undefined,
    // RFC 7518 §3.3 asks 2048 bits at least; NIST SP 800-57 rates 2048 fine until 2030.
    modulusLength: algorithm === 'RS256' ? 2048 : undefined,
  });
  return recordOf({
    algorithm,
    privateJwk: await exportJWK(privateKey),
    generation: options.generation,
    createdAt: options.now,
    activatesAt: options.activatesAt,
    sealer: options.sealer,
  });
}

async function recordOf(options: {
  algorithm: AsymmetricAlgorithm;
  privateJwk: JWK;
  generation: number;
  createdAt: number;
  activatesAt: number;
  sealer: TokenSealer;
  kid?: string;
}): Promise<SigningKeyRecord> {
  const publicJwk = publicJwkOf(options.privateJwk);
  // RFC 7638 thumbprint of the public key: covers RSA's `n`/`e` as well as the curves' `x`/`y`.
  const kid = options.kid ?? (await calculateJwkThumbprint(publicJwk)).slice(0, 16);
  return {
    kid,
    algorithm: options.algorithm,
    generation: options.generation,
    publicJwk: JSON.stringify(publicJwk),
    sealedPrivateKey: options.sealer.seal(
      JSON.stringify(options.privateJwk),
      sealContext(options.algorithm, kid),
    ),
    createdAt: options.createdAt,
    activatesAt: options.activatesAt,
    revokedAt: null,
  };
}

/** One key of the file format written before keys moved to the database. */
interface LegacyKey {
  kid: string;
  alg: string;
  privateJwk: JWK;
  createdAt: number;
}

function isLegacyKey(value: unknown): value is LegacyKey {
  if (typeof value !== 'object' || value === null) return false;
  const key = value as Record<string, unknown>;
  return (
    typeof key.kid === 'string' &&
    typeof key.alg === 'string' &&
    typeof key.createdAt === 'number' &&
    typeof key.privateJwk === 'object' &&
    key.privateJwk !== null
  );
}

/**
 * The keys of `algorithm` in `DATA_DIR/signing-keys.json`, as records to store: in file order
 * (the last one signed), each active since its creation (never later than `now`), so the newest
 * becomes current at once and the older ones retired, and tokens signed before the upgrade keep
 * verifying. Empty when there is no file. The kids are kept: they are in those tokens' headers.
 */
export async function readLegacyKeyFile(options: {
  dataDir: string;
  algorithm: AsymmetricAlgorithm;
  now: number;
  sealer: TokenSealer;
}): Promise<SigningKeyRecord[]> {
  const path = join(options.dataDir, KEY_FILE);
  if (!existsSync(path)) return [];
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  const keys =
    typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as { keys?: unknown }).keys)
      ? (parsed as { keys: unknown[] }).keys
      : undefined;
  if (keys === undefined) throw new Error(`${path} is not a Gatehouse key file (no "keys" array)`);
  const records: SigningKeyRecord[] = [];
  for (const key of keys) {
    if (!isLegacyKey(key)) throw new Error(`${path} holds a malformed key entry`);
    if (key.alg !== options.algorithm) continue;
    records.push(
      await recordOf({
        algorithm: options.algorithm,
        privateJwk: key.privateJwk,
        kid: key.kid,
        generation: records.length + 1,
        createdAt: key.createdAt,
        activatesAt: Math.min(key.createdAt, options.now),
        sealer: options.sealer,
      }),
    );
  }
  return records;
}
