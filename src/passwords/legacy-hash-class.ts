import { randomBytes } from 'node:crypto';
import { type LegacyHash, parseLegacyHash } from './legacy-hash-format.js';
import { ARGON2_PARAMS } from './password-hasher.js';

/**
 * What verifying a legacy hash costs: its cost class (the scheme and the work factors that decide
 * the time, nothing of the hash itself: `bcrypt:12`, `pbkdf2-sha256:870000`,
 * `argon2id:m=65536,t=3,p=4`), and an estimate of the work that orders the classes of one
 * `family`. `gatehouse import-users` keeps the costliest class of each family it imports, so that a
 * running server can make a wrong password for an unknown address take as long as one for an
 * imported account (see `refusal-floor.ts`).
 */
export interface LegacyHashCost {
  /**
   * Classes whose `work` compare: `bcrypt` (bcrypt-sha256 adds one HMAC to bcrypt),
   * `pbkdf2-sha256`, and argon2 split by lanes, since lanes run in parallel: `argon2` (p=1) and
   * `argon2-lanes` (p>1) (65536 KiB and t=3 take 55 ms with one lane, 33 with four, on 2 cores).
   */
  family: 'bcrypt' | 'pbkdf2-sha256' | 'argon2' | 'argon2-lanes';
  hashClass: string;
  /** 2^cost, iterations, or KiB × (passes + 1): comparable within a family only. */
  work: number;
}

/**
 * The cost of verifying `hash`. Undefined for a hash with our own argon2id parameters, which
 * costs what every other check costs.
 */
export function legacyHashCost(hash: LegacyHash): LegacyHashCost | undefined {
  switch (hash.scheme) {
    case 'bcrypt':
    case 'bcrypt-sha256':
      return { family: 'bcrypt', hashClass: `bcrypt:${hash.cost}`, work: 2 ** hash.cost };
    case 'pbkdf2-sha256':
      return {
        family: 'pbkdf2-sha256',
        hashClass: `pbkdf2-sha256:${hash.iterations}`,
        work: hash.iterations,
      };
    case 'argon2': {
      const { memoryCost, timeCost, parallelism } = hash;
      const ours =
        hash.variant === 'argon2id' &&
        memoryCost === ARGON2_PARAMS.memoryCost &&
        timeCost === ARGON2_PARAMS.timeCost &&
        parallelism === ARGON2_PARAMS.parallelism;
      if (ours) return undefined;
      return {
        family: parallelism === 1 ? 'argon2' : 'argon2-lanes',
        hashClass: `${hash.variant}:m=${memoryCost},t=${timeCost},p=${parallelism}`,
        // Filling the memory costs about one pass more: at 128 MiB, t=1 takes 86 ms where
        // 16 MiB at t=10 takes 61 (m×t would rank them the other way round).
        work: memoryCost * (timeCost + 1),
      };
    }
  }
}

/** The costliest of `costs` in each family (at most one per family). */
export function costliestByFamily(costs: Iterable<LegacyHashCost | undefined>): LegacyHashCost[] {
  const costliest = new Map<LegacyHashCost['family'], LegacyHashCost>();
  for (const cost of costs) {
    if (cost !== undefined && (costliest.get(cost.family)?.work ?? 0) < cost.work)
      costliest.set(cost.family, cost);
  }
  return [...costliest.values()];
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomBcryptText(length: number): string {
  let text = '';
  for (const byte of randomBytes(length)) text += BCRYPT_ALPHABET[byte % BCRYPT_ALPHABET.length];
  return text;
}

/** Standard base64 without padding (PHC); passlib's adapted base64 writes `.` for `+`. */
const unpadded = (bytes: number) => randomBytes(bytes).toString('base64').replace(/=+$/, '');

/**
 * A throwaway hash of cost class `hashClass`: random salt and digest, so no password matches it,
 * but verifying one costs what verifying a real hash of the class costs. Undefined for a class
 * this version cannot read, or whose work factors `LEGACY_HASH_LIMITS` no longer allow.
 */
export function probeHash(hashClass: string): string | undefined {
  const [scheme = '', parameters = ''] = hashClass.split(':', 2);
  let text: string | undefined;
  if (scheme === 'bcrypt' && /^\d{1,2}$/.test(parameters)) {
    text = `$2b$${parameters.padStart(2, '0')}$${randomBcryptText(53)}`;
  } else if (scheme === 'pbkdf2-sha256' && /^\d{1,10}$/.test(parameters)) {
    text = `$pbkdf2-sha256$${parameters}$${unpadded(16).replaceAll('+', '.')}$${unpadded(32).replaceAll('+', '.')}`;
  } else if ((scheme === 'argon2id' || scheme === 'argon2i') && /^m=\d+,t=\d+,p=\d+$/.test(parameters)) {
    text = `$${scheme}$v=19$${parameters}$${unpadded(16)}$${unpadded(32)}`;
  }
  if (text === undefined) return undefined;
  const parsed = parseLegacyHash(text);
  return parsed.ok && legacyHashCost(parsed.hash)?.hashClass === hashClass ? text : undefined;
}
