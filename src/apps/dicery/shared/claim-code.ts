/**
 * Claim codes: what a player types on a new device to take their seat back (issue 14). Shared by
 * the server (which issues and checks them) and the web UI (which formats the field).
 *
 * Browser-safe: no imports but the room-code alphabet.
 *
 * @module
 */
import { ROOM_CODE_ALPHABET } from './room-code.js';

/** Characters in a claim code (shown as three groups of four: `ABCD-EFGH-JKMN`). */
export const CLAIM_CODE_LENGTH = 12;

/**
 * Canonical form of a claim code typed by a person: spaces and dashes dropped, upper-cased.
 * Undefined when it cannot be one (wrong length or a character outside the alphabet), so no
 * lookup is spent on it.
 */
export function normalizeClaimCode(input: string): string | undefined {
  if (input.length > 64) return undefined;
  const code = input.replace(/[\s-]/g, '').toUpperCase();
  if (code.length !== CLAIM_CODE_LENGTH) return undefined;
  for (const char of code) if (!ROOM_CODE_ALPHABET.includes(char)) return undefined;
  return code;
}

/** `ABCDEFGHJKMN` → `ABCD-EFGH-JKMN`, the form shown to people. */
export function formatClaimCode(code: string): string {
  return code.match(/.{1,4}/g)?.join('-') ?? code;
}
