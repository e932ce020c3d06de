import { randomUUID } from 'node:crypto';
import { decodeJwt, errors as joseErrors } from 'jose';
import type { CounterStore } from '../accounts/counter-store.js';
import { parseScopeParameter } from '../accounts/scopes.js';
import type { AuditLog } from '../audit/audit-log.js';
import { type Caller, recordCommitted } from '../audit/record-committed.js';
import type { EventBus } from '../events/event-bus.js';
import { addressBucket } from '../lib/address-bucket.js';
import { BoundedMap } from '../lib/bounded-map.js';
import type { RevocationList } from '../sessions/revocation-list.js';
import { ACCESS_TOKEN_TYP } from '../sessions/session-manager.js';
import {
  type ClientTokenRevocationStore,
  clientTokenRevocationId,
} from '../storage/client-token-revocation-store.js';
import type { Keyring } from '../tokens/keyring.js';
import type { LiveClients } from './live-clients.js';
import { type OAuthClient, OIDC_SCOPES } from './oauth-clients.js';

/** A caller holding a `client_credentials` access token: an OAuth client acting for itself, no user. */
export interface ClientPrincipal {
  /** The registered client the token was issued to (its `sub` and `client_id`). */
  clientId: string;
  /** The token's scopes that the client is still registered for. */
  scopes: string[];
  /** The token's `exp`, epoch ms. */
  expiresAt: number;
  /** The token's `iat`, epoch ms. */
  issuedAt: number;
  /** The token's `jti`. */
  tokenId: string;
}

/**
 * Why a client token was refused: not one of ours, expired, revoked (RFC 7009), or its client was
 * removed (or may no longer use the grant). The HTTP layer answers 401 `invalid_token` to each.
 */
export type ClientTokenFailure = 'invalid' | 'expired' | 'revoked' | 'client_removed' | 'client_disabled';

/** Outcome of checking a `client_credentials` access token. */
export type ClientTokenCheck =
  | { ok: true; principal: ClientPrincipal }
  | { ok: false; reason: ClientTokenFailure };

/** A `client_credentials` access token as the token endpoint hands it out (no refresh token). */
export interface ClientAccessToken {
  accessToken: string;
  /** Seconds until it expires. */
  expiresIn: number;
  scopes: string[];
}

/** Outcome of {@link ClientCredentials.issue}. Refusals are values with their RFC 6749 §5.2 code. */
export type ClientCredentialsGrant =
  | { ok: true; token: ClientAccessToken }
  | { ok: false; reason: 'error'; error: 'invalid_scope' | 'unauthorized_client'; description: string }
  | { ok: false; reason: 'throttled'; description: string; retryAfterSeconds: number };

/** Outcome of {@link ClientCredentials.admitAddress}. */
export type AddressAdmission = { ok: true } | { ok: false; description: string; retryAfterSeconds: number };

/**
 * The OAuth 2.0 client credentials grant (RFC 6749 §4.4, issue 15) and the tokens it issues,
 * without HTTP. A token is an RFC 9068 JWT (`typ: at+jwt`) signed by the access-token keyring,
 * with `sub` = `client_id` and no `sid`: it can never pass as a user's token (those need a
 * session), and a user's can never pass as a client's. Whether its client still exists is checked
 * on every use (through {@link LiveClients}), so removing a client ends its tokens.
 */
export interface ClientCredentials {
  /**
   * Whether `ip` (IPv6: its /64) may try to authenticate for the grant now: refused once it made
   * `CLIENT_CREDENTIALS_PER_MINUTE_PER_IP` failed client authentications this minute. Reads only,
   * before any look-up. Only failures count, so a client's own traffic never fills it and a
   * stranger can block it only from behind the same address (abuse assignment: every request
   * counted, so anyone sharing a service's NAT could spend its allowance with junk requests).
   */
  admitAddress(ip: string): Promise<AddressAdmission>;
  /** Counts a failed client authentication from `ip` at the grant. */
  recordAuthenticationFailure(ip: string): Promise<void>;
  /**
   * Issues a token to an authenticated confidential client allowed the grant. `scope` (RFC 6749
   * §3.3) must be a subset of the client's registered scopes; omitted, the token carries all of
   * them. OpenID Connect scopes are refused: there is no user to identify. Counted per client
   * (`CLIENT_CREDENTIALS_PER_MINUTE`) and audited (`client_token_issued`).
   */
  issue(client: OAuthClient, scope: string | undefined, caller: Caller): Promise<ClientCredentialsGrant>;
  /**
   * True when `token` has the shape of one of our client tokens (unverified: our `iss`, a
   * `client_id` equal to `sub`, no `sid`). Only routes the token to {@link verify}; decides nothing.
   */
  isClientToken(token: string): boolean;
  /**
   * The answer {@link verify} would give, synchronously, when memory alone decides it (a verified
   * token and a fresh look-up of its client); `undefined` otherwise.
   */
  peek(token: string): ClientTokenCheck | undefined;
  /** Checks signature, `typ`, `iss`, `aud`, expiry and that the client still exists and may use the grant. */
  verify(token: string): Promise<ClientTokenCheck>;
  /**
   * Revokes a client token for `requesterId` (RFC 7009 §2.1): only the client it was issued to
   * may, and only a token that verifies (signature, expiry). True when this call revoked it;
   * false for anything else, which the endpoint answers 200 all the same (§2.2). The revocation
   * is stored with its audit row in one transaction, then applied in memory and broadcast, so the
   * token fails on the next request on every instance (or within `REVOCATION_RELOAD_INTERVAL`
   * when the broadcast is lost).
   */
  revoke(token: string, requesterId: string, caller: Caller): Promise<boolean>;
}

/** Dependencies of {@link createClientCredentials}, wired in `createGatehouseCore`. */
export interface ClientCredentialsDeps {
  /** Signs and verifies the tokens (the access-token keyring: same keys, same JWKS). */
  keyring: Pick<Keyring, 'sign' | 'verify' | 'revision' | 'issuer'>;
  /** The registered clients, as a token's check on use needs them. */
  clients: Pick<LiveClients, 'peek' | 'get'>;
  /** The rate-limit counters (Redis when configured, so the limits hold across instances). */
  counters: Pick<CounterStore, 'increment' | 'peek'>;
  audit: Pick<AuditLog, 'record'>;
  /** Where a revoked token's `jti` is looked up on every use, and added once revoked. */
  revocations: Pick<RevocationList, 'isRevoked' | 'add' | 'isCutOff'>;
  /** Stores a revocation and its audit row in one transaction. */
  revokeTransaction: <T>(
    work: (stores: {
      revocations: Pick<ClientTokenRevocationStore, 'insertRevocation'>;
      audit: Pick<AuditLog, 'record'>;
    }) => Promise<T>,
  ) => Promise<T>;
  /** Tells the other instances (`sessions_revoked`, with the token's revocation-list id). */
  bus: Pick<EventBus, 'publish'>;
  clock: () => number;
  /** `aud` of every token; ACCESS_TOKEN_TTL in seconds; the two limits, per minute. */
  settings: {
    audience: string;
    accessTokenTtl: number;
    perClientPerMinute: number;
    perIpPerMinute: number;
  };
}

const MINUTE_MS = 60_000;
const VERIFIED_CACHE_SIZE = 10_000;

/** A verified token, before its client is looked up. */
type VerifiedClientToken = Omit<ClientPrincipal, 'scopes'> & { scopes: readonly string[] };

/** True when `client` may hold client tokens now: it exists, is enabled, confidential and keeps the grant. */
function mayUseGrant(client: OAuthClient | null): client is OAuthClient {
  return (
    client !== null &&
    !client.disabled &&
    client.type === 'confidential' &&
    client.grantTypes.includes('client_credentials')
  );
}

/** Creates the {@link ClientCredentials} service. */
export function createClientCredentials(deps: ClientCredentialsDeps): ClientCredentials {
  const { keyring, clients, counters, audit, clock, settings } = deps;
  // Verified tokens keyed by the whole token string: a hit skips the signature check; expiry and
  // the client's existence are still checked on every use. Bounded; dropped on a key revocation.
  const verified = new BoundedMap<string, VerifiedClientToken>(VERIFIED_CACHE_SIZE);
  let keyRevision = keyring.revision();

  const throttled = (count: { count: number; resetAt: number }, max: number, description: string) =>
    count.count > max
      ? {
          ok: false as const,
          reason: 'throttled' as const,
          description,
          retryAfterSeconds: Math.max(1, Math.ceil((count.resetAt - clock()) / 1000)),
        }
      : undefined;

  /** The verdict once the token is verified and its client known. */
  const judge = (entry: VerifiedClientToken, client: OAuthClient | null, now: number): ClientTokenCheck => {
    if (entry.expiresAt <= now) return { ok: false, reason: 'expired' };
    if (
      deps.revocations.isRevoked(clientTokenRevocationId(entry.tokenId)) ||
      // `gatehouse revoke-all`: under HS256 no key revocation reaches a client's tokens.
      deps.revocations.isCutOff(entry.issuedAt / 1000)
    ) {
      return { ok: false, reason: 'revoked' };
    }
    if (client?.disabled === true) return { ok: false, reason: 'client_disabled' };
    if (!mayUseGrant(client)) return { ok: false, reason: 'client_removed' };
    return {
      ok: true,
      principal: {
        clientId: entry.clientId,
        // Defence in depth: a scope the client is no longer registered for is dropped.
        scopes: entry.scopes.filter((scope) => client.scopes.includes(scope)),
        expiresAt: entry.expiresAt,
        issuedAt: entry.issuedAt,
        tokenId: entry.tokenId,
      },
    };
  };

  const cachedEntry = (token: string): VerifiedClientToken | undefined => {
    if (keyring.revision() !== keyRevision) {
      keyRevision = keyring.revision();
      verified.clear();
    }
    return verified.get(token);
  };

  const verifySignature = async (
    token: string,
    now: number,
  ): Promise<VerifiedClientToken | ClientTokenFailure> => {
    let payload: Awaited<ReturnType<Keyring['verify']>>;
    try {
      payload = await keyring.verify(token, {
        typ: ACCESS_TOKEN_TYP,
        audience: settings.audience,
        requiredClaims: ['sub', 'client_id', 'jti', 'scope'],
        now,
      });
    } catch (error) {
      return error instanceof joseErrors.JWTExpired ? 'expired' : 'invalid';
    }
    const { sub, client_id: clientId, scope, exp, iat, jti, sid } = payload;
    // A user's access token always names its session; a client token never does and is its own subject.
    if (
      sid !== undefined ||
      typeof clientId !== 'string' ||
      sub !== clientId ||
      typeof scope !== 'string' ||
      typeof exp !== 'number' ||
      typeof iat !== 'number' ||
      typeof jti !== 'string'
    ) {
      return 'invalid';
    }
    const entry: VerifiedClientToken = {
      clientId,
      scopes: scope === '' ? [] : scope.split(' '),
      expiresAt: exp * 1000,
      issuedAt: iat * 1000,
      tokenId: jti,
    };
    verified.set(token, entry);
    return entry;
  };

  return {
    async admitAddress(ip) {
      const window = await counters.peek(`oauth:cc:fail:${addressBucket(ip)}`);
      if (window === undefined || window.count < settings.perIpPerMinute) return { ok: true };
      return {
        ok: false,
        description: 'Too many failed client authentications from this address.',
        retryAfterSeconds: Math.max(1, Math.ceil((window.resetAt - clock()) / 1000)),
      };
    },

    async recordAuthenticationFailure(ip) {
      await counters.increment(`oauth:cc:fail:${addressBucket(ip)}`, MINUTE_MS);
    },

    async issue(client, scope, caller) {
      // RFC 6749 §4.4: confidential clients only, and only those registered for the grant.
      if (client.type !== 'confidential' || !client.grantTypes.includes('client_credentials')) {
        return {
          ok: false,
          reason: 'error',
          error: 'unauthorized_client',
          description: 'This client may not use the client_credentials grant.',
        };
      }
      // Counted only once the client authenticated: nobody else can use up its allowance.
      const window = await counters.increment(`oauth:cc:client:${client.clientId}`, MINUTE_MS);
      const refused = throttled(
        window,
        settings.perClientPerMinute,
        'Too many client_credentials tokens for this client; reuse a token until it expires.',
      );
      if (refused !== undefined) return refused;
      // OpenID Connect scopes concern a signed-in person; a client acting for itself has none.
      const grantable = client.scopes.filter((name) => !Object.hasOwn(OIDC_SCOPES, name));
      const requested = scope === undefined ? grantable : parseScopeParameter(scope);
      if (requested === undefined) {
        return {
          ok: false,
          reason: 'error',
          error: 'invalid_scope',
          description: 'The scope parameter is malformed.',
        };
      }
      const rejected = requested.filter((name) => !grantable.includes(name));
      if (rejected.length > 0) {
        return {
          ok: false,
          reason: 'error',
          error: 'invalid_scope',
          description: `Scope not allowed for this client: ${rejected.join(' ')}.`,
        };
      }
      const scopes = [...new Set(requested)];
      if (scopes.length === 0) {
        // RFC 6749 §3.3: without a usable default the request fails with invalid_scope.
        return {
          ok: false,
          reason: 'error',
          error: 'invalid_scope',
          description: 'This client is registered with no scope a client_credentials token can carry.',
        };
      }
      const now = clock();
      const iat = Math.floor(now / 1000);
      const jti = randomUUID();
      // RFC 9068 §2.2: iss (added by the keyring), exp, aud, sub, client_id, iat, jti; §2.2.3 scope.
      const accessToken = await keyring.sign(
        {
          sub: client.clientId,
          client_id: client.clientId,
          scope: scopes.join(' '),
          aud: settings.audience,
          iat,
          exp: iat + settings.accessTokenTtl,
          jti,
        },
        ACCESS_TOKEN_TYP,
      );
      await recordCommitted(audit, caller, {
        event: 'client_token_issued',
        targetId: client.clientId,
        ...caller.client,
        details: { client_id: client.clientId, scope: scopes.join(' '), jti },
      });
      return { ok: true, token: { accessToken, expiresIn: settings.accessTokenTtl, scopes } };
    },

    isClientToken(token) {
      if (verified.has(token)) return true;
      let claims: ReturnType<typeof decodeJwt>;
      try {
        claims = decodeJwt(token);
      } catch {
        return false;
      }
      return (
        claims.iss === keyring.issuer &&
        typeof claims.client_id === 'string' &&
        claims.sub === claims.client_id &&
        claims.sid === undefined
      );
    },

    peek(token) {
      const entry = cachedEntry(token);
      if (entry === undefined) return undefined;
      const now = clock();
      if (entry.expiresAt <= now) return { ok: false, reason: 'expired' };
      const client = clients.peek(entry.clientId);
      return client === undefined ? undefined : judge(entry, client, now);
    },

    async verify(token) {
      const now = clock();
      const entry = cachedEntry(token) ?? (await verifySignature(token, now));
      if (typeof entry === 'string') return { ok: false, reason: entry };
      if (entry.expiresAt <= now) return { ok: false, reason: 'expired' };
      return judge(entry, await clients.get(entry.clientId), now);
    },

    async revoke(token, requesterId, caller) {
      const now = clock();
      const entry = cachedEntry(token) ?? (await verifySignature(token, now));
      // Not ours, expired (nothing left to revoke), or another client's: left alone (§2.2: 200).
      if (typeof entry === 'string' || entry.expiresAt <= now || entry.clientId !== requesterId) return false;
      const revoked = await deps.revokeTransaction(async (stores) => {
        const inserted = await stores.revocations.insertRevocation({
          jti: entry.tokenId,
          clientId: entry.clientId,
          revokedAt: now,
          expiresAt: entry.expiresAt,
        });
        if (inserted) {
          await stores.audit.record({
            event: 'client_token_revoked',
            actorId: null,
            targetId: entry.clientId,
            ...caller.client,
            details: { client_id: entry.clientId, jti: entry.tokenId },
          });
        }
        return inserted;
      });
      // Applied here even when another request recorded it first: the memory may not have it yet.
      const revokedToken = { id: clientTokenRevocationId(entry.tokenId), expiresAt: entry.expiresAt };
      deps.revocations.add([revokedToken]);
      // After the commit. publish never rejects for the cross-instance leg: a lost message is
      // caught up by the other instances' reload, which reads client_token_revocations too.
      if (revoked) await deps.bus.publish({ type: 'sessions_revoked', sessions: [revokedToken] });
      return revoked;
    },
  };
}
