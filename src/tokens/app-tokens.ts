import { type JWTPayload, errors as joseErrors } from 'jose';
import { secretSupersededError } from '../sessions/secret-superseded.js';
import type { Keyring } from './keyring.js';

/**
 * Longest lifetime of an app token in seconds, whatever an app declares. An instance signs app
 * tokens up to the longest `tokenLifetime` its registered apps declared (or the access-token
 * lifetime), the time its retired signing keys stay published (see `retiredKeyRetentionSeconds`).
 */
export const APP_TOKEN_MAX_TTL = 12 * 3600;

/**
 * One kind of app token. Its `typ` (RFC 8725 §3.11 explicit typing) and `audience` keep it apart
 * from access tokens and from every other kind, whichever key signed them.
 */
export interface AppTokenKind {
  /** `typ` header, `<name>+jwt`, e.g. `scoreboard+jwt`; never the access tokens' `at+jwt`. */
  typ: string;
  /** `aud` claim; never the access tokens' audience. */
  audience: string;
  /** Claims a token of this kind must carry besides `exp` (e.g. `sub`). @default [] */
  requiredClaims?: readonly string[];
}

/** Outcome of {@link AppTokens.verify}: the claims, or why the token was refused. */
export type AppTokenCheck = { ok: true; claims: JWTPayload } | { ok: false; reason: 'invalid' | 'expired' };

/**
 * Signed tokens for apps (e.g. Dicery's player tokens), issued with the instance's signing keys
 * without handing out the keys: the core adds `iss`, `kid` and `typ`, checks every one on verify.
 */
export interface AppTokens {
  /**
   * Signs `claims` as a token of `kind`. `exp` (epoch seconds) is required, ahead of `iat` (or now)
   * by at most the access-token lifetime or the longest `tokenLifetime` a registered app declared
   * (never more than {@link APP_TOKEN_MAX_TTL}); else it throws a `RangeError`. `aud` is set from the kind.
   */
  sign(kind: AppTokenKind, claims: JWTPayload & { exp: number }): Promise<string>;
  /** Checks signature, algorithm, `typ`, `iss`, `aud`, expiry and required claims. Never throws for a bad token. */
  verify(token: string, kind: AppTokenKind): Promise<AppTokenCheck>;
  /**
   * Changes whenever a signing key is revoked (`rotate-keys --revoke`). An app that caches
   * verified tokens must drop its cache when this changes: a cached token may be one the revoked
   * key signed, which must stop verifying at once.
   */
  keyRevision(): number;
}

const TYP = /^[a-z0-9][a-z0-9.-]{0,62}\+jwt$/;

/** Creates {@link AppTokens} over the keyring, refusing kinds that could pass for access tokens. */
export function createAppTokens(options: {
  keyring: Keyring;
  clock: () => number;
  /** The access tokens' `typ` and `aud`, which no app kind may reuse. */
  reserved: { typ: string; audience: string };
  /**
   * The longest lifetime signed: retired keys are kept no longer, so a longer token would stop
   * verifying after a rotation. Capped at {@link APP_TOKEN_MAX_TTL}. @default APP_TOKEN_MAX_TTL
   */
  maxTtlSeconds?: number;
  /**
   * The revocation cut-off of `gatehouse revoke-all`: tokens issued before it are refused like
   * access tokens. @default none
   */
  cutoff?: { isCutOff(issuedAtSeconds: number): boolean; readonly cutoff: number };
}): AppTokens {
  const { keyring, clock, reserved, cutoff } = options;
  const maxTtl = Math.min(options.maxTtlSeconds ?? APP_TOKEN_MAX_TTL, APP_TOKEN_MAX_TTL);
  const checkKind = (kind: AppTokenKind) => {
    if (!TYP.test(kind.typ) || kind.typ === reserved.typ) {
      throw new TypeError(
        `App token typ ${JSON.stringify(kind.typ)} must be "<name>+jwt" and not "${reserved.typ}"`,
      );
    }
    if (kind.audience === '' || kind.audience === reserved.audience) {
      throw new TypeError(
        `App token audience ${JSON.stringify(kind.audience)} must be set and not the access tokens'`,
      );
    }
  };
  return {
    // A raised cut-off counts as a revision too: under HS256 the key never changes, and an app's
    // cache of verified tokens must still drop what the cut-off now refuses. Both only grow, so
    // their sum changes whenever either does.
    keyRevision: () => keyring.revision() + (cutoff?.cutoff ?? 0),
    async sign(kind, claims) {
      checkKind(kind);
      // An infinite cut-off (`RevocationList.refuseAll`: gatehouse revoke-all replaced this
      // instance's SECRET_KEY) refuses every token signed from now on: minting one would hand out a
      // dead credential, and a client renewing it would loop (a Dicery seat: renew, 401, renew).
      if (cutoff !== undefined && cutoff.cutoff === Number.POSITIVE_INFINITY) {
        throw secretSupersededError();
      }
      const issuedAt = claims.iat ?? Math.floor(clock() / 1000);
      if (!Number.isInteger(claims.exp) || claims.exp <= issuedAt || claims.exp - issuedAt > maxTtl) {
        throw new RangeError(
          `App token exp must lie within ${maxTtl} s after iat (declare a longer tokenLifetime in the app's settings, up to ${APP_TOKEN_MAX_TTL} s)`,
        );
      }
      return keyring.sign({ ...claims, iat: issuedAt, aud: kind.audience }, kind.typ);
    },
    async verify(token, kind) {
      checkKind(kind);
      try {
        const claims = await keyring.verify(token, {
          typ: kind.typ,
          audience: kind.audience,
          requiredClaims: [...(kind.requiredClaims ?? [])],
          now: clock(),
        });
        if (cutoff !== undefined && typeof claims.iat === 'number' && cutoff.isCutOff(claims.iat)) {
          return { ok: false, reason: 'invalid' };
        }
        return { ok: true, claims };
      } catch (error) {
        return { ok: false, reason: error instanceof joseErrors.JWTExpired ? 'expired' : 'invalid' };
      }
    },
  };
}
