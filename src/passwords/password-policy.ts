import { isCommonPassword } from './common-passwords.js';

/** Shortest accepted password, in characters after NFKC (OWASP ASVS 5.0 V6.2.1). */
export const MIN_PASSWORD_LENGTH = 8;
/** Longest accepted password; long enough for passphrases, short enough to bound hashing input. */
export const MAX_PASSWORD_LENGTH = 1024;

/** Outcome of {@link checkPasswordPolicy}. */
export type PasswordCheck = { ok: true; password: string } | { ok: false; reason: string };

/**
 * Normalizes a password with NFKC (so the same passphrase typed on different keyboards matches,
 * per NIST SP 800-63B §5.1.1.2) and applies the policy: 8–1024 characters, never truncated, not
 * one of the 10 000 most common passwords. Returns the normalized password to hash.
 */
export function checkPasswordPolicy(raw: string): PasswordCheck {
  const password = raw.normalize('NFKC');
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) {
    return { ok: false, reason: `Password must be at least ${MIN_PASSWORD_LENGTH} characters long.` };
  }
  if (length > MAX_PASSWORD_LENGTH) {
    return { ok: false, reason: `Password must be at most ${MAX_PASSWORD_LENGTH} characters long.` };
  }
  if (isCommonPassword(password)) {
    return { ok: false, reason: 'Password is one of the 10 000 most common passwords; choose another.' };
  }
  return { ok: true, password };
}
