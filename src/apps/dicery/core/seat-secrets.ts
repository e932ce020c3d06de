import { createHash, randomBytes, randomInt } from 'node:crypto';
import { CLAIM_CODE_LENGTH } from '../shared/claim-code.js';
import { ROOM_CODE_ALPHABET } from '../shared/room-code.js';

/**
 * A fresh seat secret: 256 bits from the CSPRNG, base64url (43 characters). It lives only in the
 * player's HttpOnly cookie; the database keeps {@link hashSecret} of it (OWASP Session Management
 * Cheat Sheet: session ids ≥ 64 bits of entropy, stored server-side only as a hash).
 */
export function generateSeatSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Whether `value` has the shape of a seat secret ({@link generateSeatSecret}: 43 base64url characters). */
export function looksLikeSeatSecret(value: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(value);
}

/**
 * SHA-256 (hex) of a seat secret or claim code. A plain hash suffices: both are high-entropy
 * random values, so there is nothing for a slow hash to protect against a table dump.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * A fresh claim code: {@link CLAIM_CODE_LENGTH} characters of the room-code alphabet (31 symbols,
 * ≈ 59 bits), drawn without modulo bias. Guessing one within its lifetime, at the join limit of
 * one address, is hopeless, so the throttle need not lock anyone's code (which an attacker could
 * otherwise aim at a victim).
 */
export function generateClaimCode(): string {
  let code = '';
  for (let i = 0; i < CLAIM_CODE_LENGTH; i++)
    code += ROOM_CODE_ALPHABET[randomInt(ROOM_CODE_ALPHABET.length)];
  return code;
}

/** Longest seat secret looked at (real ones are 43 characters): bounds hashing work per request. */
export const SEAT_SECRET_MAX_LENGTH = 128;
