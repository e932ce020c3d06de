import { createHmac, createSecretKey, hkdfSync, type KeyObject, timingSafeEqual } from 'node:crypto';
import { fillRandom } from '../lib/random-pool.js';
import { hashOpaqueToken, type OpaqueToken } from './opaque-token.js';

/**
 * Refresh tokens that name their family (their session) under a MAC, so that a session keeps only
 * its current refresh token and the one spent last, and still recognises every older one.
 *
 * Why: RFC 9700 §4.14.2 reuse detection needs the server to recognise a spent refresh token when
 * it comes back (a leak, or a client racing itself) and end its session. With tokens that are only
 * random, that meant keeping every spent token's row until it expired (REFRESH_TOKEN_IDLE_TTL, a
 * week by default): a client refreshing in a loop grew `refresh_tokens` without bound, and pruning
 * the rows would have let a thief who rotated a few times first keep the session when its owner's
 * old token came back. With the family in the token, a token whose row is gone but whose MAC
 * verifies was issued by this server for that session and is no longer current: a reuse.
 *
 * Layout: `ghr_` then base64url of `random (32) | session id, a UUID (16) | tag (16)`, 90
 * characters in all. The random part keeps the token a 256-bit secret of its own (only its
 * SHA-256 is stored, as for every opaque token); the tag is HMAC-SHA-256 over the random part and
 * the session id, truncated to 128 bits (NIST SP 800-107 §5.3.3), under a key derived from
 * SECRET_KEY by HKDF (RFC 5869) with a label of its own, so nothing else Gatehouse signs verifies as
 * a refresh token. Tokens verify under SECRET_KEY_PREVIOUS too, through a rotation. Tokens of the
 * earlier, random-only layout (`ghr_` + 43 characters) are still accepted where their rows exist.
 */
const PREFIX = 'ghr_';
const RANDOM_BYTES = 32;
const SESSION_BYTES = 16;
const TAG_BYTES = 16;
const BODY_BYTES = RANDOM_BYTES + SESSION_BYTES;
const TOKEN_BYTES = BODY_BYTES + TAG_BYTES;
/** Length of a refresh token of the family layout. */
export const REFRESH_TOKEN_LENGTH = PREFIX.length + Math.ceil((TOKEN_BYTES * 4) / 3);
/** Length of a refresh token of the earlier, random-only layout (`generateOpaqueToken('ghr')`). */
const LEGACY_REFRESH_TOKEN_LENGTH = PREFIX.length + 43;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const KEY_LABEL = 'gatehouse refresh-token family v1';

/** Issues refresh tokens and reads the session a token was issued for. */
export interface RefreshTokens {
  /** A new refresh token of session `sessionId` (a UUID), and the hash that is stored. */
  issue(sessionId: string): OpaqueToken;
  /**
   * The session `token` was issued for, when it is of the family layout and its tag verifies
   * (under SECRET_KEY or SECRET_KEY_PREVIOUS); undefined for anything else, forged, mangled or of
   * the earlier layout alike. Says nothing of whether the token is still current.
   */
  familyOf(token: string): string | undefined;
}

/** True when `token` has the shape of a refresh token, of either layout (a cheap check before any lookup). */
export function looksLikeRefreshToken(token: string): boolean {
  return (
    (token.length === REFRESH_TOKEN_LENGTH || token.length === LEGACY_REFRESH_TOKEN_LENGTH) &&
    token.startsWith(PREFIX)
  );
}

/** Creates {@link RefreshTokens} under `secretKey`, accepting `previousSecretKey`'s tags too. */
export function createRefreshTokens(options: {
  secretKey: Uint8Array;
  previousSecretKey?: Uint8Array | undefined;
}): RefreshTokens {
  // KeyObjects, so createHmac does not wrap the bytes in a new key on every MAC (as device-token.ts).
  const keyOf = (secret: Uint8Array) =>
    createSecretKey(Buffer.from(hkdfSync('sha256', secret, '', KEY_LABEL, 32)));
  const key = keyOf(options.secretKey);
  const keys: KeyObject[] =
    options.previousSecretKey === undefined ? [key] : [key, keyOf(options.previousSecretKey)];
  const tag = (macKey: KeyObject, body: Uint8Array) =>
    createHmac('sha256', macKey).update(body).digest().subarray(0, TAG_BYTES);
  return {
    issue(sessionId) {
      if (!UUID.test(sessionId)) throw new TypeError('refresh tokens are issued for UUID session ids');
      const bytes = Buffer.alloc(TOKEN_BYTES);
      fillRandom(bytes, 0, RANDOM_BYTES);
      Buffer.from(sessionId.replaceAll('-', ''), 'hex').copy(bytes, RANDOM_BYTES);
      tag(key, bytes.subarray(0, BODY_BYTES)).copy(bytes, BODY_BYTES);
      const token = `${PREFIX}${bytes.toString('base64url')}`;
      return { token, hash: hashOpaqueToken(token) };
    },
    familyOf(token) {
      if (token.length !== REFRESH_TOKEN_LENGTH || !token.startsWith(PREFIX)) return undefined;
      const encoded = token.slice(PREFIX.length);
      const bytes = Buffer.from(encoded, 'base64url');
      // Buffer.from drops characters outside the alphabet, so a mangled token comes out short or
      // encodes differently.
      if (bytes.length !== TOKEN_BYTES || bytes.toString('base64url') !== encoded) return undefined;
      const body = bytes.subarray(0, BODY_BYTES);
      const given = bytes.subarray(BODY_BYTES);
      if (!keys.some((macKey) => timingSafeEqual(given, tag(macKey, body)))) return undefined;
      const hex = body.subarray(RANDOM_BYTES).toString('hex');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    },
  };
}
