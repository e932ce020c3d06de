import { hash } from 'node:crypto';
import { randomBase64url } from '../lib/random-pool.js';

/** Prefixes make a leaked token's kind obvious (and greppable by secret scanners). */
export type OpaqueTokenPrefix = 'ghr' | 'gha' | 'ghs';

/** A freshly generated opaque token and the only form of it that is stored. */
export interface OpaqueToken {
  /** What the client receives: `<prefix>_<43 base64url chars>`. */
  token: string;
  /** SHA-256 of the token, hex. */
  hash: string;
}

/**
 * Generates an opaque token of 256 random bits. Only its SHA-256 is stored: the token has full
 * entropy, so a fast hash is enough (no salt or KDF needed), and a database leak reveals no token.
 */
export function generateOpaqueToken(prefix: OpaqueTokenPrefix): OpaqueToken {
  const token = `${prefix}_${randomBase64url(32)}`;
  return { token, hash: hashOpaqueToken(token) };
}

/** The stored form of an opaque token. */
export function hashOpaqueToken(token: string): string {
  return hash('sha256', token, 'hex');
}

/** True when `token` has the shape of an opaque token with `prefix` (cheap pre-check before a lookup). */
export function looksLikeOpaqueToken(token: string, prefix: OpaqueTokenPrefix): boolean {
  return token.length === prefix.length + 44 && token.startsWith(`${prefix}_`);
}
