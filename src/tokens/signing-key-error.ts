/** Stable codes of {@link SigningKeyError}. */
export type SigningKeyErrorCode =
  /** A rotation is already waiting out its publication delay; a second would stack two next keys. */
  | 'KEY_ROTATION_PENDING'
  /** Another rotation committed the same generation first (two `rotate-keys` at once). */
  | 'KEY_ROTATION_CONFLICT'
  /** `--revoke` named a kid that is not stored for the configured algorithm. */
  | 'SIGNING_KEY_UNKNOWN'
  /** A key needed for signing cannot be decrypted with SECRET_KEY or SECRET_KEY_PREVIOUS. */
  | 'SIGNING_KEY_SEALED'
  /** No key can sign (every stored key revoked, or none could be decrypted). */
  | 'NO_SIGNING_KEY';

/**
 * An expected failure of key management (`rotate-keys`, start-up), with a stable code. Raised by
 * the core only; the CLI prints its message.
 */
export class SigningKeyError extends Error {
  /** Stable machine-readable code. */
  readonly code: SigningKeyErrorCode;

  constructor(code: SigningKeyErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'SigningKeyError';
    this.code = code;
  }
}
