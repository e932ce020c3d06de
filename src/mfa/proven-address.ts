import { GatehouseError } from '../errors.js';
import type { UserRecord } from '../storage/user-store.js';

/**
 * Refuses to set up a second factor (TOTP or passkey) on an account whose address nobody has proved
 * (`EMAIL_NOT_VERIFIED`, 403).
 *
 * Why: the first proof of an address is taken as a change of owner and removes every factor set up
 * before it (red team 2026-12c H3: a stranger who signed up with someone else's address must not
 * keep a passkey into the account its owner later claims). That rule is only safe if no factor of
 * the real owner can exist before the proof; otherwise a mailbox alone (a reset link) strips the
 * owner's second factor (red team 2026-12d I4). OWASP's Multifactor Authentication Cheat Sheet:
 * resetting a second factor must not be possible with the email alone.
 */
export function requireProvenAddress(user: Pick<UserRecord, 'emailVerified'>): void {
  if (!user.emailVerified) {
    throw new GatehouseError(
      'EMAIL_NOT_VERIFIED',
      'Confirm your email address before setting up a second factor: follow the link mailed to it, or ask for a new one.',
    );
  }
}
