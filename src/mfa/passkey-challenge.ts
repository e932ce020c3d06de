import { randomBytes } from 'node:crypto';
import { createRotatingSealer, openSealedJson } from '../tokens/token-sealer.js';

/** Which WebAuthn ceremony a challenge belongs to. */
export type PasskeyCeremony = 'register' | 'login' | 'reauthenticate';

/** What the server remembers of a ceremony between its options and the authenticator's answer. */
export interface PasskeyChallenge {
  ceremony: PasskeyCeremony;
  /** base64url challenge the authenticator signs (WebAuthn §13.4.3: ≥ 16 random bytes; we use 32). */
  challenge: string;
  /** The signed-in account (register, reauthenticate); null for a passwordless sign-in. */
  userId: string | null;
  /** The session that asked (register, reauthenticate); null for a sign-in. */
  sessionId: string | null;
  /** Unique per challenge: the key of its single use. */
  nonce: string;
  /** Epoch ms after which it is refused. */
  expiresAt: number;
}

/** Seals and opens `passkey_token`s. */
export interface PasskeyChallenges {
  /** A new random challenge, sealed into an opaque `passkey_token`. */
  issue(challenge: Omit<PasskeyChallenge, 'challenge' | 'nonce'>): { token: string; challenge: string };
  /** The challenge when `token` opens, is unexpired and belongs to `ceremony`; undefined otherwise. */
  open(token: string, ceremony: PasskeyCeremony, now: number): PasskeyChallenge | undefined;
}

// HKDF purpose label of its own (RFC 5869 §3.2): a passkey_token never opens as another sealed value.
const PURPOSE = 'gatehouse passkey-challenge v1';
const CONTEXT = 'passkey_token';
/** Far longer than an honest token (about 250 bytes): nothing oversized is decrypted. */
export const MAX_PASSKEY_TOKEN_LENGTH = 1024;

interface Payload {
  k: PasskeyCeremony;
  c: string;
  u: string | null;
  s: string | null;
  n: string;
  e: number;
}

function isPayload(value: unknown): value is Payload {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  return (
    (p.k === 'register' || p.k === 'login' || p.k === 'reauthenticate') &&
    typeof p.c === 'string' &&
    (p.u === null || typeof p.u === 'string') &&
    (p.s === null || typeof p.s === 'string') &&
    typeof p.n === 'string' &&
    typeof p.e === 'number'
  );
}

/**
 * Challenges are stateless, as `mfa_token`s are: sealed (AES-256-GCM) under a key derived from
 * SECRET_KEY, so asking for options costs no storage at all (anyone may ask for sign-in options),
 * any instance can open one (one still on `previousSecretKey`, SECRET_KEY_PREVIOUS, during a
 * rolling rotation included), and it expires on its own. Single use is enforced by the caller in
 * the counter store, keyed by nonce, once an answer has verified.
 */
export function createPasskeyChallenges(
  secretKey: Uint8Array,
  previousSecretKey?: Uint8Array,
): PasskeyChallenges {
  const sealer = createRotatingSealer(secretKey, previousSecretKey, PURPOSE);
  return {
    issue(challenge) {
      const value = randomBytes(32).toString('base64url');
      const payload: Payload = {
        k: challenge.ceremony,
        c: value,
        u: challenge.userId,
        s: challenge.sessionId,
        n: randomBytes(16).toString('base64url'),
        e: challenge.expiresAt,
      };
      return { token: sealer.seal(JSON.stringify(payload), CONTEXT), challenge: value };
    },
    open(token, ceremony, now) {
      const payload = openSealedJson(sealer, token, CONTEXT, MAX_PASSKEY_TOKEN_LENGTH, isPayload);
      if (payload === undefined || payload.k !== ceremony || payload.e <= now) return undefined;
      return {
        ceremony: payload.k,
        challenge: payload.c,
        userId: payload.u,
        sessionId: payload.s,
        nonce: payload.n,
        expiresAt: payload.e,
      };
    },
  };
}
