import { createRotatingSealer } from './token-sealer.js';

/**
 * Encryption at rest for an app's secrets (Dicery's roll-log signing key), under a key derived
 * from `SECRET_KEY` for the app's own purpose, so the app never sees `SECRET_KEY` and a value it
 * seals never opens as one of the core's (signing keys, refresh successors, TOTP secrets).
 */
export interface AppSealer {
  /**
   * Encrypts `plaintext` (AES-256-GCM), bound to `context` (say, the id of the row it is stored
   * in), so a sealed value copied to another row does not open there.
   */
  seal(plaintext: string, context: string): string;
  /**
   * Decrypts what {@link AppSealer.seal} made for the same purpose and `context`, under
   * `SECRET_KEY` or, during a rotation, `SECRET_KEY_PREVIOUS`; undefined when it does not open
   * (wrong context, tampered, or sealed under a secret no longer configured). Re-seal a value that
   * opened only under the previous secret, or it is lost once that secret is removed.
   */
  open(sealed: string, context: string): string | undefined;
}

/** What an app's sealing purpose may look like: short, lower-case, no spaces. */
const PURPOSE = /^[a-z0-9][a-z0-9.:-]{0,62}$/;

/**
 * Creates the {@link AppSealer} of `purpose` (for `Gatehouse.appSealer`). Throws a `TypeError` for
 * a malformed purpose: that is a programming error, found at start-up.
 */
export function createAppSealer(
  secret: Uint8Array,
  previousSecret: Uint8Array | undefined,
  purpose: string,
): AppSealer {
  if (!PURPOSE.test(purpose)) {
    throw new TypeError(`App sealing purpose must match ${PURPOSE}: ${JSON.stringify(purpose)}`);
  }
  // HKDF info label of its own per app purpose (RFC 5869 §3.2); the `app` prefix keeps every app
  // purpose apart from the core's labels.
  return createRotatingSealer(secret, previousSecret, `gatehouse app seal v1 app:${purpose}`);
}
