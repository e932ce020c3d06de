import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Encrypts a token for storage and decrypts it again. Used for the one token Gatehouse must be
 * able to hand out twice: the successor of a just-spent refresh token (the refresh grace
 * interval), while every other token is stored only as a hash.
 */
export interface TokenSealer {
  /** Encrypts `token`, bound to `context` (the stored row it belongs to). */
  seal(token: string, context: string): string;
  /** Decrypts what {@link TokenSealer.seal} made for the same `context`; undefined if it does not open. */
  open(sealed: string, context: string): string | undefined;
}

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
// Domain separation (RFC 5869 §3.2): each purpose gets its own key derived from SECRET_KEY, so a
// sealed value of one kind never opens as another.
const REFRESH_SUCCESSOR_PURPOSE = 'gatehouse refresh-successor seal v1';

/**
 * Creates a {@link TokenSealer} with AES-256-GCM under a key derived from `secret` by HKDF-SHA-256
 * (RFC 5869). The context goes in as additional authenticated data, so a sealed token copied to
 * another row does not open there. A random 96-bit IV per seal (NIST SP 800-38D §8.2.2) is safe
 * for far more seals than a deployment makes under one key. During a `SECRET_KEY` rotation it
 * also opens what `previousSecret` sealed (as {@link createRotatingSealer}).
 */
export function createTokenSealer(secret: Uint8Array, previousSecret?: Uint8Array): TokenSealer {
  return createRotatingSealer(secret, previousSecret, REFRESH_SUCCESSOR_PURPOSE);
}

/**
 * A sealer of `purpose` for a `SECRET_KEY` rotation: seals under `secret` alone, opens under
 * `secret` and then `previousSecret` (`SECRET_KEY_PREVIOUS`, when set), so a value an instance
 * still on the old secret sealed opens at one already on the new secret.
 */
export function createRotatingSealer(
  secret: Uint8Array,
  previousSecret: Uint8Array | undefined,
  purpose: string,
): TokenSealer {
  const current = createSealer(secret, purpose);
  const previous = previousSecret === undefined ? undefined : createSealer(previousSecret, purpose);
  return {
    seal: (token, context) => current.seal(token, context),
    open: (sealed, context) => current.open(sealed, context) ?? previous?.open(sealed, context),
  };
}

/**
 * Like {@link createTokenSealer}, for another `purpose` (the HKDF `info` label, RFC 5869 §3.2):
 * values sealed for one purpose never open under another, even with the same secret.
 */
export function createSealer(secret: Uint8Array, purpose: string): TokenSealer {
  const key = Buffer.from(hkdfSync('sha256', secret, new Uint8Array(0), purpose, 32));
  return {
    seal(token, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
      return `${VERSION}.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`;
    },
    open(sealed, context) {
      const [version, data] = sealed.split('.');
      if (version !== VERSION || data === undefined) return undefined;
      const bytes = Buffer.from(data, 'base64url');
      if (bytes.length <= IV_BYTES + TAG_BYTES) return undefined;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(context));
        decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
        const body = bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES);
        return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
      } catch {
        // A wrong key (SECRET_KEY changed) or tampered data: the token is simply not available.
        return undefined;
      }
    },
  };
}

/**
 * Opens a sealed JSON value and checks its shape: undefined when `sealed` is longer than
 * `maxLength` (checked before any decryption, so an oversized input costs nothing), does not open
 * under `context`, is not JSON, or fails `isValue`. Used by the stateless sealed tokens
 * (`mfa_token`, passkey challenges).
 */
export function openSealedJson<T>(
  sealer: TokenSealer,
  sealed: string,
  context: string,
  maxLength: number,
  isValue: (value: unknown) => value is T,
): T | undefined {
  if (sealed.length > maxLength) return undefined;
  const json = sealer.open(sealed, context);
  if (json === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  return isValue(value) ? value : undefined;
}
