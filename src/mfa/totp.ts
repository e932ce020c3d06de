import { Secret, TOTP } from 'otpauth';

/**
 * RFC 6238 parameters. SHA-1, 6 digits and 30 s are what every authenticator app implements (Google
 * Authenticator ignores the `algorithm` parameter of the URI), and RFC 6238 §1.2 allows SHA-1 for
 * TOTP: HMAC-SHA-1's security does not rest on SHA-1's collision resistance.
 */
const PERIOD_SECONDS = 30;
const DIGITS = 6;
const ALGORITHM = 'SHA1';
/** RFC 4226 §4 R6 asks for 128 bits and recommends 160 (the HMAC-SHA-1 output size). */
const SECRET_BYTES = 20;
/**
 * One step either side (RFC 6238 §5.2 "at most one time step" of network delay): ±30 s of clock
 * drift or typing time. A wider window multiplies an online guesser's odds.
 */
const WINDOW = 1;

const CODE = /^[0-9]{6}$/;

/** A new random shared secret, base32 (RFC 4648), as authenticator apps take it. */
export function generateTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32;
}

function totpOf(secret: string, account = '', issuer = ''): TOTP {
  return new TOTP({
    issuer,
    label: account,
    algorithm: ALGORITHM,
    digits: DIGITS,
    period: PERIOD_SECONDS,
    secret: Secret.fromBase32(secret),
  });
}

/** The `otpauth://totp/…` URI of Google's Key Uri Format, for the QR code an app scans. */
export function totpUri(secret: string, account: string, issuer: string): string {
  return totpOf(secret, account, issuer).toString();
}

/** True when `code` has a TOTP code's shape (six digits, spaces removed by the caller). */
export function looksLikeTotpCode(code: string): boolean {
  return CODE.test(code);
}

/**
 * The RFC 6238 time step `code` is valid for at `now` (epoch ms), within ±1 step; undefined when it
 * is valid for none. The caller refuses a step at or before the last one accepted (replay).
 */
export function matchTotpStep(secret: string, code: string, now: number): number | undefined {
  if (!looksLikeTotpCode(code)) return undefined;
  const totp = totpOf(secret);
  const delta = totp.validate({ token: code, timestamp: now, window: WINDOW });
  if (delta === null) return undefined;
  return totp.counter({ timestamp: now }) + delta;
}

/** The code of `secret` at `now` (epoch ms): for tests and scripted clients. */
export function generateTotpCode(secret: string, now: number): string {
  return totpOf(secret).generate({ timestamp: now });
}
