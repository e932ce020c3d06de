/**
 * Password hashes made by other systems that Gatehouse accepts when users are imported
 * (`gatehouse import-users`): what passlib (the FastAPI tutorials' `CryptContext`), pyca/bcrypt,
 * argon2-cffi and Django store. Parsing only: no hashing here (see `verify-legacy-hash.ts`).
 *
 * Every cost parameter is bounded ({@link LEGACY_HASH_LIMITS}) and checked both when a row is
 * imported and again before each verification, so a crafted row cannot make one login attempt
 * cost seconds of CPU or gigabytes of memory (OWASP Password Storage Cheat Sheet: work factors
 * are a denial-of-service lever when an attacker can choose them).
 */

/**
 * Upper (and lower) bounds on the work factors of accepted legacy hashes. The maxima sit above
 * every default these libraries have shipped (passlib bcrypt 12, passlib argon2 m=102400/t=2/p=8,
 * argon2-cffi m=65536/t=3/p=4, Django 6.0 PBKDF2 1 200 000) and far below what would let one row
 * tie up a hashing slot for long (bcrypt 13 ≈ 0.5 s, PBKDF2 1.5 M ≈ 0.4 s on one idle core).
 */
export const LEGACY_HASH_LIMITS = {
  bcryptMinCost: 4,
  bcryptMaxCost: 13,
  pbkdf2MinIterations: 1,
  pbkdf2MaxIterations: 1_500_000,
  /** KiB. */
  argon2MaxMemory: 131_072,
  argon2MaxTime: 10,
  argon2MaxParallelism: 16,
} as const;

/** A bcrypt hash, `$2a$`, `$2b$` or `$2y$` (the same algorithm for passwords under 256 bytes). */
export interface BcryptHash {
  scheme: 'bcrypt';
  cost: number;
  /** The 16 salt bytes. */
  salt: Buffer;
  /** The 31 characters of bcrypt-base64 digest. */
  digest: string;
}

/**
 * passlib's `bcrypt_sha256`: bcrypt over base64(SHA-256(password)) (v1) or base64(HMAC-SHA-256
 * keyed with the salt text) (v2, passlib ≥ 1.7.3), which lifts bcrypt's 72-byte limit.
 */
export interface BcryptSha256Hash {
  scheme: 'bcrypt-sha256';
  version: 1 | 2;
  cost: number;
  /** The 22 salt characters as stored: v2's HMAC key. */
  saltText: string;
  salt: Buffer;
  digest: string;
}

/** An argon2id or argon2i PHC string, verified by the argon2 binding as is. */
export interface Argon2Hash {
  scheme: 'argon2';
  variant: 'argon2id' | 'argon2i';
  phc: string;
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/**
 * PBKDF2-HMAC-SHA256 as passlib stores it (`$pbkdf2-sha256$rounds$salt$digest`, adapted base64)
 * or as Django does (`pbkdf2_sha256$iterations$salt$digest`, the salt text used as is).
 */
export interface Pbkdf2Hash {
  scheme: 'pbkdf2-sha256';
  flavor: 'passlib' | 'django';
  iterations: number;
  salt: Buffer;
  digest: Buffer;
}

/** A parsed legacy hash. */
export type LegacyHash = BcryptHash | BcryptSha256Hash | Argon2Hash | Pbkdf2Hash;

/** Outcome of {@link parseLegacyHash}: the hash, or why it is refused (never quoting the hash). */
export type LegacyHashParse = { ok: true; hash: LegacyHash } | { ok: false; reason: string };

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Decodes bcrypt's own base64 alphabet (`./A-Za-z0-9`) to bytes. */
function decodeBcryptBase64(text: string): Buffer {
  let standard = '';
  for (const char of text) standard += BASE64_ALPHABET[BCRYPT_ALPHABET.indexOf(char)];
  return Buffer.from(standard, 'base64');
}

/** Decodes passlib's "adapted base64" (`.` for `+`, no padding). */
function decodeAb64(text: string): Buffer | undefined {
  if (!/^[./A-Za-z0-9]*$/.test(text)) return undefined;
  return Buffer.from(text.replaceAll('.', '+'), 'base64');
}

/** A decimal integer written canonically (no sign, no leading zero, no exponent). */
function parseCount(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,9})$/.test(text)) return undefined;
  return Number(text);
}

const refuse = (reason: string): LegacyHashParse => ({ ok: false, reason });

function bcryptCost(text: string): number | undefined {
  if (!/^\d\d?$/.test(text)) return undefined;
  return Number(text);
}

function checkBcryptCost(cost: number | undefined): string | undefined {
  if (cost === undefined) return 'bcrypt cost is not a number';
  const { bcryptMinCost, bcryptMaxCost } = LEGACY_HASH_LIMITS;
  if (cost < bcryptMinCost || cost > bcryptMaxCost) {
    return `bcrypt cost ${cost} is outside ${bcryptMinCost}..${bcryptMaxCost}`;
  }
  return undefined;
}

/** `$2b$12$` + 22 salt + 31 digest characters. */
function parseBcrypt(hash: string): LegacyHashParse {
  const match = /^\$2[aby]\$(\d\d)\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/.exec(hash);
  if (match === null) return refuse('malformed bcrypt hash');
  const [, costText = '', saltText = '', digest = ''] = match;
  const cost = bcryptCost(costText);
  const problem = checkBcryptCost(cost);
  if (problem !== undefined || cost === undefined) return refuse(problem ?? 'malformed bcrypt hash');
  return { ok: true, hash: { scheme: 'bcrypt', cost, salt: decodeBcryptBase64(saltText), digest } };
}

/**
 * passlib `bcrypt_sha256`: v2 `$bcrypt-sha256$v=2,t=2b,r=12$<salt22>$<digest31>`,
 * v1 `$bcrypt-sha256$2a,12$<salt22>$<digest31>`.
 */
function parseBcryptSha256(hash: string): LegacyHashParse {
  // passlib writes the cost without a leading zero here (`r=5`, `2b,5`), unlike bcrypt's `$05$`.
  const v2 = /^\$bcrypt-sha256\$v=2,t=2b,r=([1-9]\d?)\$([./A-Za-z0-9]{22})\$([./A-Za-z0-9]{31})$/.exec(hash);
  const v1 = /^\$bcrypt-sha256\$2[ab],([1-9]\d?)\$([./A-Za-z0-9]{22})\$([./A-Za-z0-9]{31})$/.exec(hash);
  const match = v2 ?? v1;
  if (match === null) return refuse('malformed bcrypt-sha256 hash');
  const [, costText = '', saltText = '', digest = ''] = match;
  const cost = bcryptCost(costText);
  const problem = checkBcryptCost(cost);
  if (problem !== undefined || cost === undefined) return refuse(problem ?? 'malformed bcrypt-sha256 hash');
  return {
    ok: true,
    hash: {
      scheme: 'bcrypt-sha256',
      version: v2 === null ? 1 : 2,
      cost,
      saltText,
      salt: decodeBcryptBase64(saltText),
      digest,
    },
  };
}

/** `$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>` (and `$argon2i$`; `v=` may be absent: 1.0). */
function parseArgon2(hash: string): LegacyHashParse {
  const match =
    /^\$(argon2id|argon2i)\$(?:v=(16|19)\$)?m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$([A-Za-z0-9+/]{11,})\$([A-Za-z0-9+/]{16,})$/.exec(
      hash,
    );
  if (match === null) return refuse('malformed argon2 hash');
  const [, variant = '', , m = '', t = '', p = ''] = match;
  const memoryCost = Number(m);
  const timeCost = Number(t);
  const parallelism = Number(p);
  const { argon2MaxMemory, argon2MaxTime, argon2MaxParallelism } = LEGACY_HASH_LIMITS;
  if (timeCost < 1 || timeCost > argon2MaxTime)
    return refuse(`argon2 t=${timeCost} is outside 1..${argon2MaxTime}`);
  if (parallelism < 1 || parallelism > argon2MaxParallelism) {
    return refuse(`argon2 p=${parallelism} is outside 1..${argon2MaxParallelism}`);
  }
  // RFC 9106 §3.1: the memory size is at least 8 KiB per lane.
  if (memoryCost < 8 * parallelism || memoryCost > argon2MaxMemory) {
    return refuse(`argon2 m=${memoryCost} is outside ${8 * parallelism}..${argon2MaxMemory} KiB`);
  }
  return {
    ok: true,
    hash: {
      scheme: 'argon2',
      variant: variant === 'argon2i' ? 'argon2i' : 'argon2id',
      phc: hash,
      memoryCost,
      timeCost,
      parallelism,
    },
  };
}

function checkIterations(iterations: number | undefined): string | undefined {
  const { pbkdf2MinIterations, pbkdf2MaxIterations } = LEGACY_HASH_LIMITS;
  if (iterations === undefined) return 'pbkdf2 iteration count is not a number';
  if (iterations < pbkdf2MinIterations || iterations > pbkdf2MaxIterations) {
    return `pbkdf2 iteration count ${iterations} is outside ${pbkdf2MinIterations}..${pbkdf2MaxIterations}`;
  }
  return undefined;
}

/** passlib `pbkdf2_sha256`: `$pbkdf2-sha256$29000$<ab64 salt>$<ab64 digest, 32 bytes>`. */
function parsePasslibPbkdf2(hash: string): LegacyHashParse {
  const parts = hash.split('$');
  if (parts.length !== 5 || parts[0] !== '' || parts[1] !== 'pbkdf2-sha256') {
    return refuse('malformed pbkdf2-sha256 hash');
  }
  const iterations = parseCount(parts[2] ?? '');
  const problem = checkIterations(iterations);
  if (problem !== undefined || iterations === undefined)
    return refuse(problem ?? 'malformed pbkdf2-sha256 hash');
  const salt = decodeAb64(parts[3] ?? '');
  const digest = decodeAb64(parts[4] ?? '');
  if (salt === undefined || digest === undefined || digest.length !== 32 || salt.length === 0) {
    return refuse('malformed pbkdf2-sha256 hash');
  }
  return { ok: true, hash: { scheme: 'pbkdf2-sha256', flavor: 'passlib', iterations, salt, digest } };
}

/** Django `PBKDF2PasswordHasher`: `pbkdf2_sha256$870000$<salt text>$<base64 digest, 32 bytes>`. */
function parseDjangoPbkdf2(hash: string): LegacyHashParse {
  const parts = hash.split('$');
  if (parts.length !== 4 || parts[0] !== 'pbkdf2_sha256') return refuse('malformed pbkdf2_sha256 hash');
  const iterations = parseCount(parts[1] ?? '');
  const problem = checkIterations(iterations);
  if (problem !== undefined || iterations === undefined)
    return refuse(problem ?? 'malformed pbkdf2_sha256 hash');
  const saltText = parts[2] ?? '';
  const digestText = parts[3] ?? '';
  // Django's salts are letters and digits; any printable ASCII without `$` is accepted as text.
  if (!/^[\x21-\x23\x25-\x7e]{1,128}$/.test(saltText) || !/^[A-Za-z0-9+/]{43}=$/.test(digestText)) {
    return refuse('malformed pbkdf2_sha256 hash');
  }
  return {
    ok: true,
    hash: {
      scheme: 'pbkdf2-sha256',
      flavor: 'django',
      iterations,
      salt: Buffer.from(saltText, 'utf8'),
      digest: Buffer.from(digestText, 'base64'),
    },
  };
}

/** Longest hash string considered (the longest accepted format is well under it). */
const MAX_HASH_LENGTH = 512;

/**
 * Recognizes and checks a legacy password hash. The reason for a refusal names the scheme and the
 * parameter at fault, never the hash text (a hash is a secret too: it can be cracked offline).
 */
export function parseLegacyHash(hash: string): LegacyHashParse {
  if (hash.length > MAX_HASH_LENGTH) return refuse('hash longer than any supported format');
  if (/^\$2[aby]\$/.test(hash)) return parseBcrypt(hash);
  if (hash.startsWith('$bcrypt-sha256$')) return parseBcryptSha256(hash);
  if (hash.startsWith('$argon2id$') || hash.startsWith('$argon2i$')) return parseArgon2(hash);
  if (hash.startsWith('$pbkdf2-sha256$')) return parsePasslibPbkdf2(hash);
  if (hash.startsWith('pbkdf2_sha256$')) return parseDjangoPbkdf2(hash);
  const scheme = /^\$?([A-Za-z0-9_-]{1,24})\$/.exec(hash)?.[1];
  if (scheme !== undefined) return refuse(`unsupported hash scheme ${scheme}`);
  return refuse('not a supported password hash');
}
