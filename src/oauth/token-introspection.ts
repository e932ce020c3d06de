import { decodeJwt } from 'jose';
import type { AccountUser } from '../accounts/public-user.js';
import type { RevocationList } from '../sessions/revocation-list.js';
import { FIRST_PARTY_CLIENT_ID, type SessionManager } from '../sessions/session-manager.js';
import type { SessionStore } from '../storage/session-store.js';
import { hashOpaqueToken } from '../tokens/opaque-token.js';
import { looksLikeRefreshToken } from '../tokens/refresh-token.js';
import type { ClientCredentials } from './client-credentials.js';
import type { OAuthClient } from './oauth-clients.js';

/**
 * An RFC 7662 §2.2 introspection answer. `token_use` (as Ory Hydra names it) tells an access token
 * from a refresh token: a resource server must accept only `access_token`.
 */
export type Introspection =
  | { active: false }
  | {
      active: true;
      scope: string;
      /**
       * The registered client that requested the token (RFC 7662 §2.2), or `gatehouse` for a
       * first-party token (the web UI, Swagger UI, scripts), which no registered client requested.
       */
      client_id: string;
      /**
       * A first-party token's free-text label (the unregistered `client_id` its caller sent to
       * `/token`): it names an app, authenticates nothing, and is never a client identifier.
       */
      client_label?: string | undefined;
      /** The user's id; for a `client_credentials` token, the client's id (RFC 9068 §2.2). */
      sub: string;
      exp: number;
      iat?: number | undefined;
      iss: string;
      aud?: string | undefined;
      /** Access tokens only (RFC 6749 §7.1). */
      token_type?: 'Bearer' | undefined;
      token_use: 'access_token' | 'refresh_token';
      /** The user's session; absent for `client_credentials` tokens, which have none. */
      sid?: string | undefined;
    };

/**
 * RFC 7662 token introspection for resource servers (issue 15, item 3), without HTTP.
 *
 * Who may learn what (RFC 7662 §4, privacy): the caller is a registered confidential client that
 * authenticated. It may introspect any access token we issue, whoever it was issued to, since a
 * resource server must check tokens minted for the apps that call it; the answer holds no more
 * than the token's holder could already read from a JWT (an opaque token's user id is the one
 * addition). A refresh token is only ever presented to us by the client it was issued to, so
 * only that client may introspect it: for any other it is `{ active: false }`.
 */
export interface TokenIntrospection {
  /**
   * What `requester` may know about `token`: a user's access token (JWT, or opaque with
   * `TOKEN_STRATEGY=database`), a `client_credentials` token, or a refresh token of its own;
   * `{ active: false }` for anything expired, revoked, spent, of a disabled account or removed
   * client, unknown, or issued by someone else. `hint` (`token_type_hint`) only orders the
   * look-ups: a wrong or unknown one still finds the token (RFC 7662 §2.1).
   */
  introspect(token: string, requester: OAuthClient, hint?: string): Promise<Introspection>;
}

/** Dependencies of {@link createTokenIntrospection}, wired in `createGatehouseCore`. */
export interface TokenIntrospectionDeps {
  /** `iss` of every token we issue. */
  issuer: string;
  /** Which access tokens this server issues (TOKEN_STRATEGY). */
  tokenStrategy: 'jwt' | 'database';
  sessions: Pick<SessionManager, 'verifyAccessToken'>;
  sessionStore: Pick<SessionStore, 'findRefreshToken' | 'findSession' | 'findAccessToken'>;
  revocations: Pick<RevocationList, 'isRevoked'>;
  users: { get(userId: string): Promise<AccountUser | undefined> };
  clientTokens: Pick<ClientCredentials, 'isClientToken' | 'verify'>;
  /** Registered clients (cached): tells a registered `client_id` from a first-party label. */
  clients: { get(clientId: string): Promise<OAuthClient | null> };
  clock: () => number;
}

const INACTIVE = { active: false } as const;
const seconds = (ms: number) => Math.floor(ms / 1000);

/** Creates the {@link TokenIntrospection}. */
export function createTokenIntrospection(deps: TokenIntrospectionDeps): TokenIntrospection {
  const { issuer, sessions, sessionStore, revocations, users, clientTokens, clock } = deps;

  const isActiveUser = async (userId: string) => (await users.get(userId))?.isActive === true;

  /** A user's access token: verified (signature or row, expiry, revocation), then described. */
  const userAccessToken = async (token: string): Promise<Introspection | undefined> => {
    const check = await sessions.verifyAccessToken(token);
    if (!check.ok || !(await isActiveUser(check.userId))) return undefined;
    let clientId = FIRST_PARTY_CLIENT_ID;
    let iat: number | undefined;
    let aud: string | undefined;
    if (deps.tokenStrategy === 'database') {
      // The row was just read (or is cached) by the check; its client is on it.
      const row = await sessionStore.findAccessToken(hashOpaqueToken(token), clock());
      if (row === undefined) return undefined;
      // Rows from before migration 009 name no client and count as first-party.
      clientId = row.clientId ?? FIRST_PARTY_CLIENT_ID;
    } else {
      // Verified just above (signature, expiry, revocation), so reading its claims is safe.
      const claims = decodeJwt(token);
      if (typeof claims.client_id === 'string') clientId = claims.client_id;
      iat = claims.iat;
      aud = typeof claims.aud === 'string' ? claims.aud : undefined;
    }
    // RFC 7662 §2.2: `client_id` is the client that requested the token. A first-party caller's
    // unregistered label authenticated nothing (red-team G7), so it is reported apart, never as one.
    const label =
      clientId !== FIRST_PARTY_CLIENT_ID && (await deps.clients.get(clientId)) === null
        ? clientId
        : undefined;
    return {
      active: true,
      scope: check.scopes.join(' '),
      client_id: label === undefined ? clientId : FIRST_PARTY_CLIENT_ID,
      client_label: label,
      sub: check.userId,
      exp: seconds(check.expiresAt),
      iat,
      iss: issuer,
      aud,
      token_type: 'Bearer',
      token_use: 'access_token',
      sid: check.sessionId,
    };
  };

  /** A `client_credentials` token: its client must still exist and hold the grant. */
  const clientAccessToken = async (token: string): Promise<Introspection | undefined> => {
    if (!clientTokens.isClientToken(token)) return undefined;
    const check = await clientTokens.verify(token);
    if (!check.ok) return undefined;
    const { principal } = check;
    const claims = decodeJwt(token);
    return {
      active: true,
      scope: principal.scopes.join(' '),
      client_id: principal.clientId,
      sub: principal.clientId,
      exp: seconds(principal.expiresAt),
      iat: seconds(principal.issuedAt),
      iss: issuer,
      aud: typeof claims.aud === 'string' ? claims.aud : undefined,
      token_type: 'Bearer',
      token_use: 'access_token',
    };
  };

  /** The requester's own live refresh token: unspent, unexpired, its session and account live. */
  const refreshToken = async (token: string, requester: OAuthClient): Promise<Introspection | undefined> => {
    if (!looksLikeRefreshToken(token)) return undefined;
    const record = await sessionStore.findRefreshToken(hashOpaqueToken(token));
    const now = clock();
    // RFC 7662 §4: another client's refresh token is none of this client's business.
    if (record === undefined || record.clientId !== requester.clientId) return undefined;
    if (record.spentAt !== null || record.expiresAt <= now) return undefined;
    const session = await sessionStore.findSession(record.sessionId);
    if (
      session === undefined ||
      session.revokedAt !== null ||
      session.expiresAt <= now ||
      revocations.isRevoked(session.id) ||
      !(await isActiveUser(session.userId))
    ) {
      return undefined;
    }
    return {
      active: true,
      scope: session.scopes.join(' '),
      client_id: record.clientId,
      sub: session.userId,
      exp: seconds(record.expiresAt),
      iss: issuer,
      token_use: 'refresh_token',
      sid: session.id,
    };
  };

  return {
    async introspect(token, requester, hint) {
      const accessLookups = [() => userAccessToken(token), () => clientAccessToken(token)];
      const refreshLookup = () => refreshToken(token, requester);
      const lookups =
        hint === 'refresh_token' ? [refreshLookup, ...accessLookups] : [...accessLookups, refreshLookup];
      for (const lookup of lookups) {
        const answer = await lookup();
        if (answer !== undefined) return answer;
      }
      return INACTIVE;
    },
  };
}
