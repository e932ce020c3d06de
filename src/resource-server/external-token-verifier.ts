import { decodeJwt, errors, type JWTPayload, jwtVerify } from 'jose';
import { BoundedMap } from '../lib/bounded-map.js';
import {
  DEFAULT_EXTERNAL_ALGORITHMS,
  type ExternalIssuer,
  isInternalHost,
} from './external-issuer-schema.js';
import { createRemoteKeySet, KeySetUnavailableError, type RemoteKeySet } from './remote-key-set.js';

/** A caller proven by an access token of an external issuer (resource-server mode). */
export interface ExternalPrincipal {
  /** The issuer that signed the token (its `iss`, one of `EXTERNAL_ISSUERS`). */
  readonly issuer: string;
  /** The token's `sub`: a user or a client at that issuer, unrelated to Gatehouse's accounts. */
  readonly subject: string;
  /** The client the token was issued to (`client_id`, RFC 9068 §2.2, or `azp`), when stated. */
  readonly clientId: string | undefined;
  /** Scopes read from the issuer's `scopeClaim`. */
  readonly scopes: readonly string[];
  /** When the token expires, epoch ms. */
  readonly expiresAt: number;
  /** Every verified claim, for what the scopes do not say (a tenant, roles of that provider). */
  readonly claims: Readonly<JWTPayload>;
}

/** Why an external token was refused. */
export type ExternalTokenFailure = 'invalid' | 'expired' | 'unavailable' | 'key-unknown';

/** Outcome of checking an external token. */
export type ExternalTokenCheck =
  | { ok: true; principal: ExternalPrincipal }
  | {
      ok: false;
      reason: ExternalTokenFailure;
      /** Safe to show the caller (RFC 6750 `error_description`). */
      description: string;
      /**
       * With `unavailable` (the issuer's keys cannot be had) and `key-unknown` (the token's `kid`
       * is not in the keys held, and a refetch is not allowed yet: it may be a rotation's new key):
       * seconds until the issuer's keys may be fetched again.
       */
      retryAfterSeconds?: number;
    };

/** Verifies access tokens of the configured external issuers (see `EXTERNAL_ISSUERS`). */
export interface ExternalTokenVerifier {
  /** The configured issuers, in order. */
  readonly issuers: readonly string[];
  /**
   * The `iss` of `token` when it names a configured external issuer, read *without* verifying
   * anything: it only picks the verifier (RFC 8725 §3.10), never grants access.
   */
  issuerOf(token: string): string | undefined;
  /** The verdict when memory alone decides it (a token verified before); undefined otherwise. */
  peek(token: string): ExternalTokenCheck | undefined;
  /** Verifies `token` against its issuer's keys and rules. Never rejects. */
  verify(token: string): Promise<ExternalTokenCheck>;
}

/** Options of {@link createExternalTokenVerifier}. */
export interface ExternalTokenVerifierOptions {
  issuers: readonly ExternalIssuer[];
  /** Bound on one fetch of an issuer's metadata and keys (`EXTERNAL_ISSUER_TIMEOUT`). */
  timeoutMs: number;
  /** Epoch ms; also the "now" of `exp` and `nbf`. */
  clock: () => number;
  warn: (message: string, details: Record<string, unknown>) => void;
  /** Verified tokens remembered, across issuers. @default 10000 */
  maxCachedTokens?: number;
}

interface IssuerRules {
  readonly settings: ExternalIssuer;
  readonly keys: RemoteKeySet;
  readonly typs: ReadonlySet<string>;
}

interface CachedVerdict {
  readonly principal: ExternalPrincipal;
  readonly rules: IssuerRules;
  readonly generation: number;
}

/** RFC 7515 §4.1.9: `typ` is compared case-insensitively, `application/` omitted. */
function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

function scopesOf(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter((scope) => scope !== '');
  if (Array.isArray(value)) return value.filter((scope): scope is string => typeof scope === 'string');
  return [];
}

/**
 * Builds the verifier. State: one {@link RemoteKeySet} per configured issuer (bounded by
 * `MAX_EXTERNAL_ISSUERS`) and a cache of verified tokens bounded by `maxCachedTokens` (oldest
 * first); a cached verdict is dropped when its issuer's key set is re-fetched or grows stale, so
 * a key the provider removed stops working within `jwksMaxAge` once the provider answers, and
 * within `jwksMaxAge + jwksMaxStale` while it does not.
 */
export function createExternalTokenVerifier(options: ExternalTokenVerifierOptions): ExternalTokenVerifier {
  const { clock } = options;
  const rulesByIssuer = new Map<string, IssuerRules>();
  for (const settings of options.issuers) {
    const typs = typeof settings.typ === 'string' ? [settings.typ] : (settings.typ ?? ['at+jwt']);
    rulesByIssuer.set(settings.issuer, {
      settings,
      typs: new Set(typs.map(normalizeTyp)),
      keys: createRemoteKeySet({
        issuer: settings.issuer,
        jwksUri: settings.jwksUri,
        internal:
          settings.allowInternalAddresses === true || isInternalHost(new URL(settings.issuer).hostname),
        timeoutMs: options.timeoutMs,
        maxAgeMs: (settings.jwksMaxAge ?? 600) * 1000,
        cooldownMs: (settings.jwksCooldown ?? 30) * 1000,
        clockToleranceMs: (settings.clockTolerance ?? 30) * 1000,
        maxStaleMs: (settings.jwksMaxStale ?? 3600) * 1000,
        clock,
        warn: options.warn,
      }),
    });
  }
  const verified = new BoundedMap<string, CachedVerdict>(options.maxCachedTokens ?? 10_000);

  /** Verifies `token`; `generation` is the key set generation its key came from (0 when none). */
  const verifyWith = async (
    token: string,
    rules: IssuerRules,
  ): Promise<{ check: ExternalTokenCheck; generation: number }> => {
    let generation = 0;
    const resolve: RemoteKeySet['resolve'] = async (header, input) => {
      const key = await rules.keys.resolve(header, input);
      generation = rules.keys.generation();
      return key;
    };
    const check = await checkWith(token, rules, resolve);
    return { check, generation };
  };

  const checkWith = async (
    token: string,
    rules: IssuerRules,
    resolve: RemoteKeySet['resolve'],
  ): Promise<ExternalTokenCheck> => {
    const { settings } = rules;
    const tolerance = settings.clockTolerance ?? 30;
    let payload: JWTPayload;
    let typ: unknown;
    try {
      const result = await jwtVerify(token, resolve, {
        issuer: settings.issuer,
        audience: settings.audience,
        algorithms: [...(settings.algorithms ?? DEFAULT_EXTERNAL_ALGORITHMS)],
        clockTolerance: tolerance,
        currentDate: new Date(clock()),
        // RFC 9068 §2.2: exp and sub are required; without exp a token would never end.
        requiredClaims: ['exp', 'sub'],
      });
      payload = result.payload;
      typ = result.protectedHeader.typ;
    } catch (error) {
      return failure(error);
    }
    // RFC 8725 §3.11: explicit typing keeps an ID token or another JWT from passing as an access token.
    if (typeof typ !== 'string' || !rules.typs.has(normalizeTyp(typ))) {
      return { ok: false, reason: 'invalid', description: 'The access token has the wrong type (typ).' };
    }
    if (typeof payload.sub !== 'string' || payload.sub === '' || typeof payload.exp !== 'number') {
      return { ok: false, reason: 'invalid', description: 'The access token lacks sub or exp.' };
    }
    // RFC 8725 §3.12 (cross-JWT confusion): with `typ: JWT` configured, as Keycloak and Auth0
    // need, the header no longer tells an ID token from an access token, and Keycloak's ID token
    // for a client whose id is the API's audience passed (red-team 2026-12m E4). `at_hash` and
    // `c_hash` exist only in ID tokens (OpenID Connect Core §3.1.3.6, §3.3.2.11); Keycloak also
    // names its ID tokens `typ: ID` in the payload.
    if (payload.at_hash !== undefined || payload.c_hash !== undefined || payload.typ === 'ID') {
      return { ok: false, reason: 'invalid', description: 'An ID token is not an access token.' };
    }
    // An `iat` in the future (beyond the tolerance) is a token no honest issuer made yet.
    if (typeof payload.iat === 'number' && payload.iat > clock() / 1000 + tolerance) {
      return { ok: false, reason: 'invalid', description: 'The access token is issued in the future (iat).' };
    }
    // A sender-constrained token (`cnf`: DPoP's jkt, RFC 9449 §6; mTLS's x5t#S256, RFC 8705 §3.1)
    // is only valid with a proof of its key, which a bearer request does not carry: accepting it
    // as a bearer token would undo the binding (RFC 9449 §7.1, RFC 9700 §2.2). Refused until this
    // resource server checks proofs.
    if (payload.cnf !== undefined) {
      return {
        ok: false,
        reason: 'invalid',
        description: 'The access token is sender-constrained (cnf); bearer use is refused.',
      };
    }
    const clientId =
      typeof payload.client_id === 'string'
        ? payload.client_id
        : typeof payload.azp === 'string'
          ? payload.azp
          : undefined;
    const principal: ExternalPrincipal = Object.freeze({
      issuer: settings.issuer,
      subject: payload.sub,
      clientId,
      scopes: Object.freeze(scopesOf(payload[settings.scopeClaim ?? 'scope'])),
      expiresAt: (payload.exp + tolerance) * 1000,
      claims: Object.freeze(payload),
    });
    return { ok: true, principal };
  };

  const issuerOf = (token: string): string | undefined => {
    if (rulesByIssuer.size === 0) return undefined;
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return undefined;
    }
    return typeof iss === 'string' && rulesByIssuer.has(iss) ? iss : undefined;
  };
  const peek = (token: string): ExternalTokenCheck | undefined => {
    const entry = verified.get(token);
    if (entry === undefined) return undefined;
    if (entry.generation !== entry.rules.keys.generation() || entry.rules.keys.isStale()) {
      verified.delete(token);
      return undefined;
    }
    if (clock() >= entry.principal.expiresAt) {
      verified.delete(token);
      return { ok: false, reason: 'expired', description: 'The access token expired.' };
    }
    return { ok: true, principal: entry.principal };
  };

  return {
    issuers: [...rulesByIssuer.keys()],
    issuerOf,
    peek,
    async verify(token) {
      const cached = peek(token);
      if (cached !== undefined) return cached;
      const issuer = issuerOf(token);
      const rules = issuer === undefined ? undefined : rulesByIssuer.get(issuer);
      if (rules === undefined) {
        return {
          ok: false,
          reason: 'invalid',
          description: 'The access token is not from a trusted issuer.',
        };
      }
      const { check, generation } = await verifyWith(token, rules);
      // Remembered under the generation of the key set that had its key: when that set is
      // replaced (a removed key among the changes), the verdict is dropped.
      if (check.ok) verified.set(token, { principal: check.principal, rules, generation });
      return check;
    },
  };
}

/** The verdict for a jose (or key set) error; descriptions are fixed texts, never token contents. */
function failure(error: unknown): ExternalTokenCheck {
  if (error instanceof KeySetUnavailableError && error.keyUnknown) {
    return {
      ok: false,
      reason: 'key-unknown',
      description: "The token's signing key is not among the keys held for its issuer yet; retry later.",
      retryAfterSeconds: error.retryAfterSeconds,
    };
  }
  if (error instanceof KeySetUnavailableError) {
    return {
      ok: false,
      reason: 'unavailable',
      description: "The token's issuer cannot be reached to check its keys.",
      retryAfterSeconds: error.retryAfterSeconds,
    };
  }
  if (error instanceof errors.JWTExpired) {
    return { ok: false, reason: 'expired', description: 'The access token expired.' };
  }
  const invalid = (description: string): ExternalTokenCheck => ({
    ok: false,
    reason: 'invalid',
    description,
  });
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'aud':
        return invalid('The access token is not meant for this API (aud).');
      case 'iss':
        return invalid('The access token has the wrong issuer (iss).');
      case 'nbf':
        return invalid('The access token is not valid yet (nbf).');
      default:
        return invalid(`The access token's ${error.claim} claim is missing or invalid.`);
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed)
    return invalid('The access token is signed with an algorithm not accepted here.');
  if (error instanceof errors.JWKSNoMatchingKey)
    return invalid("The access token's signing key is unknown to its issuer.");
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return invalid('The access token signature is invalid.');
  return invalid('The access token is invalid.');
}
