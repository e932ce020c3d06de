import { countCodePoints } from '../text/display-text.js';
import { isCommonPassword } from './common-passwords.js';

/**
 * No setting may put the minimum below this: NIST SP 800-63B-4 §3.1.1.2 allows 8 only where the
 * password is not the sole factor, and never less.
 */
export const ABSOLUTE_MIN_PASSWORD_LENGTH = 8;
/** Default shortest password: NIST SP 800-63B-4 §3.1.1.2 asks 15 when the password is the only factor. */
export const DEFAULT_MIN_PASSWORD_LENGTH = 15;
/**
 * Longest accepted password: far above the 64 that NIST SP 800-63B-4 requires verifiers to accept,
 * and short enough to bound hashing input. Never truncated.
 */
export const MAX_PASSWORD_LENGTH = 1024;
/** Words no password may be (nor a simple variant of), whatever the deployment. */
const BUILT_IN_CONTEXT_WORDS = ['gatehouse'];

/** Outcome of a password check: the normalized password to hash, or why it was refused. */
export type PasswordCheck = { ok: true; password: string } | { ok: false; reason: string };

/** What a password is checked against beyond the list: who is choosing it. */
export interface PasswordContext {
  /** The account's email; the address and its local part are refused as passwords. */
  email?: string | undefined;
}

/** Options of {@link createPasswordPolicy}. */
export interface PasswordPolicyOptions {
  /** Shortest password in code points, after NFKC (≥ 8). @default 15 */
  minLength?: number;
  /**
   * Words of the deployment that no password may be, e.g. the issuer or site name (NIST SP
   * 800-63B-4 §3.1.1.2: "context-specific words, such as the name of the service"). A URL is
   * split into its host name's labels. `gatehouse` is always included.
   */
  contextWords?: readonly string[];
}

/** The password rules of one deployment. */
export interface PasswordPolicy {
  /** Shortest accepted password, in code points after NFKC. */
  readonly minLength: number;
  /**
   * Normalizes `raw` with NFKC (so the same passphrase typed on different keyboards matches) and
   * applies the rules; returns the normalized password to hash.
   */
  check(raw: string, context?: PasswordContext): PasswordCheck;
}

/**
 * Creates the policy of NIST SP 800-63B-4 §3.1.1.2 (and OWASP ASVS 5.0 V6.2): a minimum length,
 * at least 64 characters accepted and never truncated, no composition rules (no "one digit, one
 * symbol"), and a blocklist: the 100 000 most common passwords and context words (the service's
 * names, the user's email and its local part), each also in its simple variants (any case,
 * digits or symbols added before or after: `Gatehouse2024!`, `password123456789`).
 *
 * @throws RangeError when `minLength` is below {@link ABSOLUTE_MIN_PASSWORD_LENGTH} or above 64
 *   (a minimum above 64 would refuse passwords NIST says must be accepted).
 */
export function createPasswordPolicy(options: PasswordPolicyOptions = {}): PasswordPolicy {
  const minLength = options.minLength ?? DEFAULT_MIN_PASSWORD_LENGTH;
  if (!Number.isInteger(minLength) || minLength < ABSOLUTE_MIN_PASSWORD_LENGTH || minLength > 64) {
    throw new RangeError(`minLength must be an integer from ${ABSOLUTE_MIN_PASSWORD_LENGTH} to 64`);
  }
  const siteWords = new Set(
    [...BUILT_IN_CONTEXT_WORDS, ...(options.contextWords ?? [])].flatMap(wordsOf).filter((w) => w !== ''),
  );

  return {
    minLength,
    check(raw, context = {}) {
      const password = raw.normalize('NFKC');
      const length = countCodePoints(password);
      if (length < minLength) {
        return { ok: false, reason: `Password must be at least ${minLength} characters long.` };
      }
      if (length > MAX_PASSWORD_LENGTH) {
        return { ok: false, reason: `Password must be at most ${MAX_PASSWORD_LENGTH} characters long.` };
      }
      const forms = [password.toLowerCase(), coreOf(password)];
      if (forms.some(isCommonPassword)) {
        return {
          ok: false,
          reason: 'Password is (a variant of) one of the 100 000 most common passwords; choose another.',
        };
      }
      const words = new Set(siteWords);
      for (const word of emailWords(context.email)) words.add(word);
      if (forms.some((form) => words.has(form))) {
        return {
          ok: false,
          reason: 'Password must not be your email address, its name part or the name of this service.',
        };
      }
      return { ok: true, password };
    },
  };
}

/** The rules with their defaults (15 characters, no deployment words beyond `gatehouse`). */
const defaultPolicy = createPasswordPolicy();

/** Checks `raw` against the default {@link createPasswordPolicy} rules. */
export function checkPasswordPolicy(raw: string, context?: PasswordContext): PasswordCheck {
  return defaultPolicy.check(raw, context);
}

/**
 * The password with case folded and leading and trailing digits, punctuation, symbols and spaces
 * removed: `Password123!` → `password`. The simple variants people make of a listed word.
 */
function coreOf(password: string): string {
  return password.toLowerCase().replace(/^[\p{N}\p{P}\p{S}\s]+|[\p{N}\p{P}\p{S}\s]+$/gu, '');
}

/** A context word and its forms: a URL gives its host labels (`https://auth.example.com` → auth, example). */
function wordsOf(word: string): string[] {
  const lower = word.normalize('NFKC').toLowerCase().trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(lower)) {
    try {
      const labels = new URL(lower).hostname.split('.').filter((label) => label !== 'www');
      return labels.length > 1 ? labels.slice(0, -1) : labels;
    } catch {
      return [lower];
    }
  }
  return [lower, coreOf(lower)];
}

/** The email, its local part, and the local part without separators (`jo.smith` → `josmith`). */
function emailWords(email: string | undefined): string[] {
  if (email === undefined) return [];
  const address = email.normalize('NFKC').toLowerCase().trim();
  const at = address.lastIndexOf('@');
  const local = at > 0 ? address.slice(0, at) : address;
  return [address, local, coreOf(local), local.replace(/[._+-]/g, '')].filter((word) => word !== '');
}
