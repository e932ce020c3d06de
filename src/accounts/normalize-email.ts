/** A normalized email: the form to show, and the key accounts are unique by. */
export interface NormalizedEmail {
  /** Trimmed, NFKC-normalized, as the user typed it otherwise. */
  display: string;
  /** `display` lower-cased: `Alice@Example.COM` and `alice@example.com` share one key. */
  key: string;
}

// A pragmatic subset of RFC 5321 addresses: one @, a dot-atom-ish local part, and a domain of
// LDH labels with a dot. Quoted local parts are legal but almost never real; rejecting them
// keeps the address usable in every system we hand it to.
const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/**
 * Trims and NFKC-normalizes an email address, and checks its shape (≤ 254 characters per
 * RFC 5321 §4.5.3.1, local part ≤ 64, no leading/trailing/double dots).
 */
export function normalizeEmail(raw: string): NormalizedEmail | undefined {
  const display = raw.normalize('NFKC').trim();
  if (display.length > 254 || !EMAIL.test(display)) return undefined;
  const local = display.slice(0, display.lastIndexOf('@'));
  if (local.length > 64 || local.startsWith('.') || local.endsWith('.') || local.includes('..'))
    return undefined;
  return { display, key: display.toLowerCase() };
}
