import { createHash, randomBytes } from 'node:crypto';

/** How many recovery codes an account gets (a set replaces the previous one whole). */
export const RECOVERY_CODE_COUNT = 10;
/** 80 random bits each (NIST SP 800-63B §5.1.2 look-up secrets: at least 64; issue 13: ≥ 80). */
const CODE_BYTES = 10;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const NORMALIZED = /^[a-z2-7]{16}$/;

/** RFC 4648 base32 of 10 bytes: exactly 16 characters, no padding. */
function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** Fresh recovery codes, shown to the user once: `xxxx-xxxx-xxxx-xxxx` (lower-case base32). */
export function generateRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    const code = base32(randomBytes(CODE_BYTES));
    return code.match(/.{4}/g)?.join('-') ?? code;
  });
}

/**
 * The canonical form of a typed recovery code (case, dashes and spaces ignored), or undefined
 * when it cannot be one.
 */
export function normalizeRecoveryCode(input: string): string | undefined {
  const code = input.toLowerCase().replace(/[\s-]/g, '');
  return NORMALIZED.test(code) ? code : undefined;
}

/**
 * What is stored for a recovery code: SHA-256 of its canonical form, hex. With 80 random bits per
 * code a slow hash adds nothing (no dictionary to try), and a check costs one hash, not ten.
 */
export function hashRecoveryCode(normalized: string): string {
  return createHash('sha256').update(normalized).digest('hex');
}
