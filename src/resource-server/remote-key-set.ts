import {
  createLocalJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
} from 'jose';
import { hasElapsed } from '../lib/elapsed.js';
import { isInternalHost, isTrustedHttpUrl } from './external-issuer-schema.js';
import { type AddressScope, ExternalFetchError, fetchJson } from './fetch-json.js';

/** Most keys kept from one key set: providers publish a handful (current, next, previous). */
export const MAX_REMOTE_KEYS = 100;
/** Largest discovery document or key set read, in bytes. */
export const MAX_REMOTE_DOCUMENT_BYTES = 512 * 1024;

/**
 * The issuer's keys cannot be had right now: no usable key set (none was fetched, or the last one
 * is past its `maxAgeMs + maxStaleMs`, or a token's `kid` is unknown while the cooldown holds a
 * refetch back), and no fetch can settle it now.
 */
export class KeySetUnavailableError extends Error {
  /** Seconds until the next fetch may be tried. */
  readonly retryAfterSeconds: number;
  /**
   * True when the issuer is fine but the token's `kid` is not in the set we hold, and the cooldown
   * holds a refetch back: not an outage (anyone can send such a token), so not reported as one.
   */
  readonly keyUnknown: boolean;

  constructor(message: string, retryAfterSeconds: number, keyUnknown = false) {
    super(message);
    this.name = 'KeySetUnavailableError';
    this.retryAfterSeconds = retryAfterSeconds;
    this.keyUnknown = keyUnknown;
  }
}

/** Options of {@link createRemoteKeySet}. */
export interface RemoteKeySetOptions {
  /** The issuer, exactly as configured (its `iss`). */
  issuer: string;
  /** The key set's URL; discovered from the issuer's metadata when undefined. */
  jwksUri: string | undefined;
  /**
   * Whether the issuer is on an internal network (its host is an internal address, or the operator
   * said so with `allowInternalAddresses`): then its documents, and the `jwks_uri` its metadata
   * names, may be fetched from internal addresses. Otherwise every connection is refused that would
   * reach one, a host name that resolves to one included (see `fetch-json.ts`).
   */
  internal: boolean;
  /** Bound on one load (discovery and key set together). */
  timeoutMs: number;
  /** A key set older than this is fetched again (in the background; the old one serves meanwhile). */
  maxAgeMs: number;
  /** At least this long between two fetch attempts, successful or not. */
  cooldownMs: number;
  /** The issuer's clock tolerance, for comparing a token's `iat` with our set's fetch time. */
  clockToleranceMs: number;
  /**
   * How long past `maxAgeMs` the last set still serves while fetching a new one fails. After it
   * the set is not used at all (tokens of the issuer get "unavailable" until a fetch succeeds):
   * otherwise a key the provider removed, after a leak, kept working for as long as its key set
   * endpoint failed (red-team 2026-12m E1).
   */
  maxStaleMs: number;
  /** Epoch ms. */
  clock: () => number;
  /** Reports a failed load (at most one per cooldown). */
  warn: (message: string, details: Record<string, unknown>) => void;
}

/** The key set of one external issuer, fetched on demand and cached. */
export interface RemoteKeySet {
  /**
   * The key for a token (a jose key resolver): from the cached set, fetching it first when none
   * was fetched yet (or the cached one is past `maxAgeMs + maxStaleMs`), and once more when the
   * token's `kid` is unknown (a rotation). Throws jose's `JWKSNoMatchingKey` for a key the
   * provider does not publish (known after a fetch), {@link KeySetUnavailableError} when no usable
   * key set could be had, or when the `kid` is unknown and the cooldown holds the refetch back:
   * the key may be a rotation's new one, so the client is told to retry (503 with `Retry-After`),
   * not that its token is invalid (a 401 makes clients drop a good token; red-team 2026-12m E2).
   */
  resolve(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey>;
  /** Bumped on every successful load: verdicts cached under an older generation are stale. */
  generation(): number;
  /** True when the cached key set is older than the max age (or none was loaded). */
  isStale(): boolean;
}

type LocalKeySet = ReturnType<typeof createLocalJWKSet>;

/**
 * The key set of one issuer. State is one key set (≤ {@link MAX_REMOTE_KEYS} keys, a document of
 * ≤ {@link MAX_REMOTE_DOCUMENT_BYTES}) and one load in flight at most: every request that needs a
 * load waits for the same one, bounded by `timeoutMs`. Loads are at least `cooldownMs` apart
 * whatever happens (failures included), so neither random `kid`s nor a provider that is down make
 * us call it more often than that. Each issuer has its own set, so a failing provider only
 * affects its own tokens.
 */
export function createRemoteKeySet(options: RemoteKeySetOptions): RemoteKeySet {
  const { issuer, clock, cooldownMs } = options;
  const usableMs = options.maxAgeMs + options.maxStaleMs;
  let local: LocalKeySet | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let generation = 0;
  let jwksUri = options.jwksUri;
  let pending: Promise<void> | undefined;
  const issuerAddresses: AddressScope = options.internal ? 'any' : 'public';
  // A key set URL the operator configured on an internal host is theirs to choose; one read off
  // the network (discovery) only goes where the issuer may lead (mayFollowJwksUri).
  const jwksAddresses: AddressScope =
    options.jwksUri !== undefined && isInternalHost(new URL(options.jwksUri).hostname)
      ? 'any'
      : issuerAddresses;

  const mayFetch = () => hasElapsed(clock(), lastAttemptAt, cooldownMs);
  const secondsUntilFetch = () => Math.max(1, Math.ceil((lastAttemptAt + cooldownMs - clock()) / 1000));

  const load = async (signal: AbortSignal): Promise<void> => {
    jwksUri ??= await discover(issuer, options.internal, signal);
    const document = await fetchJson(jwksUri, {
      signal,
      maxBytes: MAX_REMOTE_DOCUMENT_BYTES,
      addresses: jwksAddresses,
    });
    local = createLocalJWKSet(readKeySet(document));
    fetchedAt = clock();
    generation += 1;
  };

  /** Starts a load unless one runs; never rejects (a failure is logged and leaves the old set). */
  const refresh = (): Promise<void> => {
    if (pending !== undefined) return pending;
    lastAttemptAt = clock();
    pending = load(AbortSignal.timeout(options.timeoutMs))
      .catch((error: unknown) => {
        // A moved key set is found again through discovery on the next attempt.
        if (options.jwksUri === undefined) jwksUri = undefined;
        options.warn('external issuer: fetching its keys failed; the last keys stay in use', {
          issuer,
          error: error instanceof Error ? error.message : String(error),
        });
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };

  /** The cached set while it may still be used (within `maxAgeMs + maxStaleMs` of its fetch). */
  const usable = (): LocalKeySet | undefined =>
    local !== undefined && !hasElapsed(clock(), fetchedAt, usableMs) ? local : undefined;
  const unavailable = () =>
    new KeySetUnavailableError(
      `The keys of ${issuer} cannot be fetched right now.`,
      pending === undefined ? secondsUntilFetch() : 1,
    );
  /**
   * Whether our set was fetched after `token` was issued (its unverified `iat`, less the clock
   * tolerance): then a `kid` missing from it is the provider's answer, since a provider publishes
   * a key before it signs with it. A forger picking `iat` only picks 401 or 503 for its own token.
   */
  const fetchedAfterIssue = (token: FlattenedJWSInput): boolean => {
    let iat: unknown;
    try {
      iat = (JSON.parse(Buffer.from(token.payload as string, 'base64url').toString()) as { iat?: unknown })
        .iat;
    } catch {
      return false;
    }
    return typeof iat === 'number' && iat * 1000 + options.clockToleranceMs <= fetchedAt;
  };

  return {
    async resolve(header, token) {
      // Stale but usable: serve from it and refresh in the background (keys removed by the
      // provider stop working once the new set arrives).
      if (local !== undefined && hasElapsed(clock(), fetchedAt, options.maxAgeMs) && mayFetch())
        void refresh();
      let keys = usable();
      // Whether this call waited for a fetch: then its set is as fresh as can be, and a `kid`
      // missing from it is the provider's answer, not a rotation we have yet to see.
      let fetched = false;
      if (keys === undefined) {
        if (pending !== undefined) await pending;
        else if (mayFetch()) await refresh();
        fetched = true;
        keys = usable();
        if (keys === undefined) throw unavailable();
      }
      try {
        return await keys(header, token);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey) || fetched || fetchedAfterIssue(token)) throw error;
        // An unknown kid: the provider may have rotated. One fetch per cooldown at most.
        const before = generation;
        if (pending !== undefined) await pending;
        else if (mayFetch()) await refresh();
        else {
          throw new KeySetUnavailableError(
            `The token's key is not among the keys held for ${issuer}; retry later.`,
            secondsUntilFetch(),
            true,
          );
        }
        // The fetch failed: the new key may be there, we cannot tell (not a 401).
        if (generation === before) throw unavailable();
      }
      keys = usable();
      if (keys === undefined) throw unavailable();
      return keys(header, token);
    },
    generation: () => generation,
    isStale: () => local === undefined || hasElapsed(clock(), fetchedAt, options.maxAgeMs),
  };
}

/**
 * The `jwks_uri` of `issuer`'s metadata: OpenID Connect Discovery 1.0 §4 first
 * (`<issuer>/.well-known/openid-configuration`), then RFC 8414 §3
 * (`<origin>/.well-known/oauth-authorization-server<path>`). The document must name the same
 * issuer (OIDC Discovery §4.3, RFC 8414 §3.3), or its keys could be another issuer's.
 */
async function discover(issuer: string, internal: boolean, signal: AbortSignal): Promise<string> {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, '');
  const candidates = [
    `${url.origin}${path}/.well-known/openid-configuration`,
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
  ];
  let lastError: unknown;
  for (const candidate of candidates) {
    let metadata: unknown;
    try {
      metadata = await fetchJson(candidate, {
        signal,
        maxBytes: MAX_REMOTE_DOCUMENT_BYTES,
        addresses: internal ? 'any' : 'public',
      });
    } catch (error) {
      if (signal.aborted) throw error;
      lastError = error;
      continue;
    }
    if (typeof metadata !== 'object' || metadata === null) {
      throw new ExternalFetchError(`${candidate} is not a metadata document`);
    }
    const { issuer: named, jwks_uri: jwks } = metadata as { issuer?: unknown; jwks_uri?: unknown };
    if (named !== issuer) {
      throw new ExternalFetchError(`${candidate} names the issuer ${JSON.stringify(named)}, not ${issuer}`);
    }
    if (typeof jwks !== 'string' || !isTrustedHttpUrl(jwks) || !mayFollowJwksUri(issuer, jwks, internal)) {
      throw new ExternalFetchError(
        `${candidate} has no usable jwks_uri (https, or http on loopback; internal hosts only for an internal issuer)`,
      );
    }
    return jwks;
  }
  throw lastError instanceof Error ? lastError : new ExternalFetchError(`no metadata found for ${issuer}`);
}

/**
 * Whether a `jwks_uri` named by `issuer`'s metadata may be fetched: the metadata comes off the
 * network, so it must not lower what the operator configured (OWASP SSRF Prevention Cheat
 * Sheet). An https issuer's keys come over https, and only an internal issuer (on an internal
 * host, or declared so with `allowInternalAddresses`: `internal`) may send us to an internal host
 * (red-team 2026-12m E3: a remote issuer's metadata named `http://127.0.0.1:…/admin/…`, and we
 * fetched it). This reads the URL's literal host only; a host *name* that resolves to an internal
 * address is refused where the connection is made (`fetch-json.ts`, `guardedLookup`), for the
 * issuer's own documents as for the key set.
 */
export function mayFollowJwksUri(
  issuer: string,
  jwksUri: string,
  internal = isInternalHost(new URL(issuer).hostname),
): boolean {
  const from = new URL(issuer);
  const target = new URL(jwksUri);
  if (from.protocol === 'https:' && target.protocol !== 'https:') return false;
  return !isInternalHost(target.hostname) || internal;
}

/** The document as a key set, or a thrown {@link ExternalFetchError}. */
function readKeySet(document: unknown): JSONWebKeySet {
  const keys = (document as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new ExternalFetchError('the key set has no "keys" array');
  if (keys.length > MAX_REMOTE_KEYS) {
    throw new ExternalFetchError(`the key set has ${keys.length} keys (at most ${MAX_REMOTE_KEYS} are read)`);
  }
  // Private or symmetric members never belong in a published set; jose skips keys it cannot use,
  // but refuses the whole set for a member that is not an object at all (an array, a string), so
  // those are dropped here one by one (red-team 2026-12m E5).
  const published = keys.filter(
    (key): key is JSONWebKeySet['keys'][number] =>
      typeof key === 'object' &&
      key !== null &&
      !Array.isArray(key) &&
      !('d' in key) &&
      (key as { kty?: unknown }).kty !== 'oct',
  );
  return { keys: published };
}
