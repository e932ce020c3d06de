import { randomBytes } from 'node:crypto';
import { createRotatingSealer, openSealedJson } from '../tokens/token-sealer.js';

/** Which login a second-factor challenge continues: the token endpoint's or the browser's. */
export type ChallengeFlow = 'token' | 'cookie';

/** What a right password established, carried to the second step inside the `mfa_token`. */
export interface MfaChallenge {
  userId: string;
  /** The scopes the first step granted (the token endpoint's); the browser flow takes the role's. */
  scopes: string[];
  /** The client that asked (RFC 9068 `client_id`). */
  clientId: string;
  flow: ChallengeFlow;
  /**
   * The trusted device the first step presented (its counter key), when it had a valid device
   * token: its second-factor failures count on its own counter, not the account's.
   */
  deviceId: string | undefined;
  /**
   * The account's credentials version when the password was checked (`UserRecord.credentialsVersion`):
   * once it moves (a reset, a password change, "log out everywhere"…), the token finishes nothing
   * (red-team 2026-12d I3).
   */
  credentialsVersion: number;
  /** Unique per challenge: the key of its failure counter and of its single use. */
  nonce: string;
  /** Epoch ms after which the token is refused. */
  expiresAt: number;
}

/** Seals and opens `mfa_token`s. */
export interface MfaTokens {
  /** An opaque token carrying `challenge` (AES-256-GCM: the client can neither read nor alter it). */
  issue(challenge: Omit<MfaChallenge, 'nonce'>): { token: string; nonce: string };
  /** The challenge when `token` opens, is unexpired and belongs to `flow`; undefined otherwise. */
  open(token: string, flow: ChallengeFlow, now: number): MfaChallenge | undefined;
}

// HKDF purpose label of its own (RFC 5869 §3.2): an mfa_token never opens as another sealed value.
const PURPOSE = 'gatehouse mfa-token v1';
const CONTEXT = 'mfa_token';
/** Far longer than any honest token (a few hundred bytes), so no oversized input is decrypted. */
const MAX_TOKEN_LENGTH = 2048;

interface Payload {
  u: string;
  s: string[];
  c: string;
  f: ChallengeFlow;
  d: string | null;
  /** The credentials version. Tokens sealed before it was carried lack it and open as nothing. */
  v: number;
  n: string;
  e: number;
}

function isPayload(value: unknown): value is Payload {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  return (
    typeof p.u === 'string' &&
    Array.isArray(p.s) &&
    p.s.every((scope) => typeof scope === 'string') &&
    typeof p.c === 'string' &&
    (p.f === 'token' || p.f === 'cookie') &&
    (p.d === null || typeof p.d === 'string') &&
    typeof p.v === 'number' &&
    typeof p.n === 'string' &&
    typeof p.e === 'number'
  );
}

/**
 * `mfa_token`s are stateless: sealed under a key derived from SECRET_KEY, so a challenge costs no
 * row (only a right password gets one, and successful logins are limited per account), and any
 * instance can open it, one still on `previousSecretKey` (SECRET_KEY_PREVIOUS) during a rolling
 * rotation included. Single use and the failure cap live in the counter store, keyed by nonce.
 */
export function createMfaTokens(secretKey: Uint8Array, previousSecretKey?: Uint8Array): MfaTokens {
  const sealer = createRotatingSealer(secretKey, previousSecretKey, PURPOSE);
  return {
    issue(challenge) {
      const nonce = randomBytes(16).toString('base64url');
      const payload: Payload = {
        u: challenge.userId,
        s: challenge.scopes,
        c: challenge.clientId,
        f: challenge.flow,
        d: challenge.deviceId ?? null,
        v: challenge.credentialsVersion,
        n: nonce,
        e: challenge.expiresAt,
      };
      return { token: sealer.seal(JSON.stringify(payload), CONTEXT), nonce };
    },
    open(token, flow, now) {
      const payload = openSealedJson(sealer, token, CONTEXT, MAX_TOKEN_LENGTH, isPayload);
      if (payload === undefined || payload.f !== flow || payload.e <= now) return undefined;
      return {
        userId: payload.u,
        scopes: payload.s,
        clientId: payload.c,
        flow: payload.f,
        deviceId: payload.d ?? undefined,
        credentialsVersion: payload.v,
        nonce: payload.n,
        expiresAt: payload.e,
      };
    },
  };
}
