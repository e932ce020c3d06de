import { createHash, createHmac, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { BcryptHash, BcryptSha256Hash, LegacyHash, Pbkdf2Hash } from './legacy-hash-format.js';

const pbkdf2Async = promisify(pbkdf2);

let bcrypt: Promise<typeof import('@node-rs/bcrypt')> | undefined;
let argon2: Promise<typeof import('@node-rs/argon2')> | undefined;

/** The bcrypt binding, loaded on the first legacy bcrypt hash only (most servers never see one). */
function loadBcrypt(): Promise<typeof import('@node-rs/bcrypt')> {
  bcrypt ??= import('@node-rs/bcrypt');
  return bcrypt;
}

function loadArgon2(): Promise<typeof import('@node-rs/argon2')> {
  argon2 ??= import('@node-rs/argon2');
  return argon2;
}

/**
 * Loads the native binding `hash` needs. Called before verifying, outside its error handling, so a
 * binding that fails to load is reported as the error it is rather than as a wrong password.
 */
export async function loadLegacyVerifier(hash: LegacyHash): Promise<void> {
  if (hash.scheme === 'bcrypt' || hash.scheme === 'bcrypt-sha256') await loadBcrypt();
  else if (hash.scheme === 'argon2') await loadArgon2();
}

/** Compares in time that depends only on the lengths, which are fixed by the format. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Recomputes bcrypt with the stored salt and cost and compares the digests with
 * `timingSafeEqual`, instead of trusting a library's string comparison. bcrypt reads at most 72
 * bytes of the password: the legacy system did the same when it stored the hash, so a password
 * longer than that was only ever checked on its first 72 bytes (the upgrade on login ends this).
 */
async function verifyBcrypt(hash: BcryptHash | BcryptSha256Hash, secret: string | Buffer): Promise<boolean> {
  const { hash: bcryptHash } = await loadBcrypt();
  const computed = await bcryptHash(secret, hash.cost, hash.salt);
  return sameBytes(Buffer.from(computed.slice(-31), 'latin1'), Buffer.from(hash.digest, 'latin1'));
}

/**
 * passlib `bcrypt_sha256`: the bcrypt key is the standard base64 (44 characters) of SHA-256 of
 * the UTF-8 password (v1) or of HMAC-SHA-256 keyed with the salt's 22 characters (v2).
 */
function bcryptSha256Key(hash: BcryptSha256Hash, password: string): string {
  const digest =
    hash.version === 2
      ? createHmac('sha256', Buffer.from(hash.saltText, 'ascii')).update(password, 'utf8').digest()
      : createHash('sha256').update(password, 'utf8').digest();
  return digest.toString('base64');
}

async function verifyPbkdf2(hash: Pbkdf2Hash, password: string): Promise<boolean> {
  // On libuv's thread pool, like argon2 and bcrypt: the event loop keeps serving requests.
  const computed = await pbkdf2Async(Buffer.from(password, 'utf8'), hash.salt, hash.iterations, 32, 'sha256');
  return sameBytes(computed, hash.digest);
}

/**
 * Whether `password` (exactly as the user typed it: the legacy system hashed it without Unicode
 * normalization) matches a legacy hash. Bounded in cost because `parseLegacyHash` refused
 * any hash beyond `LEGACY_HASH_LIMITS`; constant-time in the comparison of the digests.
 */
export async function verifyLegacyHash(hash: LegacyHash, password: string): Promise<boolean> {
  switch (hash.scheme) {
    case 'bcrypt':
      return verifyBcrypt(hash, Buffer.from(password, 'utf8'));
    case 'bcrypt-sha256':
      return verifyBcrypt(hash, bcryptSha256Key(hash, password));
    case 'pbkdf2-sha256':
      return verifyPbkdf2(hash, password);
    case 'argon2': {
      const { verify } = await loadArgon2();
      // The binding recomputes with the hash's own parameters (bounded at parse time) and
      // compares in constant time.
      return verify(hash.phc, password);
    }
  }
}
