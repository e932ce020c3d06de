import { randomUUID } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { type AppTokenKind, type AppTokens, BoundedMap } from '../../../index.js';

/**
 * `typ` header of room tokens. Access tokens are `at+jwt` (RFC 9068), so with explicit typing
 * (RFC 8725 §3.11) neither kind can be replayed as the other, whichever key signed them.
 */
export const ROOM_TOKEN_TYP = 'dicery-room+jwt';

/** `aud` of room tokens: distinct from the access tokens' audience as a second, independent fence. */
export const ROOM_TOKEN_AUDIENCE = 'dicery';

/** Namespaced private claim naming the room (RFC 7519 §4.3: collision-resistant claim names). */
export const ROOM_CLAIM = 'dicery_room';

/**
 * Private claim carrying the seat generation the token was minted for (issue 14): a claim code
 * moves a seat to another device and bumps its generation, so tokens of the old device stop at
 * once. Absent (tokens from before seats, bearer joins) counts as 0.
 */
export const SEAT_GENERATION_CLAIM = 'dicery_seat_gen';

/** Longest lifetime of a room token in seconds, whatever the configuration says (issue #5: ≤ 12 h). */
export const ROOM_TOKEN_MAX_TTL = 12 * 3600;

/** The app token kind of room tokens (see `AppTokens`). */
export const ROOM_TOKEN_KIND: AppTokenKind = {
  typ: ROOM_TOKEN_TYP,
  audience: ROOM_TOKEN_AUDIENCE,
  requiredClaims: ['sub', ROOM_CLAIM, 'jti'],
};

/** Who a valid room token speaks for. */
export interface RoomTokenIdentity {
  /** The player's id (`sub`). */
  playerId: string;
  /** The room code (`dicery_room`). */
  roomCode: string;
  /** When the token expires, epoch ms (`exp`). */
  expiresAt: number;
  /**
   * When it was issued, epoch seconds (`iat`): an event stream opened with it ends when
   * `gatehouse revoke-all` raises the cut-off past it.
   */
  issuedAt: number;
  /** The seat generation it was minted for ({@link SEAT_GENERATION_CLAIM}). */
  seatGeneration: number;
}

/** Why a room token was refused; the HTTP layer answers every one with 401 `invalid_token`. */
export type RoomTokenFailure = 'invalid' | 'expired';

/** Outcome of {@link RoomTokens.verify}. */
export type RoomTokenCheck = ({ ok: true } & RoomTokenIdentity) | { ok: false; reason: RoomTokenFailure };

/** A freshly issued room token. */
export interface IssuedRoomToken {
  token: string;
  /** Epoch ms. */
  expiresAt: number;
  /** Seconds from now until `expiresAt` (the cookie's `Max-Age`). */
  expiresIn: number;
}

/**
 * Issues and verifies Dicery room tokens: JWTs that say "player `sub` is in room `dicery_room`".
 * A valid token proves only what it was issued for; whether the player is still present and the
 * room still open is the room service's answer, asked on every request by the HTTP layer.
 */
export interface RoomTokens {
  /**
   * Signs a token for `playerId` in room `roomCode` (a normalized code), for seat generation
   * `seatGeneration` (default 0).
   */
  issue(roomCode: string, playerId: string, seatGeneration?: number): Promise<IssuedRoomToken>;
  /** Checks signature, algorithm, `typ`, `iss`, `aud`, expiry and claims. Never throws for a bad token. */
  verify(token: string): Promise<RoomTokenCheck>;
}

/** Options of {@link createRoomTokens}. */
export interface RoomTokensOptions {
  /** The core's app tokens (`gatehouse.appTokens`), which sign with the instance's keys. */
  tokens: AppTokens;
  /** Current time, epoch ms. */
  clock: () => number;
  /** Token lifetime in seconds; capped at {@link ROOM_TOKEN_MAX_TTL}. */
  ttlSeconds: number;
  /**
   * Verified tokens remembered, so repeat requests skip signature verification.
   * @default 10000
   */
  cacheSize?: number;
}

/** Longest token string looked at; real ones are ~350 bytes, and this bounds work and cache keys. */
const MAX_TOKEN_LENGTH = 4096;

/**
 * True when `token` is a JWT whose header claims `typ: dicery-room+jwt`. This only routes a bearer
 * token to the right verifier (room or account); it proves nothing, and the token is then verified
 * in full, `typ` included.
 */
export function looksLikeRoomToken(token: string): boolean {
  if (token.length > MAX_TOKEN_LENGTH) return false;
  try {
    return decodeProtectedHeader(token).typ === ROOM_TOKEN_TYP;
  } catch {
    return false;
  }
}

/** Creates the {@link RoomTokens} issuer/verifier. */
export function createRoomTokens(options: RoomTokensOptions): RoomTokens {
  const { tokens, clock } = options;
  if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 1) {
    throw new Error(`Room token lifetime must be a positive number of seconds, got ${options.ttlSeconds}`);
  }
  const ttlSeconds = Math.min(options.ttlSeconds, ROOM_TOKEN_MAX_TTL);
  const cacheSize = options.cacheSize ?? 10_000;
  // Keyed by the whole token string (DESIGN.md §6): a hit skips the signature check, the costly
  // part, while expiry is still checked on every use.
  const verified = new BoundedMap<string, RoomTokenIdentity>(cacheSize);
  // A revoked signing key (the key revision changes) invalidates every cached verification.
  let keyRevision = tokens.keyRevision();

  return {
    async issue(roomCode, playerId, seatGeneration = 0) {
      const now = clock();
      const iat = Math.floor(now / 1000);
      const exp = iat + ttlSeconds;
      const token = await tokens.sign(ROOM_TOKEN_KIND, {
        sub: playerId,
        [ROOM_CLAIM]: roomCode,
        ...(seatGeneration === 0 ? {} : { [SEAT_GENERATION_CLAIM]: seatGeneration }),
        iat,
        exp,
        jti: randomUUID(),
      });
      return { token, expiresAt: exp * 1000, expiresIn: Math.max(0, exp - Math.ceil(now / 1000)) };
    },

    async verify(token) {
      if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'invalid' };
      const now = clock();
      if (tokens.keyRevision() !== keyRevision) {
        keyRevision = tokens.keyRevision();
        verified.clear();
      }
      let identity = verified.get(token);
      if (identity === undefined) {
        const check = await tokens.verify(token, ROOM_TOKEN_KIND);
        if (!check.ok) return { ok: false, reason: check.reason };
        const payload = check.claims;
        const { sub, exp, iat } = payload;
        const room = payload[ROOM_CLAIM];
        if (
          typeof sub !== 'string' ||
          sub === '' ||
          typeof room !== 'string' ||
          room === '' ||
          exp === undefined ||
          typeof iat !== 'number'
        ) {
          return { ok: false, reason: 'invalid' };
        }
        const generation = payload[SEAT_GENERATION_CLAIM] ?? 0;
        if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) {
          return { ok: false, reason: 'invalid' };
        }
        identity = {
          playerId: sub,
          roomCode: room,
          expiresAt: exp * 1000,
          issuedAt: iat,
          seatGeneration: generation,
        };
        verified.set(token, identity);
      }
      if (identity.expiresAt <= now) {
        verified.delete(token);
        return { ok: false, reason: 'expired' };
      }
      return { ok: true, ...identity };
    },
  };
}
