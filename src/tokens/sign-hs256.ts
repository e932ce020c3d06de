import { createHmac, type KeyObject } from 'node:crypto';
import type { JWTHeaderParameters, JWTPayload } from 'jose';

const b64url = (json: unknown) => Buffer.from(JSON.stringify(json)).toString('base64url');

/**
 * Signs a JWT with HS256 (RFC 7515 §7.1 compact serialization, RFC 7518 §3.2 HMAC SHA-256),
 * synchronously with `node:crypto`, byte for byte what jose's `SignJWT` produces for the same
 * header and claims (`test/tokens/sign-hs256.test.ts` compares the two).
 *
 * Why not jose here: jose signs through WebCrypto, whose `sign` is a job on libuv's thread pool.
 * On a login that hop was ≈ 10 % of the event loop's work (WebCrypto's argument normalisation, the
 * job, a promise) plus a pool thread woken for a ≈ 2 µs HMAC, and on a core shared with the
 * argon2 threads each wake-up is two more context switches (issue 10, login path). Verification
 * stays with jose (DESIGN.md §2): only the producing side, which parses nothing, is done here.
 *
 * `claims` must be JSON data (what a JWT carries); `iat`, `nbf` and `exp`, when numbers, must be
 * finite, as jose requires.
 */
export function signHs256Jwt(header: JWTHeaderParameters, claims: JWTPayload, key: KeyObject): string {
  return signHs256JwtWithHeader(encodeJwtHeader(header), claims, key);
}

/**
 * A JWT's protected header as its first compact-serialization segment (RFC 7515 §7.1:
 * BASE64URL(UTF8(JSON))), for {@link signHs256JwtWithHeader}.
 */
export function encodeJwtHeader(header: JWTHeaderParameters): string {
  return b64url(header);
}

/**
 * {@link signHs256Jwt} with the header already encoded by {@link encodeJwtHeader}: the header is
 * the same for every token of one key and `typ`, so a signer encodes it once (issue 10).
 */
export function signHs256JwtWithHeader(headerSegment: string, claims: JWTPayload, key: KeyObject): string {
  for (const claim of ['iat', 'nbf', 'exp'] as const) {
    const value = claims[claim];
    if (typeof value === 'number' && !Number.isFinite(value))
      throw new TypeError(`"${claim}" claim must be a finite number`);
  }
  const signingInput = `${headerSegment}.${b64url(claims)}`;
  return `${signingInput}.${createHmac('sha256', key).update(signingInput).digest('base64url')}`;
}
