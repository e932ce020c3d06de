import { randomUUID } from 'node:crypto';
import { errors as joseErrors } from 'jose';
import { ROLE_SCOPES } from '../accounts/scopes.js';
import type { GatehouseConfig } from '../config/config.js';
import type { EventBus } from '../events/event-bus.js';
import { BoundedMap } from '../lib/bounded-map.js';
import type { SessionRecord, SessionStore, SessionTransport } from '../storage/session-store.js';
import type { UserStore } from '../storage/user-store.js';
import type { Keyring } from '../tokens/keyring.js';
import { generateOpaqueToken, hashOpaqueToken, looksLikeOpaqueToken } from '../tokens/opaque-token.js';
import type { RevocationList } from './revocation-list.js';

/** `typ` header of access tokens (RFC 9068 §2.1). */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/** Who is calling, as proven by a valid token. */
export interface TokenIdentity {
  userId: string;
  sessionId: string;
  scopes: string[];
  /**
   * When this credential stops being accepted, epoch ms: an access token's expiry (never later than
   * its session's absolute expiry), or for a cookie session the earlier of its absolute expiry and
   * its idle expiry as of this check. Long-lived responses (event streams) end then.
   */
  expiresAt: number;
}

/** Why a token was refused; the HTTP layer turns every one into 401 `invalid_token`. */
export type TokenFailure = 'malformed' | 'invalid' | 'expired' | 'revoked';

/** Outcome of checking a token. */
export type TokenCheck = ({ ok: true } & TokenIdentity) | { ok: false; reason: TokenFailure };

/** Outcome of {@link SessionManager.checkCookieSession}. */
export type CookieSessionCheck =
  | { ok: true; expiresAt: number }
  | { ok: false; reason: 'expired' | 'revoked' };

/** Request facts recorded on a session. */
export interface ClientInfo {
  userAgent: string | null;
  ip: string | null;
}

/** Tokens handed out for a bearer session. */
export interface BearerTokens {
  session: SessionRecord;
  accessToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
  refreshToken: string;
}

/** Result of a refresh-token grant. */
export type RefreshResult =
  | { ok: true; tokens: BearerTokens }
  | { ok: false; reason: 'invalid' | 'expired' | 'reused' | 'disabled' };

/** Creates, checks and ends sessions and the tokens that are views of them (DESIGN.md §3). */
export interface SessionManager {
  /** Starts a bearer session: access token plus refresh token. */
  startBearerSession(userId: string, scopes: string[], client: ClientInfo): Promise<BearerTokens>;
  /** Starts a browser session: an opaque cookie token (always new, so no session fixation). */
  startCookieSession(
    userId: string,
    scopes: string[],
    client: ClientInfo,
  ): Promise<{ session: SessionRecord; cookieToken: string }>;
  /** Rotates a refresh token; presenting a spent one revokes its whole session. */
  refresh(refreshToken: string): Promise<RefreshResult>;
  /** Checks an access token (a JWT or, with the database strategy, an opaque token). */
  verifyAccessToken(token: string): Promise<TokenCheck>;
  /** Checks a browser session cookie token. */
  verifyCookieToken(token: string): Promise<TokenCheck>;
  /**
   * Re-reads a cookie session by id: when it expires now (the earlier of its absolute and idle
   * expiry), or why it is over. For long-lived responses whose expiry passed: requests made since
   * may have pushed the idle expiry back.
   */
  checkCookieSession(sessionId: string): Promise<CookieSessionCheck>;
  /** Sessions of a user that are still live. */
  listSessions(userId: string): Promise<SessionRecord[]>;
  /** Revokes the given sessions everywhere, effective on the next request. */
  revokeSessions(ids: readonly string[]): Promise<number>;
  /** Revokes every session of a user (except `keep`), effective on the next request. */
  revokeUserSessions(userId: string, keep?: string): Promise<number>;
}

/** Dependencies of {@link createSessionManager}. */
export interface SessionManagerDeps {
  config: Pick<
    GatehouseConfig,
    'accessTokenTtl' | 'refreshIdleTtl' | 'sessionAbsoluteTtl' | 'tokenStrategy' | 'audience'
  >;
  sessions: SessionStore;
  users: UserStore;
  keyring: Keyring;
  revocations: RevocationList;
  bus: EventBus;
  clock: () => number;
}

type CachedToken = TokenIdentity;

interface CachedCookie extends CachedToken {
  lastUsedAt: number;
  /** When the row was read; re-read after {@link COOKIE_RECHECK_MS}. */
  checkedAt: number;
}

// A cached cookie session is re-read from the database this often, so a revocation this instance
// missed (a lost broadcast) cannot keep a cookie alive for longer than this.
const COOKIE_RECHECK_MS = 30_000;

const VERIFIED_CACHE_SIZE = 10_000;
// Writing last_used_at on every cookie request would put a database write on the hot path;
// once a minute is precise enough for the sessions list and the idle timeout.
const TOUCH_INTERVAL_MS = 60_000;

/** Creates the {@link SessionManager}. */
export function createSessionManager(deps: SessionManagerDeps): SessionManager {
  const { config, sessions, keyring, revocations, bus, clock } = deps;
  // Verified JWTs keyed by the whole token string: a hit skips signature verification (the
  // expensive part, DESIGN.md §6) but expiry and revocation are still checked every time.
  const verifiedJwts = new BoundedMap<string, CachedToken>(VERIFIED_CACHE_SIZE);
  const cookieCache = new BoundedMap<string, CachedCookie>(VERIFIED_CACHE_SIZE);

  const newSession = (userId: string, transport: SessionTransport, scopes: string[], client: ClientInfo) => {
    const now = clock();
    return {
      id: randomUUID(),
      userId,
      transport,
      scopes,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: now + config.sessionAbsoluteTtl * 1000,
      revokedAt: null,
      userAgent: client.userAgent?.slice(0, 512) ?? null,
      ip: client.ip,
    } satisfies SessionRecord;
  };

  const issueTokens = async (session: SessionRecord): Promise<BearerTokens> => {
    const now = clock();
    // No token may outlive its session's absolute expiry.
    const accessExpiresAt = Math.min(now + config.accessTokenTtl * 1000, session.expiresAt);
    const refreshExpiresAt = Math.min(now + config.refreshIdleTtl * 1000, session.expiresAt);
    let accessToken: string;
    if (config.tokenStrategy === 'database') {
      const opaque = generateOpaqueToken('gha');
      await sessions.insertAccessToken(
        opaque.hash,
        { sessionId: session.id, scopes: session.scopes, expiresAt: accessExpiresAt },
        now,
      );
      accessToken = opaque.token;
    } else {
      accessToken = await keyring.sign(
        {
          sub: session.userId,
          sid: session.id,
          scope: session.scopes.join(' '),
          aud: config.audience,
          iat: Math.floor(now / 1000),
          exp: Math.floor(accessExpiresAt / 1000),
          jti: randomUUID(),
        },
        ACCESS_TOKEN_TYP,
      );
    }
    const refresh = generateOpaqueToken('ghr');
    await sessions.insertRefreshToken(refresh.hash, session.id, now, refreshExpiresAt);
    return {
      session,
      accessToken,
      expiresIn: Math.max(0, Math.floor((accessExpiresAt - now) / 1000)),
      refreshToken: refresh.token,
    };
  };

  // A cookie session ends at its absolute expiry, or after REFRESH_TOKEN_IDLE_TTL unused
  // (OWASP Session Management Cheat Sheet: idle and absolute timeouts), whichever comes first.
  const cookieExpiryOf = (session: { expiresAt: number; lastUsedAt: number }) =>
    Math.min(session.expiresAt, session.lastUsedAt + config.refreshIdleTtl * 1000);

  const revokeSessions = async (ids: readonly string[]) => {
    const revoked = await sessions.revokeSessions(ids, clock());
    if (revoked.length > 0) await bus.publish({ type: 'sessions_revoked', sessions: revoked });
    return revoked.length;
  };

  const verifyJwt = async (token: string): Promise<TokenCheck> => {
    const now = clock();
    let entry = verifiedJwts.get(token);
    if (entry === undefined) {
      let payload: Awaited<ReturnType<Keyring['verify']>>;
      try {
        payload = await keyring.verify(token, {
          typ: ACCESS_TOKEN_TYP,
          audience: config.audience,
          requiredClaims: ['sub', 'sid', 'jti'],
          now,
        });
      } catch (error) {
        return { ok: false, reason: error instanceof joseErrors.JWTExpired ? 'expired' : 'invalid' };
      }
      const { sub, sid, scope, exp } = payload;
      if (
        typeof sub !== 'string' ||
        typeof sid !== 'string' ||
        typeof scope !== 'string' ||
        exp === undefined
      ) {
        return { ok: false, reason: 'invalid' };
      }
      entry = {
        userId: sub,
        sessionId: sid,
        scopes: scope === '' ? [] : scope.split(' '),
        expiresAt: exp * 1000,
      };
      verifiedJwts.set(token, entry);
    }
    if (entry.expiresAt <= now) {
      verifiedJwts.delete(token);
      return { ok: false, reason: 'expired' };
    }
    if (revocations.isRevoked(entry.sessionId)) return { ok: false, reason: 'revoked' };
    return {
      ok: true,
      userId: entry.userId,
      sessionId: entry.sessionId,
      scopes: entry.scopes,
      expiresAt: entry.expiresAt,
    };
  };

  const verifyOpaqueAccessToken = async (token: string): Promise<TokenCheck> => {
    if (!looksLikeOpaqueToken(token, 'gha')) return { ok: false, reason: 'invalid' };
    const record = await sessions.findAccessToken(hashOpaqueToken(token), clock());
    if (record === undefined || revocations.isRevoked(record.sessionId))
      return { ok: false, reason: 'invalid' };
    return {
      ok: true,
      userId: record.userId,
      sessionId: record.sessionId,
      scopes: record.scopes,
      expiresAt: record.expiresAt,
    };
  };

  return {
    async startBearerSession(userId, scopes, client) {
      const session = newSession(userId, 'bearer', scopes, client);
      await sessions.insertSession(session);
      return issueTokens(session);
    },

    async startCookieSession(userId, scopes, client) {
      const session = newSession(userId, 'cookie', scopes, client);
      const cookie = generateOpaqueToken('ghs');
      await sessions.insertSession(session, cookie.hash);
      return { session, cookieToken: cookie.token };
    },

    async refresh(refreshToken) {
      if (!looksLikeOpaqueToken(refreshToken, 'ghr')) return { ok: false, reason: 'invalid' };
      const now = clock();
      const spent = await sessions.spendRefreshToken(hashOpaqueToken(refreshToken), now);
      if (spent.status === 'unknown') return { ok: false, reason: 'invalid' };
      if (spent.status === 'reused') {
        // RFC 9700 §4.14.2: a spent refresh token coming back means it leaked (or a client raced
        // itself); either way the family is compromised, so the whole session ends.
        await revokeSessions([spent.sessionId]);
        return { ok: false, reason: 'reused' };
      }
      if (spent.expiresAt <= now) return { ok: false, reason: 'expired' };
      const session = await sessions.findSession(spent.sessionId);
      if (session === undefined || session.revokedAt !== null || session.expiresAt <= now) {
        return { ok: false, reason: 'invalid' };
      }
      const user = await deps.users.findUserById(session.userId);
      if (user === undefined || !user.isActive) return { ok: false, reason: 'disabled' };
      await sessions.touchSession(session.id, now);
      // Defence in depth: never mint a scope the user's current role no longer allows, even if a
      // revocation after a role change was missed.
      const allowed = ROLE_SCOPES[user.role] as readonly string[];
      const scopes = session.scopes.filter((scope) => allowed.includes(scope));
      return { ok: true, tokens: await issueTokens({ ...session, scopes, lastUsedAt: now }) };
    },

    verifyAccessToken(token) {
      return config.tokenStrategy === 'database' ? verifyOpaqueAccessToken(token) : verifyJwt(token);
    },

    async verifyCookieToken(token) {
      if (!looksLikeOpaqueToken(token, 'ghs')) return { ok: false, reason: 'malformed' };
      const now = clock();
      let entry = cookieCache.get(token);
      if (entry !== undefined && now - entry.checkedAt >= COOKIE_RECHECK_MS) entry = undefined;
      if (entry === undefined) {
        const session = await sessions.findSessionByCookieHash(hashOpaqueToken(token));
        if (session === undefined || session.revokedAt !== null) return { ok: false, reason: 'invalid' };
        entry = {
          userId: session.userId,
          sessionId: session.id,
          scopes: session.scopes,
          expiresAt: session.expiresAt,
          lastUsedAt: session.lastUsedAt,
          checkedAt: now,
        };
        cookieCache.set(token, entry);
      }
      if (revocations.isRevoked(entry.sessionId)) {
        cookieCache.delete(token);
        return { ok: false, reason: 'revoked' };
      }
      if (cookieExpiryOf(entry) <= now) {
        cookieCache.delete(token);
        return { ok: false, reason: 'expired' };
      }
      if (now - entry.lastUsedAt >= TOUCH_INTERVAL_MS) {
        entry.lastUsedAt = now;
        await sessions.touchSession(entry.sessionId, now);
      }
      return {
        ok: true,
        userId: entry.userId,
        sessionId: entry.sessionId,
        scopes: entry.scopes,
        expiresAt: cookieExpiryOf(entry),
      };
    },

    async checkCookieSession(sessionId) {
      const session = await sessions.findSession(sessionId);
      if (session === undefined || session.revokedAt !== null || revocations.isRevoked(sessionId)) {
        return { ok: false, reason: session === undefined ? 'expired' : 'revoked' };
      }
      const expiresAt = cookieExpiryOf(session);
      return expiresAt <= clock() ? { ok: false, reason: 'expired' } : { ok: true, expiresAt };
    },

    listSessions: (userId) => sessions.listLiveSessions(userId, clock()),

    revokeSessions,

    async revokeUserSessions(userId, keep) {
      const revoked = await sessions.revokeUserSessions(userId, clock(), keep);
      if (revoked.length > 0) await bus.publish({ type: 'sessions_revoked', sessions: revoked });
      return revoked.length;
    },
  };
}
