import { randomUUID } from 'node:crypto';
import { errors as joseErrors } from 'jose';
import { createScopePolicy, OIDC_SCOPES, type ScopePolicy } from '../accounts/scopes.js';
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import type { GatehouseConfig } from '../config/config.js';
import { GatehouseError } from '../errors.js';
import { type EventBus, publishRevokedSessions } from '../events/event-bus.js';
import { BoundedMap } from '../lib/bounded-map.js';
import type { CacheStats } from '../lib/cache-stats.js';
import type { NoticeWriter } from '../mail/security-notices.js';
import type { MfaStore } from '../mfa/storage/mfa-store.js';
import type { OAuthGrantStore } from '../storage/oauth-grant-store.js';
import type {
  RevokedSession,
  SessionRecord,
  SessionStore,
  SessionTransport,
} from '../storage/session-store.js';
import type { SpentChallengeStore } from '../storage/spent-challenge-store.js';
import type { UserStore } from '../storage/user-store.js';
import type { Keyring } from '../tokens/keyring.js';
import { generateOpaqueToken, hashOpaqueToken, looksLikeOpaqueToken } from '../tokens/opaque-token.js';
import { createRefreshTokens, looksLikeRefreshToken } from '../tokens/refresh-token.js';
import { createTokenSealer } from '../tokens/token-sealer.js';
import type { RevocationList } from './revocation-list.js';

/** `typ` header of access tokens (RFC 9068 §2.1). */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/**
 * `client_id` of access tokens issued to a caller that named no client (RFC 9068 §2.2 requires the
 * claim): Gatehouse's own first-party clients, i.e. the web UI, Swagger UI and scripts using
 * `/token` directly.
 */
export const FIRST_PARTY_CLIENT_ID = 'gatehouse';

/** Who is calling, as proven by a valid token. */
export interface TokenIdentity {
  userId: string;
  sessionId: string;
  scopes: string[];
  /**
   * The client the credential was issued to (RFC 9068 §2.2 `client_id`): a registered OAuth
   * client's id for tokens of the authorization code flow, a first-party label or `gatehouse`
   * (the first-party id) for the password grant, and `gatehouse` for cookie sessions and tokens
   * from before the claim.
   */
  clientId: string;
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

/** Outcome of `SessionManager.checkCookieSession`. */
export type CookieSessionCheck =
  | { ok: true; expiresAt: number }
  | { ok: false; reason: 'expired' | 'revoked' };

/** Request facts recorded on a session. */
export interface ClientInfo {
  userAgent: string | null;
  ip: string | null;
}

/** Tokens handed out for a bearer session. */
/**
 * The tokens of a bearer session. `Refresh`: whether it is known to carry a refresh token (`true`
 * unless it was started with `refreshToken: false`, see {@link SessionStartOptions.refreshToken}).
 */
export interface BearerTokens<Refresh extends boolean = true> {
  session: SessionRecord;
  accessToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
  /** Undefined when the session was started without one ({@link SessionStartOptions.refreshToken}). */
  refreshToken: Refresh extends true ? string : string | undefined;
}

/** Result of a refresh-token grant. */
export type RefreshResult =
  | {
      ok: true;
      tokens: BearerTokens;
      /** True when a just-spent token was retried within the grace interval (same refresh token back). */
      retried: boolean;
    }
  | { ok: false; reason: 'invalid' | 'expired' | 'reused' | 'disabled' }
  /** The request asked for scopes the session was never granted (RFC 6749 §6); nothing changed. */
  | { ok: false; reason: 'invalid_scope'; rejected: string[] };

/** Which kind of token a revocation request says it carries (RFC 7009 §2.1 `token_type_hint`). */
export type TokenTypeHint = 'access_token' | 'refresh_token';

/** Outcome of {@link SessionManager.revokeToken}: the session ended, or nothing changed. */
export type TokenRevocation = { revoked: true; sessionId: string; userId: string } | { revoked: false };

/** Creates, checks and ends sessions and the tokens that are views of them (DESIGN.md §3). */
export interface SessionManager {
  /**
   * Starts a bearer session: access token plus refresh token (unless `options.refreshToken` is
   * false). `clientId` becomes the access
   * token's `client_id` (RFC 9068 §2.2). @default FIRST_PARTY_CLIENT_ID
   */
  startBearerSession<Refresh extends boolean = true>(
    userId: string,
    scopes: string[],
    client: ClientInfo,
    clientId?: string,
    options?: SessionStartOptions & { refreshToken?: Refresh },
  ): Promise<BearerTokens<Refresh>>;
  /**
   * Starts a browser session: an opaque cookie token (always new, so no session fixation).
   * `options.replaces` names the session this browser had, revoked in the same transaction.
   */
  startCookieSession(
    userId: string,
    scopes: string[],
    client: ClientInfo,
    options?: SessionStartOptions & { replaces?: string },
  ): Promise<{ session: SessionRecord; cookieToken: string }>;
  /**
   * Rotates a refresh token, in one transaction with its checks. `requestedScopes` (the grant's
   * `scope`) must be a subset of the session's; they are checked before anything is written.
   * Presenting the just-spent token again within `refreshReuseInterval` returns the same successor
   * with a new access token; presenting a spent one later revokes its whole session. `clientId`
   * is the new access token's `client_id` (the client making this request). @default FIRST_PARTY_CLIENT_ID
   */
  refresh(
    refreshToken: string,
    requestedScopes?: readonly string[],
    clientId?: string,
    options?: RefreshOptions,
  ): Promise<RefreshResult>;
  /** Checks an access token (a JWT or, with the database strategy, an opaque token). */
  verifyAccessToken(token: string): Promise<TokenCheck>;
  /** Checks a browser session cookie token. */
  verifyCookieToken(token: string): Promise<TokenCheck>;
  /**
   * The answer {@link verifyAccessToken} would give, synchronously, when memory alone decides it
   * (a verified JWT or an opaque token read less than 30 s ago: expiry and the revocation set are
   * checked as always); `undefined` when the token must be verified or read, then call
   * {@link verifyAccessToken}. Lets the HTTP guard answer most requests without a promise (issue 10).
   */
  peekAccessToken(token: string): TokenCheck | undefined;
  /**
   * The same for a cookie token: `undefined` when the session must be read, or its last use
   * written (`TOUCH_INTERVAL_MS`), then call {@link verifyCookieToken}.
   */
  peekCookieToken(token: string): TokenCheck | undefined;
  /**
   * Re-reads a cookie session by id: when it expires now (the earlier of its absolute and idle
   * expiry), or why it is over. For long-lived responses whose expiry passed: requests made since
   * may have pushed the idle expiry back.
   */
  checkCookieSession(sessionId: string): Promise<CookieSessionCheck>;
  /** Sessions of a user that are still live. */
  listSessions(userId: string): Promise<SessionRecord[]>;
  /**
   * Revokes the given sessions everywhere, effective on the next request. `audit` (built from the
   * number ended) is written in the revocation's transaction: a failing audit write rolls the
   * revocation back, so a logout is never in effect without its entry. @default no entry
   */
  revokeSessions(ids: readonly string[], audit?: RevocationAudit): Promise<number>;
  /**
   * RFC 7009: ends the session behind a refresh or access token, everywhere on the next request
   * (a token is a view of its session, so revoking either ends both). `hint` only orders the
   * look-ups (§2.1). Unknown, expired or malformed tokens, and access tokens whose `client_id` is
   * not `clientId`, are left alone (`revoked: false`; the endpoint still answers 200, §2.2).
   */
  revokeToken(
    token: string,
    options: {
      hint?: TokenTypeHint;
      clientId: string;
      /**
       * The entry recording the revocation, written in its transaction (a failed write rolls it
       * back), and only when it ended a session. @default no entry
       */
      audit?: (ended: { sessionId: string; userId: string }) => AuditEntry;
    },
  ): Promise<TokenRevocation>;
  /**
   * Revokes every session of a user (except `keep`), effective on the next request; `audit` as
   * for {@link SessionManager.revokeSessions}.
   */
  revokeUserSessions(userId: string, keep?: string, audit?: RevocationAudit): Promise<number>;
  /**
   * Tells this instance and the others (over the bus) what a committed `gatehouse revoke-all`
   * (`sessions/revoke-all.ts`) did: the sessions it ended and the cut-off it raised, which each
   * instance's revocation list would otherwise read at its next reload.
   */
  announceRevokeAll(outcome: { sessions: readonly RevokedSession[]; notBefore: number }): Promise<void>;
  /** Hits and misses of the verified-token caches since start, by cache (metrics). */
  cacheStats(): Record<TokenCacheName, CacheStats>;
}

/** Options of {@link SessionManager.refresh}. */
export interface RefreshOptions {
  /**
   * The entry recording a detected reuse (RFC 9700 §4.14.2), built from the session and whether
   * this reuse ended it (false: it had ended already), written in the transaction that ends it, so
   * the session is never revoked without its entry.
   * @default no entry
   */
  reuseAudit?: (session: SessionRecord, ended: boolean) => AuditEntry;
}

/**
 * The audit entry of a revocation, built from the number of sessions it ended, written in the
 * revocation's own transaction (a logout, "log out everywhere", ending one session).
 */
export type RevocationAudit = (revoked: number) => AuditEntry;

/** The token caches of a {@link SessionManager}: verified JWTs, opaque access tokens, cookies. */
export type TokenCacheName = 'jwt' | 'opaque' | 'cookie';

/**
 * The stores a refresh or a session start runs on inside one transaction, with those of what a
 * login may spend in it ({@link SessionStartOptions.spend}).
 */
export interface RefreshStores {
  sessions: SessionStore;
  users: UserStore;
  /** The audit log writing in the same transaction (a login's entry commits with its session). */
  audit: Pick<AuditLog, 'record'>;
  /** Second factors, for a login that spends one ({@link SessionStartOptions.spend}). */
  mfa: Pick<
    MfaStore,
    'acceptTotpStep' | 'useRecoveryCode' | 'endRunBeforeRecoveryCode' | 'countRecoveryCodes'
  >;
  /** The owner's notices of such a login (a recovery code spent), committed with its session. */
  notices: NoticeWriter;
  /** Single-use challenges (`mfa_token`), claimed by the login that spends them. */
  spent: Pick<SpentChallengeStore, 'claimChallenge'>;
  /** OAuth authorization codes, spent by the exchange that starts the session. */
  grants: Pick<OAuthGrantStore, 'holdClient' | 'spendCode' | 'attachSession'>;
}

/** Options of {@link SessionManager.startBearerSession} and {@link SessionManager.startCookieSession}. */
export interface SessionStartOptions {
  /**
   * The audit entry of the login that starts the session, built from the new session (its id goes
   * in the details). Written in the session's own transaction, so a login is one write
   * transaction (session, refresh or access token, audit row: issue 10) and a session is never
   * committed without its entry. @default no entry
   */
  audit?: (session: SessionRecord) => AuditEntry;
  /**
   * How the user authenticated (RFC 8176 `amr`): recorded on the session, and copied into its
   * access tokens. @default ['pwd']
   */
  amr?: string[];
  /**
   * When the person authenticated, epoch ms (OIDC Core §2 `auth_time`): the session's
   * `auth_time`, which step-up (RFC 9470, `STEP_UP_MAX_AGE`) measures. A session started from an
   * earlier sign-in (the authorization code flow: the code carries the browser sign-in's time)
   * must pass it, or the token exchange would count as a fresh authentication (red-team 2026-12c
   * H2). Never later than now. @default now (the session starts with the authentication)
   */
  authTime?: number | undefined;
  /**
   * A password hash to upgrade in the same transaction (a legacy or older-parameter hash re-hashed
   * by the login that proved the password; see {@link PasswordUpgrade}). Applied only if the
   * stored hash is still the one verified. @default none
   */
  passwordUpgrade?: PasswordUpgrade | undefined;
  /**
   * What the session is bought with (a recovery code, a TOTP step, a single-use `mfa_token`, an
   * authorization code), spent first inside the session's own transaction (`session` is the one
   * about to be written, for a spend that records it): a database failure, or the process dying,
   * before the session is written rolls the spending back with it, so the user can try again with
   * the same code instead of losing it. Throws to refuse (another request spent it first): nothing
   * is written, and the start rejects with what it threw. @default nothing to spend
   */
  spend?: ((stores: RefreshStores, session: SessionRecord) => Promise<void>) | undefined;
  /**
   * The account's credentials version (`UserRecord.credentialsVersion`) as read when the sign-in
   * was decided (the record its password was checked against, or the one its `mfa_token` or
   * passkey was issued for). Re-read by the session's transaction as its first statement, under
   * the user row's lock (see `signInTransaction`): if it moved (a reset, a password change, "log out everywhere"… committed meanwhile), nothing is
   * written and the start rejects with INVALID_CREDENTIALS, as a wrong password would (red-team
   * 2026-12d I3). @default not checked (a start decided by other means: an authorization code,
   * which every such change deletes)
   */
  credentialsVersion?: number | undefined;
  /**
   * Whether the bearer session gets a refresh token. False for an app registered without the
   * `refresh_token` grant: it could never use one (the grant answers `unauthorized_client`), so
   * issuing it would only leave a live credential in the app's hands and a row in the database
   * (RFC 6749 §1.5 and §5.1: a refresh token is optional, issued at the server's discretion). The
   * session then ends with its access token. @default true
   */
  refreshToken?: boolean | undefined;
}

/**
 * Replace `from` by `to` as the account's password hash: both computed before the transaction
 * (hashing never runs inside one). Carried from the password check to the session's transaction.
 */
export interface PasswordUpgrade {
  userId: string;
  /** The hash the password was verified against. */
  from: string;
  /** The same password hashed with the current argon2id parameters. */
  to: string;
}

/** Dependencies of {@link createSessionManager}. */
export interface SessionManagerDeps {
  /** The server's scopes, its apps' included. @default createScopePolicy() (the core's alone) */
  scopes?: ScopePolicy;
  config: Pick<
    GatehouseConfig,
    | 'accessTokenTtl'
    | 'refreshIdleTtl'
    | 'sessionAbsoluteTtl'
    | 'tokenStrategy'
    | 'audience'
    | 'refreshReuseInterval'
    | 'secretKey'
    | 'secretKeyPrevious'
    | 'maxSessionsPerAccount'
  >;
  sessions: SessionStore;
  users: UserStore;
  /**
   * Runs `work` in one database transaction over stores bound to it (`Database.transaction`);
   * commits when it resolves, rolls back when it throws.
   */
  transaction<T>(work: (stores: RefreshStores) => Promise<T>): Promise<T>;
  keyring: Keyring;
  revocations: RevocationList;
  bus: EventBus;
  clock: () => number;
}

type CachedToken = TokenIdentity;

interface CachedJwt extends CachedToken {
  /** The whole verified token: a hit must be byte-identical to it, not only share its signature. */
  token: string;
  /** Its `iat`, in seconds: checked against the revocation cut-off on every use. */
  issuedAt: number;
}

/**
 * The key of a JWT in the verified-token cache: its signature segment (after the last '.').
 * V8 hashes a string key in full on every Map lookup, and a request's token is a fresh string each
 * time, so keying on the whole ≈ 600-character token hashed all of it per request; the signature
 * is 43 characters for HS256 and identifies the token as well. The entry keeps the whole token and
 * a hit compares it, so a token that reuses a signature with another header or payload misses and
 * is verified (and refused) like any unknown token.
 */
const jwtCacheKey = (token: string): string => token.slice(token.lastIndexOf('.') + 1);

interface CachedCookie extends CachedToken {
  lastUsedAt: number;
  /** When the row was read; re-read after {@link COOKIE_RECHECK_MS}. */
  checkedAt: number;
  /** The revocation list's `cutoffGeneration` when the read began; re-read once it moves on. */
  cutoffGeneration: number;
}

interface CachedOpaqueToken extends CachedToken {
  /** When the row was read; re-read after {@link COOKIE_RECHECK_MS}. */
  checkedAt: number;
  /** The revocation list's `cutoffGeneration` when the read began; re-read once it moves on. */
  cutoffGeneration: number;
}

/**
 * A cached cookie session is re-read from the database this often, so a revocation this instance
 * missed (a lost broadcast) cannot keep a cookie alive for longer than this, and the revocation
 * list must keep an entry at least this long (see `revocationRetentionMs`).
 */
export const COOKIE_RECHECK_MS = 30_000;

const VERIFIED_CACHE_SIZE = 10_000;

/**
 * `TOKEN_STRATEGY=database`: access-token rows a session keeps. A refresh beyond them deletes the
 * session's oldest, which then stop working (on an instance that verified one lately, this one
 * included, within {@link COOKIE_RECHECK_MS}). No client holds this many access tokens of one session at once: each
 * refresh replaces the one before.
 */
export const MAX_ACCESS_TOKENS_PER_SESSION = 10;
/**
 * Writing last_used_at on every cookie request would put a database write on the hot path;
 * once a minute is precise enough for the sessions list and the idle timeout.
 */
const TOUCH_INTERVAL_MS = 60_000;

/**
 * The identity a cache entry proves, copied field by field so the entry's own bookkeeping
 * (`checkedAt`, `lastUsedAt`) never reaches callers.
 */
function accepted(entry: Omit<TokenIdentity, 'expiresAt'>, expiresAt: number): TokenCheck {
  return {
    ok: true,
    userId: entry.userId,
    sessionId: entry.sessionId,
    scopes: entry.scopes,
    clientId: entry.clientId,
    expiresAt,
  };
}

/**
 * Creates the {@link SessionManager}.
 *
 * Its two caches and their staleness bounds:
 * - verified JWTs (bounded, keyed by their signature segment; a hit needs the byte-identical
 *   token): only the signature check is cached; expiry and the revocation list are consulted
 *   on every hit, so a hit is never more stale than the revocation list itself (a broadcast: at
 *   once; a lost one: at most `REVOCATION_RELOAD_INTERVAL`);
 * - cookie sessions (bounded, keyed by cookie token): the session row is re-read at least every
 *   {@link COOKIE_RECHECK_MS}, and the revocation list is consulted on every hit, so a missed
 *   revocation keeps a cookie working for at most min(30 s, `REVOCATION_RELOAD_INTERVAL`); the
 *   cached `last_used_at` lags by at most {@link TOUCH_INTERVAL_MS} (idle timeout precision);
 * - opaque access tokens (`TOKEN_STRATEGY=database`; bounded, keyed by token): the same rule as
 *   cookies, so a database read happens at most once per token per {@link COOKIE_RECHECK_MS}
 *   instead of on every request (issue 10: the lookup was ~35 % of that route's profile); expiry
 *   and the revocation list are checked on every hit. A token row deleted without revoking its
 *   session keeps working on this instance for at most that long.
 */
export function createSessionManager(deps: SessionManagerDeps): SessionManager {
  const { config, sessions, keyring, revocations, bus, clock } = deps;
  const scopePolicy = deps.scopes ?? createScopePolicy();
  // Verified JWTs keyed by their signature segment (`jwtCacheKey`), holding the whole token: a hit
  // (byte-identical token) skips signature verification (the expensive part, DESIGN.md §6) but
  // expiry and revocation are still checked every time.
  const verifiedJwts = new BoundedMap<string, CachedJwt>(VERIFIED_CACHE_SIZE);
  const counts: Record<TokenCacheName, CacheStats> = {
    jwt: { hits: 0, misses: 0 },
    opaque: { hits: 0, misses: 0 },
    cookie: { hits: 0, misses: 0 },
  };
  const cookieCache = new BoundedMap<string, CachedCookie>(VERIFIED_CACHE_SIZE);
  const opaqueCache = new BoundedMap<string, CachedOpaqueToken>(VERIFIED_CACHE_SIZE);
  const sealer = createTokenSealer(config.secretKey, config.secretKeyPrevious);
  const refreshTokens = createRefreshTokens({
    secretKey: config.secretKey,
    previousSecretKey: config.secretKeyPrevious,
  });
  const graceMs = config.refreshReuseInterval * 1000;

  const newSession = (
    userId: string,
    transport: SessionTransport,
    scopes: string[],
    client: ClientInfo,
    clientId: string,
    { amr = ['pwd'], authTime }: Pick<SessionStartOptions, 'amr' | 'authTime'>,
  ) => {
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
      authTime: authTime === undefined ? now : Math.min(authTime, now),
      amr,
      clientId,
    } satisfies SessionRecord;
  };

  // No token may outlive its session's absolute expiry.
  const accessExpiry = (session: SessionRecord, now: number) =>
    Math.min(now + config.accessTokenTtl * 1000, session.expiresAt);
  const refreshExpiry = (session: SessionRecord, now: number) =>
    Math.min(now + config.refreshIdleTtl * 1000, session.expiresAt);

  /**
   * The access token for `session`: with the database strategy an opaque token stored through
   * `store` (inside the caller's transaction, if any); otherwise `undefined`, and the JWT is signed
   * by {@link signAccessJwt} once the transaction is over (signing needs no database).
   */
  const storeOpaqueAccessToken = async (
    store: SessionStore,
    session: SessionRecord,
    now: number,
    clientId: string,
  ) => {
    if (config.tokenStrategy !== 'database') return undefined;
    const opaque = generateOpaqueToken('gha');
    await store.insertAccessToken(
      opaque.hash,
      { sessionId: session.id, scopes: session.scopes, expiresAt: accessExpiry(session, now), clientId },
      now,
    );
    return opaque.token;
  };

  // RFC 9068 §2.2: iss (added by the keyring), exp, aud, sub, client_id, iat, jti; scope and our sid.
  const signAccessJwt = (session: SessionRecord, now: number, clientId: string) =>
    keyring.sign(
      {
        sub: session.userId,
        client_id: clientId,
        sid: session.id,
        scope: session.scopes.join(' '),
        aud: config.audience,
        iat: Math.floor(now / 1000),
        exp: Math.floor(accessExpiry(session, now) / 1000),
        jti: randomUUID(),
        // OIDC Core §2 / RFC 9470 §3: when and how the user authenticated, so a resource server
        // can demand a fresher authentication. Our own sensitive routes read the session row
        // instead, which a re-authentication moves without reissuing tokens.
        auth_time: Math.floor((session.authTime ?? session.createdAt) / 1000),
        amr: session.amr ?? ['pwd'],
      },
      ACCESS_TOKEN_TYP,
    );

  /**
   * Stores the upgraded hash inside the login's transaction. The user cache holds no password
   * hash, so nothing else needs telling; a hash changed meanwhile (a password change) wins.
   */
  const upgradePassword = async (
    users: UserStore,
    upgrade: PasswordUpgrade | undefined,
    now: number,
  ): Promise<void> => {
    if (upgrade === undefined) return;
    await users.replacePasswordHash(upgrade.userId, upgrade.from, upgrade.to, now);
  };

  /**
   * Runs a sign-in's transaction for `session`. Its first statement reads the account and takes
   * its row's share on PostgreSQL (`UserStore.lockCredentialsVersion`: `FOR KEY SHARE`, or `FOR NO KEY
   * UPDATE` when the login also upgrades the account's hash, so the lock is never strengthened
   * later), before anything the sign-in spends (a code, a TOTP step, a recovery code) or writes.
   * That is the lock order (ARCHITECTURE.md, "Lock order"): a change that holds the user row
   * `FOR UPDATE` and then deletes those rows (an admin's disable, a deletion, "log out
   * everywhere") makes the sign-in wait here, holding nothing it needs. Before, the sign-in spent
   * its code first and met the user row only at its session's insert (the foreign key): opposite
   * orders, and PostgreSQL ended one of the two with 40P01 (test/http/lock-order.test.ts).
   *
   * The read refuses, as a wrong password would (INVALID_CREDENTIALS):
   * - an account deleted since its credentials were checked (red-team 2026-12d I10);
   * - credentials that no longer hold ({@link SessionStartOptions.credentialsVersion}, red-team
   *   2026-12d I3): a revocation of all sessions that committed first has moved the version (the
   *   locking read sees it after waiting); one that comes later waits for this transaction
   *   (`moveCredentialsVersion`'s `FOR UPDATE`) and then ends this session.
   */
  const signInTransaction = async <T>(
    session: SessionRecord,
    { credentialsVersion, passwordUpgrade }: SessionStartOptions,
    work: (stores: RefreshStores) => Promise<T>,
  ): Promise<T> =>
    deps.transaction(async (stores) => {
      const mode = passwordUpgrade === undefined ? 'key share' : 'no key update';
      // Only the version is read: whatever ended the credentials (a reset, a disable, "log out
      // everywhere"…) moved it, and the caller checked the rest of the account before.
      const version = await stores.users.lockCredentialsVersion(session.userId, mode);
      if (version === undefined) {
        throw new GatehouseError('INVALID_CREDENTIALS', 'This account no longer exists.');
      }
      if (credentialsVersion !== undefined && version !== credentialsVersion) {
        // The same refusal as a wrong password: the sign-in learns nothing it could use.
        throw new GatehouseError('INVALID_CREDENTIALS', 'Invalid email or password.');
      }
      return work(stores);
    });

  /**
   * Writes `session` within MAX_SESSIONS_PER_ACCOUNT, half of it per client (`SessionStore.insertSessionWithinCap`): the
   * sessions it displaces are audited in the sign-in's transaction; returns every session ended
   * (those and the one it replaces), to be broadcast once the transaction commits.
   */
  const admitSession = async (
    stores: RefreshStores,
    session: SessionRecord,
    options: { cookieTokenHash?: string; replaces?: string | undefined },
  ): Promise<RevokedSession[]> => {
    const { replaced, displaced } = await stores.sessions.insertSessionWithinCap(session, {
      ...options,
      perAccount: config.maxSessionsPerAccount,
      // No client, first-party included, holds more than half: one app minting sessions can fill
      // only its half, so the person's other devices and apps keep theirs.
      perClient: Math.ceil(config.maxSessionsPerAccount / 2),
    });
    for (const old of displaced) {
      await stores.audit.record({
        event: 'session_displaced',
        actorId: session.userId,
        targetId: session.userId,
        details: { session: old.id, client_id: old.clientId, by_session: session.id },
      });
    }
    return [...replaced, ...displaced.map(({ id, expiresAt }) => ({ id, expiresAt }))];
  };

  /** Broadcasts a sign-in's ended sessions, after its commit: never for a change that rolled back. */
  const publishRevoked = async (revoked: RevokedSession[]) => {
    await publishRevokedSessions(bus, revoked);
  };

  const bearerTokens = <Token extends string | undefined>(
    session: SessionRecord,
    now: number,
    accessToken: string,
    refreshToken: Token,
  ) => ({
    session,
    accessToken,
    expiresIn: Math.max(0, Math.floor((accessExpiry(session, now) - now) / 1000)),
    refreshToken,
  });

  /**
   * Writes a new bearer session, its refresh token, its opaque access token (database strategy)
   * and the login's audit entry in one transaction, with what pays for it (`spend`); the JWT (the default strategy) is signed after
   * the commit, since signing needs no database and must not hold the transaction open.
   */
  const startBearer = async (
    session: SessionRecord,
    clientId: string,
    options: SessionStartOptions,
  ): Promise<BearerTokens<boolean>> => {
    const { audit, passwordUpgrade, spend } = options;
    const now = clock();
    const refresh = options.refreshToken === false ? undefined : refreshTokens.issue(session.id);
    const { token: opaque, ended } = await signInTransaction(session, options, async (stores) => {
      await spend?.(stores, session);
      await upgradePassword(stores.users, passwordUpgrade, now);
      const ended = await admitSession(stores, session, {});
      const token = await storeOpaqueAccessToken(stores.sessions, session, now, clientId);
      // RFC 6749 §10.4: the refresh token stays bound to the client it was issued to.
      if (refresh !== undefined) {
        await stores.sessions.insertRefreshToken(
          refresh.hash,
          session.id,
          now,
          refreshExpiry(session, now),
          clientId,
        );
      }
      if (audit !== undefined) await stores.audit.record(audit(session));
      return { token, ended };
    });
    await publishRevoked(ended);
    const accessToken = opaque ?? (await signAccessJwt(session, now, clientId));
    return bearerTokens(session, now, accessToken, refresh?.token);
  };

  /**
   * The successor a spent refresh token may hand out again: only within the grace interval after
   * it was spent, only while that successor is itself unspent and unexpired (once the client has
   * moved on, the old token coming back is a replay), and only if it decrypts.
   */
  const graceSuccessor = async (
    store: SessionStore,
    hash: string,
    spent: { spentAt: number; successor: string | null },
    now: number,
  ): Promise<string | undefined> => {
    if (graceMs === 0 || spent.successor === null || now - spent.spentAt >= graceMs) return undefined;
    const successor = sealer.open(spent.successor, hash);
    if (successor === undefined) return undefined;
    const next = await store.findRefreshToken(hashOpaqueToken(successor));
    if (next === undefined || next.spentAt !== null || next.expiresAt <= now) return undefined;
    return successor;
  };

  type RefreshOutcome =
    | { ok: false; result: Exclude<RefreshResult, { ok: true }>; revoked?: RevokedSession[] }
    | {
        ok: true;
        session: SessionRecord;
        refreshToken: string;
        accessToken: string | undefined;
        retried: boolean;
        /** The client the refresh token was issued to: the new access token's `client_id`. */
        clientId: string;
      };

  /**
   * A refresh token with no row: unknown, unless its family tag names a session of the client
   * presenting it. While that session is live and still holds a live refresh token (someone holds
   * its current token), this one is an older token of it, spent and pruned since
   * (`deleteSpentRefreshTokens`): RFC 9700 §4.14.2 reuse, and the session ends as it would for a
   * spent token whose row were kept. When the family has no live token left (a client back after
   * `REFRESH_TOKEN_IDLE_TTL`, its row swept as expired), nobody can refresh it any more: `expired`,
   * and nothing ends. Another client's token changes nothing (RFC 6749 §10.4, as for a token with
   * a row). Tokens of the earlier, random-only layout carry no family: theirs is only `invalid`.
   */
  const prunedRefreshToken = async (
    stores: RefreshStores,
    token: string,
    now: number,
    requestingClient: string,
    reuseAudit: RefreshOptions['reuseAudit'],
  ): Promise<RefreshOutcome> => {
    const session = await familySessionOf(stores.sessions, token, requestingClient);
    if (session === undefined || session.revokedAt !== null)
      return { ok: false, result: { ok: false, reason: 'invalid' } };
    if (session.expiresAt <= now || !(await stores.sessions.hasLiveRefreshToken(session.id, now)))
      return { ok: false, result: { ok: false, reason: 'expired' } };
    return endReusedFamily(stores, session.id, now, reuseAudit, session);
  };

  /**
   * The session a refresh token's family tag names, when the tag verifies and the session is
   * `clientId`'s (RFC 6749 §10.4: another client's token is none of this one's business); for a
   * token whose row is gone (spent and pruned, or swept as expired).
   */
  const familySessionOf = async (
    store: Pick<SessionStore, 'findSession'>,
    token: string,
    clientId: string,
  ): Promise<SessionRecord | undefined> => {
    const family = refreshTokens.familyOf(token);
    const session = family === undefined ? undefined : await store.findSession(family);
    return session !== undefined && (session.clientId ?? FIRST_PARTY_CLIENT_ID) === clientId
      ? session
      : undefined;
  };

  /**
   * Ends the session of a reused refresh token, with its audit entry, in the refresh's
   * transaction; the revocation is broadcast after the commit. A reuse of a session already ended
   * (a thief replaying after a logout, a second replay) is audited too, as `already ended`: the
   * alarm is the token coming back, whatever the session's state.
   */
  const endReusedFamily = async (
    { sessions: store, audit }: RefreshStores,
    sessionId: string,
    now: number,
    reuseAudit: RefreshOptions['reuseAudit'],
    /** The session, when the caller has read it already. */
    known?: SessionRecord,
  ): Promise<RefreshOutcome> => {
    const session = reuseAudit === undefined ? undefined : (known ?? (await store.findSession(sessionId)));
    const revoked = await store.revokeSessions([sessionId], now);
    if (reuseAudit !== undefined && session !== undefined)
      await audit.record(reuseAudit(session, revoked.length > 0));
    return { ok: false, result: { ok: false, reason: 'reused' }, revoked };
  };

  /** The whole refresh, run inside one transaction: reads, checks, then writes. */
  const refreshInTransaction = async (
    stores: RefreshStores,
    presented: { token: string; hash: string },
    requestedScopes: readonly string[],
    now: number,
    requestingClient: string,
    reuseAudit: RefreshOptions['reuseAudit'],
  ): Promise<RefreshOutcome> => {
    const { sessions: store, users } = stores;
    // Two rounds at most: losing the compare-and-set to a concurrent refresh of the same token
    // means it is now spent, and the second round treats this request as a retry of it.
    const { hash } = presented;
    for (let round = 0; round < 2; round++) {
      const token = await store.findRefreshToken(hash);
      if (token === undefined)
        return prunedRefreshToken(stores, presented.token, now, requestingClient, reuseAudit);
      // RFC 6749 §10.4: a refresh token is bound to its client; another client presenting it gets
      // invalid_grant and changes nothing (it may be a leak, but revoking would let any client with
      // a stolen token log its owner out). Tokens from before migration 009 name no client.
      const clientId = token.clientId ?? requestingClient;
      if (clientId !== requestingClient) return { ok: false, result: { ok: false, reason: 'invalid' } };
      let successor: string | undefined;
      if (token.spentAt !== null) {
        successor = await graceSuccessor(
          store,
          hash,
          { spentAt: token.spentAt, successor: token.successor },
          now,
        );
        if (successor === undefined) {
          // RFC 9700 §4.14.2: a spent refresh token coming back outside the grace interval means
          // it leaked (or a client raced itself); either way the family is compromised, so the
          // whole session ends. Revoked in this transaction, broadcast after it commits.
          return endReusedFamily(stores, token.sessionId, now, reuseAudit);
        }
      } else if (token.expiresAt <= now) {
        return { ok: false, result: { ok: false, reason: 'expired' } };
      }
      const session = await store.findSession(token.sessionId);
      if (session === undefined || session.revokedAt !== null || session.expiresAt <= now) {
        return { ok: false, result: { ok: false, reason: 'invalid' } };
      }
      // The lock order (ARCHITECTURE.md): the user row's share before this refresh spends its
      // token or touches its session. A deletion holds the row `FOR UPDATE` and then deletes the
      // sessions and their refresh tokens (cascade): had the refresh spent its token first, each
      // would wait for the other (40P01, test/http/lock-order.test.ts). After waiting, the read
      // sees the account gone or disabled.
      const user = await users.lockUser(session.userId, 'key share');
      if (user === undefined || !user.isActive)
        return { ok: false, result: { ok: false, reason: 'disabled' } };
      // What the lock waited for may have ended this session ("log out everywhere", a password
      // change, a disconnected app: each holds the account's row while it revokes): read again,
      // or this refresh would hand out tokens of a session that has just ended.
      const live = await store.findSession(session.id);
      if (live === undefined || live.revokedAt !== null)
        return { ok: false, result: { ok: false, reason: 'invalid' } };
      // RFC 6749 §6: a refresh may not widen the scope originally granted. Checked before any
      // write, so a refused request leaves the refresh token as it was.
      const rejected = requestedScopes.filter((scope) => !session.scopes.includes(scope));
      if (rejected.length > 0) {
        return { ok: false, result: { ok: false, reason: 'invalid_scope', rejected } };
      }
      // RFC 6749 §6: the access token carries the scope asked for, when one was (the session and
      // its refresh token keep the scope granted: a later refresh may ask for all of it again).
      const asked = requestedScopes.length === 0 ? session.scopes : requestedScopes;
      // Defence in depth: never mint a scope the user's current role no longer allows, even if a
      // revocation after a role change was missed. OpenID Connect's scopes concern the person's
      // own identity and no role grants them (`/authorize` keeps them the same way): filtering
      // them out left an app's refreshed token unable to read `/userinfo`.
      const allowed = scopePolicy.forRole(user.role);
      const current = {
        ...session,
        scopes: session.scopes.filter(
          (scope) => asked.includes(scope) && (Object.hasOwn(OIDC_SCOPES, scope) || allowed.includes(scope)),
        ),
        lastUsedAt: now,
      };
      let refreshToken: string;
      if (successor === undefined) {
        const next = refreshTokens.issue(session.id);
        // The successor is kept (encrypted, bound to this row) for a retry within the interval.
        const sealed = graceMs > 0 ? sealer.seal(next.token, hash) : undefined;
        const spent = await store.spendRefreshToken(hash, now, sealed);
        if (spent.status !== 'spent') continue;
        // The session keeps two rows: the token just spent (a retry within the grace interval,
        // a reuse after it) and its successor. Older spent tokens are recognised by their
        // family tag when they come back (prunedRefreshToken), so their rows go: without this,
        // a client refreshing in a loop grew the table by a row per refresh for a week.
        await store.deleteSpentRefreshTokens(session.id, hash);
        await store.insertRefreshToken(next.hash, session.id, now, refreshExpiry(session, now), clientId);
        refreshToken = next.token;
      } else {
        refreshToken = successor;
      }
      await store.touchSession(session.id, now);
      const accessToken = await storeOpaqueAccessToken(store, current, now, clientId);
      // Each refresh (a retry within the grace interval too) mints an access token; with the
      // database strategy each is a row until it expires, so a client refreshing in a loop would
      // add rows as fast as it can ask. The session keeps its newest few; older ones end early.
      if (accessToken !== undefined)
        await store.deleteOlderAccessTokens(session.id, MAX_ACCESS_TOKENS_PER_SESSION);
      return {
        ok: true,
        session: current,
        refreshToken,
        accessToken,
        retried: successor !== undefined,
        clientId,
      };
    }
    return { ok: false, result: { ok: false, reason: 'invalid' } };
  };

  /**
   * Whether a cached session row may still answer: read within {@link COOKIE_RECHECK_MS}, and after
   * this process learned the revocation cut-off. `gatehouse revoke-all` after a restore cannot name
   * the sessions opened after the backup (the restored database never knew them), so a row read
   * before the cut-off is read again: such a session has no row now, and its cookie or opaque token
   * is refused at once instead of passing from memory until the re-read falls due. Told by the
   * cut-off's generation, not by comparing `checkedAt` with the cut-off: the cut-off comes from the
   * clock of the machine revoke-all ran on, and with this one's ahead of it a row read before the
   * cut-off carried a later `checkedAt` and kept passing.
   */
  const isFresh = (entry: { checkedAt: number; cutoffGeneration: number }, now: number) =>
    now - entry.checkedAt < COOKIE_RECHECK_MS && entry.cutoffGeneration === revocations.cutoffGeneration;

  // A cookie session ends at its absolute expiry, or after REFRESH_TOKEN_IDLE_TTL unused
  // (OWASP Session Management Cheat Sheet: idle and absolute timeouts), whichever comes first.
  const cookieExpiryOf = (session: { expiresAt: number; lastUsedAt: number }) =>
    Math.min(session.expiresAt, session.lastUsedAt + config.refreshIdleTtl * 1000);

  /** Revocation and expiry of a cached cookie session, checked on every request. */
  const checkCookieEntry = (token: string, entry: CachedCookie, now: number): TokenCheck => {
    if (revocations.isRevoked(entry.sessionId)) {
      cookieCache.delete(token);
      return { ok: false, reason: 'revoked' };
    }
    if (cookieExpiryOf(entry) <= now) {
      cookieCache.delete(token);
      return { ok: false, reason: 'expired' };
    }
    return accepted(entry, cookieExpiryOf(entry));
  };

  /**
   * Runs a revocation (`revoke`, over the pool's store or a transaction's) and its audit entry in
   * one transaction when there is an entry, then broadcasts what it ended: after the commit, so a
   * broadcast never goes out for a revocation that rolled back.
   */
  const revokeAndAudit = async (
    revoke: (store: SessionStore) => Promise<RevokedSession[]>,
    // Undefined from `audit`: no entry for this outcome (an RFC 7009 revocation that ended nothing).
    audit: ((revoked: number) => AuditEntry | undefined) | undefined,
  ): Promise<number> => {
    const revoked =
      audit === undefined
        ? await revoke(sessions)
        : await deps.transaction(async (stores) => {
            const ended = await revoke(stores.sessions);
            const entry = audit(ended.length);
            if (entry !== undefined) await stores.audit.record(entry);
            return ended;
          });
    await publishRevokedSessions(bus, revoked);
    return revoked.length;
  };

  const revokeSessions = (ids: readonly string[], audit?: RevocationAudit) =>
    revokeAndAudit((store) => store.revokeSessions(ids, clock()), audit);

  // The keyring's revision changes when a signing key is revoked: every cached verification may be
  // of one of its tokens, so all are dropped (rare; the next request re-verifies).
  let keyRevision = keyring.revision();
  /** Expiry and revocation, checked on every request, cached or not. */
  const checkJwtEntry = (key: string, entry: CachedJwt, now: number): TokenCheck => {
    if (entry.expiresAt <= now) {
      verifiedJwts.delete(key);
      return { ok: false, reason: 'expired' };
    }
    // The cut-off too: `gatehouse revoke-all` after a restore ends tokens of sessions the restored
    // database never knew, which only their `iat` can tell (under HS256 no key revocation reaches them).
    if (revocations.isRevoked(entry.sessionId) || revocations.isCutOff(entry.issuedAt)) {
      return { ok: false, reason: 'revoked' };
    }
    return accepted(entry, entry.expiresAt);
  };

  /** The verdict on a JWT from the verified-token cache alone; undefined when not cached. */
  const peekJwt = (token: string, now: number): TokenCheck | undefined => {
    if (keyring.revision() !== keyRevision) {
      keyRevision = keyring.revision();
      verifiedJwts.clear();
    }
    const key = jwtCacheKey(token);
    const entry = verifiedJwts.get(key);
    // Another token with the same signature segment is not this one: verify it in full (and leave
    // the cached entry alone, so such tokens cannot evict a real one).
    if (entry === undefined || entry.token !== token) return undefined;
    counts.jwt.hits += 1;
    return checkJwtEntry(key, entry, now);
  };

  const verifyJwt = async (token: string): Promise<TokenCheck> => {
    const now = clock();
    const cached = peekJwt(token, now);
    if (cached !== undefined) return cached;
    counts.jwt.misses += 1;
    {
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
      const { sub, sid, scope, exp, iat, client_id: clientId } = payload;
      if (
        typeof sub !== 'string' ||
        typeof sid !== 'string' ||
        typeof scope !== 'string' ||
        exp === undefined ||
        iat === undefined
      ) {
        return { ok: false, reason: 'invalid' };
      }
      const entry: CachedJwt = {
        token,
        userId: sub,
        sessionId: sid,
        scopes: scope === '' ? [] : scope.split(' '),
        // Tokens signed before RFC 9068's `client_id` was added were all first-party.
        clientId: typeof clientId === 'string' ? clientId : FIRST_PARTY_CLIENT_ID,
        expiresAt: exp * 1000,
        issuedAt: iat,
      };
      const key = jwtCacheKey(token);
      verifiedJwts.set(key, entry);
      return checkJwtEntry(key, entry, now);
    }
  };

  const checkOpaqueEntry = (token: string, entry: CachedOpaqueToken, now: number): TokenCheck => {
    if (revocations.isRevoked(entry.sessionId) || entry.expiresAt <= now) {
      opaqueCache.delete(token);
      return { ok: false, reason: 'invalid' };
    }
    return accepted(entry, entry.expiresAt);
  };

  /** The verdict on an opaque token from memory alone; undefined when it must be read. */
  const peekOpaque = (token: string, now: number): TokenCheck | undefined => {
    if (!looksLikeOpaqueToken(token, 'gha')) return { ok: false, reason: 'invalid' };
    const entry = opaqueCache.get(token);
    if (entry === undefined || !isFresh(entry, now)) return undefined;
    counts.opaque.hits += 1;
    return checkOpaqueEntry(token, entry, now);
  };

  const verifyOpaqueAccessToken = async (token: string): Promise<TokenCheck> => {
    const now = clock();
    const cached = peekOpaque(token, now);
    if (cached !== undefined) return cached;
    counts.opaque.misses += 1;
    {
      // Before the read: a cut-off learned while it runs makes the row stale.
      const cutoffGeneration = revocations.cutoffGeneration;
      const record = await sessions.findAccessToken(hashOpaqueToken(token), now);
      if (record === undefined) return { ok: false, reason: 'invalid' };
      const entry: CachedOpaqueToken = {
        userId: record.userId,
        sessionId: record.sessionId,
        scopes: record.scopes,
        // Rows from before migration 009 carry no client and count as first-party, like old JWTs.
        clientId: record.clientId ?? FIRST_PARTY_CLIENT_ID,
        expiresAt: record.expiresAt,
        checkedAt: now,
        cutoffGeneration,
      };
      opaqueCache.set(token, entry);
      return checkOpaqueEntry(token, entry, now);
    }
  };

  /**
   * The session a refresh token of `clientId`'s belongs to (spent or not: its family is the
   * session). RFC 7009 §2.1: a token issued to another client is left alone; tokens from before
   * migration 009 name no client and count as anyone's.
   */
  const sessionOfRefreshToken = async (token: string, clientId: string) => {
    if (!looksLikeRefreshToken(token)) return undefined;
    const record = await sessions.findRefreshToken(hashOpaqueToken(token));
    // Spent and pruned since (or expired): its family tag still names its session.
    if (record === undefined) return (await familySessionOf(sessions, token, clientId))?.id;
    if (record.clientId !== null && record.clientId !== clientId) return undefined;
    return record.sessionId;
  };

  /** The session of a live access token of `clientId`'s, or undefined. */
  const sessionOfAccessToken = async (token: string, clientId: string) => {
    if (config.tokenStrategy === 'database') {
      if (!looksLikeOpaqueToken(token, 'gha')) return undefined;
      const record = await sessions.findAccessToken(hashOpaqueToken(token), clock());
      // Rows from before migration 009 carry no client and count as first-party, like old JWTs.
      if (record === undefined || (record.clientId ?? FIRST_PARTY_CLIENT_ID) !== clientId) return undefined;
      return record.sessionId;
    }
    let payload: Awaited<ReturnType<Keyring['verify']>>;
    try {
      payload = await keyring.verify(token, {
        typ: ACCESS_TOKEN_TYP,
        audience: config.audience,
        requiredClaims: ['sid'],
        now: clock(),
      });
    } catch {
      return undefined;
    }
    // RFC 7009 §2.1: the server checks the token was issued to the client asking; a token of
    // another client is left alone (issue 11). Tokens from before `client_id` count as first-party.
    const owner = typeof payload.client_id === 'string' ? payload.client_id : FIRST_PARTY_CLIENT_ID;
    return owner === clientId && typeof payload.sid === 'string' ? payload.sid : undefined;
  };

  return {
    async revokeToken(token, { hint, clientId, audit }) {
      const lookups =
        hint === 'refresh_token'
          ? [() => sessionOfRefreshToken(token, clientId), () => sessionOfAccessToken(token, clientId)]
          : [() => sessionOfAccessToken(token, clientId), () => sessionOfRefreshToken(token, clientId)];
      for (const lookup of lookups) {
        const sessionId = await lookup();
        if (sessionId === undefined) continue;
        const session = await sessions.findSession(sessionId);
        // Already over: nothing to revoke, broadcast or audit again.
        if (session === undefined || session.revokedAt !== null) return { revoked: false };
        const { userId } = session;
        // The entry goes in the revocation's transaction, and only if this request ended the
        // session (two concurrent revocations record one).
        const ended = await revokeAndAudit(
          (store) => store.revokeSessions([sessionId], clock()),
          audit === undefined ? undefined : (count) => (count > 0 ? audit({ sessionId, userId }) : undefined),
        );
        return ended > 0 ? { revoked: true, sessionId, userId } : { revoked: false };
      }
      return { revoked: false };
    },

    async startBearerSession<Refresh extends boolean = true>(
      userId: string,
      scopes: string[],
      client: ClientInfo,
      clientId = FIRST_PARTY_CLIENT_ID,
      options: SessionStartOptions & { refreshToken?: Refresh } = {},
    ) {
      const started = newSession(userId, 'bearer', scopes, client, clientId, options);
      // Without a refresh token nothing can use the session once its access token expires, so it
      // ends then: it neither lists as live for SESSION_ABSOLUTE_TTL nor fills the session cap.
      const session =
        options.refreshToken === false
          ? {
              ...started,
              expiresAt: Math.min(started.expiresAt, started.createdAt + config.accessTokenTtl * 1000),
            }
          : started;
      // A refresh token unless `options.refreshToken` is false: what BearerTokens<Refresh> says.
      return (await startBearer(session, clientId, options)) as BearerTokens<Refresh>;
    },

    async startCookieSession(userId, scopes, client, options = {}) {
      // Cookies are only ever set by Gatehouse's own sign-in pages and routes.
      const session = newSession(userId, 'cookie', scopes, client, FIRST_PARTY_CLIENT_ID, options);
      const cookie = generateOpaqueToken('ghs');
      const { replaces, audit, passwordUpgrade, spend } = options;
      // One write transaction per login: what it is bought with is spent, the browser's previous
      // session ends, the new one and its audit entry are written (and an imported hash
      // upgraded), together or not at all.
      const revoked = await signInTransaction(session, options, async (stores) => {
        await spend?.(stores, session);
        await upgradePassword(stores.users, passwordUpgrade, clock());
        const ended = await admitSession(stores, session, { cookieTokenHash: cookie.hash, replaces });
        if (audit !== undefined) await stores.audit.record(audit(session));
        return ended;
      });
      await publishRevoked(revoked);
      return { session, cookieToken: cookie.token };
    },

    async refresh(refreshToken, requestedScopes = [], clientId = FIRST_PARTY_CLIENT_ID, options = {}) {
      if (!looksLikeRefreshToken(refreshToken)) return { ok: false, reason: 'invalid' };
      const now = clock();
      const presented = { token: refreshToken, hash: hashOpaqueToken(refreshToken) };
      const outcome = await deps.transaction((stores) =>
        refreshInTransaction(stores, presented, requestedScopes, now, clientId, options.reuseAudit),
      );
      if (!outcome.ok) {
        // After the commit: a broadcast never goes out for a change that rolled back.
        await publishRevokedSessions(bus, outcome.revoked ?? []);
        return outcome.result;
      }
      const accessToken =
        outcome.accessToken ?? (await signAccessJwt(outcome.session, now, outcome.clientId));
      return {
        ok: true,
        tokens: bearerTokens(outcome.session, now, accessToken, outcome.refreshToken),
        retried: outcome.retried,
      };
    },

    verifyAccessToken(token) {
      return config.tokenStrategy === 'database' ? verifyOpaqueAccessToken(token) : verifyJwt(token);
    },

    peekAccessToken(token) {
      return config.tokenStrategy === 'database' ? peekOpaque(token, clock()) : peekJwt(token, clock());
    },

    peekCookieToken(token) {
      if (!looksLikeOpaqueToken(token, 'ghs')) return { ok: false, reason: 'malformed' };
      const now = clock();
      const entry = cookieCache.get(token);
      if (entry === undefined || !isFresh(entry, now)) return undefined;
      const verdict = checkCookieEntry(token, entry, now);
      // A last use to write needs the database: the asynchronous path does it.
      if (verdict.ok && now - entry.lastUsedAt >= TOUCH_INTERVAL_MS) return undefined;
      counts.cookie.hits += 1;
      return verdict;
    },

    async verifyCookieToken(token) {
      if (!looksLikeOpaqueToken(token, 'ghs')) return { ok: false, reason: 'malformed' };
      const now = clock();
      let entry = cookieCache.get(token);
      if (entry !== undefined && !isFresh(entry, now)) entry = undefined;
      counts.cookie[entry === undefined ? 'misses' : 'hits'] += 1;
      if (entry === undefined) {
        // Before the read: a cut-off learned while it runs makes the row stale.
        const cutoffGeneration = revocations.cutoffGeneration;
        const session = await sessions.findSessionByCookieHash(hashOpaqueToken(token));
        if (session === undefined || session.revokedAt !== null) return { ok: false, reason: 'invalid' };
        entry = {
          userId: session.userId,
          sessionId: session.id,
          scopes: session.scopes,
          // Cookies are only ever set by Gatehouse's own sign-in pages and routes.
          clientId: FIRST_PARTY_CLIENT_ID,
          expiresAt: session.expiresAt,
          lastUsedAt: session.lastUsedAt,
          checkedAt: now,
          cutoffGeneration,
        };
        cookieCache.set(token, entry);
      }
      const verdict = checkCookieEntry(token, entry, now);
      if (!verdict.ok) return verdict;
      if (now - entry.lastUsedAt >= TOUCH_INTERVAL_MS) {
        entry.lastUsedAt = now;
        await sessions.touchSession(entry.sessionId, now);
      }
      return accepted(entry, cookieExpiryOf(entry));
    },

    cacheStats: () => ({
      jwt: { ...counts.jwt },
      opaque: { ...counts.opaque },
      cookie: { ...counts.cookie },
    }),

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

    revokeUserSessions: (userId, keep, audit) =>
      revokeAndAudit((store) => store.revokeUserSessions(userId, clock(), keep), audit),

    async announceRevokeAll({ sessions: ended, notBefore }) {
      await bus.publish({ type: 'revocation_cutoff_raised', notBefore });
      await publishRevokedSessions(bus, ended);
    },
  };
}
