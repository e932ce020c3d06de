/**
 * An address shown in part: the first character of its local part, `***`, and the whole domain
 * (`alice@example.com` → `a***@example.com`). Enough for the owner to recognise their account, not
 * enough for anyone else to learn its sign-in address; the local part's length is hidden too.
 * Used where a mail goes to an address not yet proven to be the account owner's (the confirmation
 * of an email change: the address was typed by whoever asked, and may be mistyped).
 */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  // Addresses reach here normalized (normalize-email.ts: an ASCII local part of 1–64 characters),
  // so the first UTF-16 unit is a whole character.
  return `${email.slice(0, 1)}***${email.slice(at)}`;
}
