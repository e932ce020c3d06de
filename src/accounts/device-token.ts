import { createHmac, createSecretKey, hkdfSync, type KeyObject, timingSafeEqual } from 'node:crypto';
import { fillRandom } from '../lib/random-pool.js';

/**
 * Device tokens, after OWASP's "Slow Down Online Guessing Attacks with Device Cookies": a client
 * that has completed a login to an account receives one, and later login attempts that present it
 * are judged on their own small failure counter instead of the account's lockout, so failures
 * from elsewhere can never lock that client out.
 *
 * Layout (73 bytes, 98 base64url characters, fixed whatever the account):
 * `version (1) | account id, a UUID (16) | nonce (16) | issued at, epoch seconds (8) | HMAC-SHA256 (32)`.
 *
 * The version byte also says whether the account's address was proven when the token was issued. A
 * token issued before the first proof of the address may be a stranger's (whoever signed up with
 * someone else's address first, red-team 2026-12c H3), so it stops verifying once the address is
 * proven, with the stranger's other credentials: otherwise it would keep its holder a lane of
 * their own past the owner's lockout (password guesses, reset mails). The owner's own such token
 * ends too; their next sign-in hands them a new one.
 *
 * The MAC covers every byte before it and, without carrying it, the account's password hash as it
 * was at issue; the key is derived from SECRET_KEY with HKDF (RFC 5869) under a label of its own, so
 * a device token can never verify as any other signed value (during a rotation, from
 * SECRET_KEY_PREVIOUS too).
 *
 * Binding the password hash ends every device token of an account when its password changes (a
 * reset, a change, an upgrade of the hash's parameters) with no state to keep: a token is a
 * reward for having known the password, and a reset is how an owner takes the account back from
 * whoever knew it (red-team 2026-12d I6: the ex-attacker's token kept them the owner's reset-mail
 * lane and a login lane of their own for `DEVICE_TOKEN_TTL`). OWASP Forgot Password Cheat Sheet:
 * after a reset, invalidate what the old password granted. The owner's next sign-in hands their
 * device a fresh token. Tokens of the first layout (version 1) were not bound and no longer verify.
 *
 * Both rules are needed: a verification link proves the address without changing the password.
 *
 * The MAC also covers the account's credentials version (`UserRecord.credentialsVersion`), which
 * moves whenever every session of the account is ended: "log out everywhere", a factor removed, an
 * address proven or changed, an admin's reset or disabling. A thief whose session such an event
 * ended loses the lane their sign-in earned with it (red-team 2026-12s M1: a removed passkey's
 * device cookie kept its holder a login and reset-mail lane for `DEVICE_TOKEN_TTL`). Tokens issued
 * before the version was bound no longer verify; the next sign-in hands the device a new one.
 */
/** Issued while the account's address was proven. */
const VERSION_PROVEN = 2;
/** Issued while it was not: valid only until it is. */
const VERSION_BEFORE_PROOF = 3;
const BODY_BYTES = 1 + 16 + 16 + 8;
const TOKEN_BYTES = BODY_BYTES + 32;
/** Length of an encoded token; anything else is refused before any decoding work. */
export const DEVICE_TOKEN_LENGTH = Math.ceil((TOKEN_BYTES * 4) / 3);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Tokens "issued" this far in the future are refused: clocks of several instances drift a little. */
const MAX_CLOCK_SKEW_SECONDS = 300;

/** A device token that verified for the expected account. */
export interface TrustedDevice {
  /** Fixed-size identifier of this device token (from its nonce), used as its failure-counter key. */
  deviceId: string;
  /** When it was issued, epoch ms. */
  issuedAt: number;
}

/** The account a device token is issued for or checked against. */
export interface DeviceAccount {
  /** The account's id, a UUID. */
  id: string;
  /** Whether its address has been proven (`email_verified`); it never goes back to false. */
  emailVerified: boolean;
  /** Its stored password hash: a token verifies only while the hash is the one it was issued under. */
  passwordHash: string;
  /** Its credentials version: a token verifies only while the version is the one it was issued under. */
  credentialsVersion: number;
}

/** Issues and verifies device tokens. */
export interface DeviceTokens {
  /**
   * A new token for `account`, valid for the configured lifetime or until its password changes or
   * its credentials version moves.
   */
  issue(account: DeviceAccount): string;
  /**
   * The device when `token` is authentic, unexpired, was issued for `account` under its current
   * password hash and credentials version and, if issued before its address was proven, the address
   * still is not; undefined for anything else (forged, truncated, expired, another account's, issued
   * before the password last changed or the account's sessions were last all ended, a stranger's
   * from before the proof): such a client is untrusted.
   */
  verify(token: string | undefined, account: DeviceAccount): TrustedDevice | undefined;
}

/** Settings of {@link createDeviceTokens}. */
export interface DeviceTokenOptions {
  /** The server secret (SECRET_KEY); the MAC key is derived from it. */
  secretKey: Uint8Array;
  /**
   * The secret SECRET_KEY replaced (SECRET_KEY_PREVIOUS), during a rotation: tokens it keyed still
   * verify, so a device an instance still on the old secret signed in stays trusted at the new
   * ones. Tokens are issued under `secretKey` alone. @default undefined
   */
  previousSecretKey?: Uint8Array | undefined;
  /** Lifetime in seconds (DEVICE_TOKEN_TTL). */
  ttlSeconds: number;
  /** Epoch ms. */
  clock: () => number;
}

/**
 * The account id a device token names, read without checking it: which account's record to verify
 * it against ({@link DeviceTokens.verify} decides) when nothing else in the request names one (a
 * passkey sign-in, where the account is known only once the assertion is verified). Undefined for
 * anything not shaped like a token.
 */
export function deviceTokenAccount(token: string | undefined): string | undefined {
  if (token === undefined || token.length !== DEVICE_TOKEN_LENGTH) return undefined;
  const bytes = Buffer.from(token, 'base64url');
  if (bytes.length !== TOKEN_BYTES) return undefined;
  const hex = bytes.subarray(1, 17).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Creates {@link DeviceTokens}. */
export function createDeviceTokens(options: DeviceTokenOptions): DeviceTokens {
  // A KeyObject, not bytes: createHmac would otherwise wrap the bytes in a new key on every MAC
  // (≈ 1.7 k instructions of each ≈ 28 k, issue 10).
  const keyOf = (secret: Uint8Array) =>
    createSecretKey(Buffer.from(hkdfSync('sha256', secret, '', 'gatehouse device token v1', 32)));
  const key = keyOf(options.secretKey);
  const keys: KeyObject[] =
    options.previousSecretKey === undefined ? [key] : [key, keyOf(options.previousSecretKey)];
  // The body and the version have fixed lengths, so appending the hash after them is unambiguous.
  const version = Buffer.alloc(8);
  const mac = (macKey: KeyObject, body: Buffer, { passwordHash, credentialsVersion }: DeviceAccount) => {
    version.writeBigUInt64BE(BigInt(credentialsVersion));
    return createHmac('sha256', macKey).update(body).update(version).update(passwordHash).digest();
  };
  return {
    issue(account) {
      const { id: accountId, emailVerified } = account;
      if (!UUID.test(accountId)) throw new TypeError('device tokens are issued for UUID account ids');
      const body = Buffer.alloc(BODY_BYTES);
      body.writeUInt8(emailVerified ? VERSION_PROVEN : VERSION_BEFORE_PROOF, 0);
      Buffer.from(accountId.replaceAll('-', ''), 'hex').copy(body, 1);
      fillRandom(body, 17, 16);
      body.writeBigUInt64BE(BigInt(Math.floor(options.clock() / 1000)), 33);
      return Buffer.concat([body, mac(key, body, account)]).toString('base64url');
    },
    verify(token, account) {
      const { id: accountId, emailVerified } = account;
      if (token === undefined || token.length !== DEVICE_TOKEN_LENGTH || !UUID.test(accountId))
        return undefined;
      const bytes = Buffer.from(token, 'base64url');
      // Buffer.from drops characters outside the alphabet, so a mangled token comes out short.
      if (bytes.length !== TOKEN_BYTES || bytes.toString('base64url') !== token) return undefined;
      const body = bytes.subarray(0, BODY_BYTES);
      const given = bytes.subarray(BODY_BYTES);
      if (!keys.some((macKey) => timingSafeEqual(given, mac(macKey, body, account)))) return undefined;
      const version = body.readUInt8(0);
      if (version !== VERSION_PROVEN && version !== VERSION_BEFORE_PROOF) return undefined;
      if (version === VERSION_BEFORE_PROOF && emailVerified) return undefined;
      if (body.subarray(1, 17).toString('hex') !== accountId.replaceAll('-', '')) return undefined;
      const issuedAt = Number(body.readBigUInt64BE(33)) * 1000;
      const now = options.clock();
      if (issuedAt > now + MAX_CLOCK_SKEW_SECONDS * 1000) return undefined;
      if (issuedAt + options.ttlSeconds * 1000 <= now) return undefined;
      return { deviceId: body.subarray(17, 33).toString('base64url'), issuedAt };
    },
  };
}
