import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  preHandlerHookHandler,
  RouteOptions,
} from 'fastify';
import type { JWTPayload } from 'jose';
import type { AccountUser } from '../accounts/public-user.js';
import { isRole, ROLES, type Role, roleAtLeast } from '../accounts/roles.js';
import { OIDC_SCOPES, type Scope } from '../accounts/scopes.js';
import { GatehouseError } from '../errors.js';
import type { GatehouseCore } from '../gatehouse-core.js';
import type { ClientTokenCheck, ClientTokenFailure } from '../oauth/client-credentials.js';
import type {
  ExternalTokenCheck,
  ExternalTokenVerifier,
} from '../resource-server/external-token-verifier.js';
import { FIRST_PARTY_CLIENT_ID, type TokenCheck, type TokenFailure } from '../sessions/session-manager.js';
import type { CookiePolicy } from './cookies.js';
import type { CsrfGuard } from './csrf.js';

/** A Gatehouse account, signed in with one of its access tokens or the session cookie. */
export interface UserAuthContext {
  /** Discriminant of {@link AuthContext}. */
  kind: 'user';
  /** The signed-in, active user, without its password hash. */
  user: AccountUser;
  /** The session the credential belongs to. */
  sessionId: string;
  /** Scopes the credential carries. */
  scopes: readonly string[];
  /** How the credential arrived. */
  transport: 'bearer' | 'cookie';
  /**
   * The client the credential was issued to (the access token's RFC 9068 `client_id`): a
   * registered OAuth client's id for an app's token (authorization code flow), otherwise
   * Gatehouse's own (`gatehouse`, or the label a first-party caller gave the password grant). A
   * cookie session is always Gatehouse's own.
   */
  clientId: string;
  /**
   * When the credential stops being accepted, epoch ms: the access token's expiry, or the cookie
   * session's absolute or idle expiry (whichever is first, as of this request). Long-lived
   * responses such as event streams end then.
   */
  expiresAt: number;
}

/**
 * A caller holding an access token of an external issuer (`EXTERNAL_ISSUERS`, resource-server
 * mode). It has no Gatehouse account, session or role: only routes that allow `'external'` see one.
 */
export interface ExternalAuthContext {
  /** Discriminant of {@link AuthContext}. */
  kind: 'external';
  /** The issuer that signed the token, exactly as configured. */
  issuer: string;
  /** The token's `sub` at that issuer (a user or a client there; not a Gatehouse user id). */
  subject: string;
  /** The client the token was issued to (`client_id` or `azp`), when the token says. */
  clientId: string | undefined;
  /** Scopes read from the issuer's configured `scopeClaim`. */
  scopes: readonly string[];
  /** Every verified claim of the token. */
  claims: Readonly<JWTPayload>;
  /** External tokens arrive as `Authorization: Bearer` only. */
  transport: 'bearer';
  /** The token's expiry, epoch ms. */
  expiresAt: number;
}

/**
 * An OAuth client calling for itself with a `client_credentials` access token of ours
 * (service-to-service calls, RFC 6749 §4.4). It is not a user and holds no Gatehouse role: only
 * routes that allow `'client'` see one.
 */
export interface ClientAuthContext {
  /** Discriminant of {@link AuthContext}. */
  kind: 'client';
  /** The registered client the token was issued to (its `sub` and `client_id`). */
  clientId: string;
  /** Scopes the token carries (those the client is still registered for). */
  scopes: readonly string[];
  /** Client tokens arrive as `Authorization: Bearer` only. */
  transport: 'bearer';
  /** The token's expiry, epoch ms. */
  expiresAt: number;
}

/**
 * Who is calling, set by the guard on `request.auth`: a discriminated union on `kind`. A route
 * sees kinds other than `'user'` only when its guard allows them by name.
 */
export type AuthContext = UserAuthContext | ExternalAuthContext | ClientAuthContext;

/** The kinds of caller {@link AuthContext} can hold. */
export type PrincipalKind = AuthContext['kind'];

/** Kinds a route must allow by name (`allow`); Gatehouse users pass every guard that fits them. */
export type OptInPrincipalKind = Exclude<PrincipalKind, 'user'>;

/** A route for Gatehouse accounts only (the default): role and Gatehouse scopes. */
export interface UserRequireOptions {
  /**
   * Minimum role (`user` < `admin` < `super_admin`). Any other value throws a `TypeError` when the
   * guard is created.
   */
  role?: Role;
  /**
   * Scopes the credential must carry, all of them: the core's ({@link Scope}) or ones an app
   * registered (`createGatehouse`'s `scopes`). An unknown name throws when the guard is created,
   * so a typo fails at start-up instead of refusing every request.
   *
   * A token a registered OAuth client got through the authorization code flow carries the scopes
   * the person consented to, and passes only a guard that names scopes (all of which it holds): a
   * guard naming none (a bare `require()`, or a role alone) answers it 403 `FIRST_PARTY_ONLY`,
   * since the person never allowed the app anything there. Name a scope to open a route to apps.
   */
  scopes?: readonly (Scope | (string & {}))[];
  /**
   * Only the person's own sign-ins: the session cookie, or a token of `POST /token`'s password
   * (and MFA) grant. A token a registered OAuth client got through the authorization code flow
   * is refused with 403 `FIRST_PARTY_ONLY`, whatever its scopes. For routes that manage how the
   * account is signed in to and who holds it (passwords, email, second factors, passkeys,
   * sessions, connected apps, deletion): an app the person allowed to use their account must
   * not be able to make itself a way in of its own (red-team 2026-12c H2; RFC 9700 §2.3, least
   * privilege). @default false
   */
  firstParty?: boolean;
  /** Only Gatehouse users (omit `allow`). */
  allow?: undefined;
}

/**
 * A route that also accepts other kinds of caller. It cannot require a role: external callers can
 * never hold a Gatehouse role (a `role` here is a type error, and throws at run time).
 */
export interface OptInRequireOptions {
  /** Never with `allow`: use scopes. */
  role?: undefined;
  /**
   * Scopes the credential must carry, all of them: Gatehouse's, or the external issuers' own
   * (`orders:read`), which Gatehouse users never hold. Without `'external'` in `allow`, every
   * name must be a registered scope (checked when the guard is created).
   */
  scopes?: readonly string[];
  /** Never with `allow`: other kinds of caller are never first-party sign-ins. */
  firstParty?: undefined;
  /**
   * The other kinds of caller this route accepts: `'external'` (tokens of the `EXTERNAL_ISSUERS`),
   * `'client'` (our `client_credentials` tokens), or both.
   */
  allow: readonly OptInPrincipalKind[];
}

/** What a route requires; every member optional. */
export type RequireOptions = UserRequireOptions | OptInRequireOptions;

/**
 * A guard created by {@link AuthApi.require}, carrying its declaration for OpenAPI. A callback
 * hook (not an async one): when the credential and the user are already in memory it decides
 * without creating a promise, which is most requests (issue 10: the hot path).
 */
export type Guard = preHandlerHookHandler & { readonly requirement: RequireOptions };

/** Options of {@link AuthApi.identify} for Gatehouse users only. */
export interface IdentifyUserOptions {
  /**
   * Whether a session cookie on an unsafe method (POST, PUT, PATCH, DELETE) must pass the CSRF
   * check, as on a guarded route: a request another site made the browser send carries the cookie
   * too (a sibling subdomain is same-site). Only a route with a CSRF defence of its own (a form token
   * bound to the session) may say false. @default true
   */
  csrf?: boolean;
  /** Only Gatehouse users (omit `allow`). */
  allow?: undefined;
}

/** Options of {@link AuthApi.identify} that admit other kinds of caller. */
export interface IdentifyOptions {
  /** The other kinds of caller to recognise, e.g. `['external']` or `['client']`. */
  allow: readonly OptInPrincipalKind[];
  /** As {@link IdentifyUserOptions.csrf}. @default true */
  csrf?: boolean;
}

/** The `app.auth` decorator. */
export interface AuthApi {
  /**
   * A preHandler that requires a signed-in active user and, optionally, a role and scopes.
   * Not signed in → 401; signed in but not allowed → 403. Cookie-authenticated unsafe requests
   * must also pass the CSRF check. An OAuth app's token passes only a guard that names scopes
   * (see {@link UserRequireOptions.scopes}): a bare or role-only guard is for the person's own
   * sign-ins. With `allow: ['external']` the route also accepts access tokens of the configured
   * external issuers, with `allow: ['client']` our `client_credentials` tokens (and then it cannot
   * require a role).
   */
  require(options?: RequireOptions): Guard;
  /**
   * Identifies the caller if credentials are present; null otherwise. Throws on a bad credential,
   * on an external or client token unless `options.allow` names its kind, and (unless
   * `options.csrf` is false) on a cookie-authenticated unsafe request that fails the CSRF check.
   */
  identify(request: FastifyRequest, options?: IdentifyUserOptions): Promise<UserAuthContext | null>;
  identify(request: FastifyRequest, options: IdentifyOptions): Promise<AuthContext | null>;
  /**
   * Resolves when `auth` is the person's own sign-in (see {@link UserRequireOptions.firstParty});
   * rejects with 403 `FIRST_PARTY_ONLY` for an OAuth app's token. For a route where only some
   * changes need it (`PATCH /users/me`: the name is the app's to change, the password is not).
   */
  requireFirstParty(auth: UserAuthContext): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `app.auth.require()`; null on routes without a guard. */
    auth: AuthContext | null;
  }
  interface FastifyInstance {
    /** Guards and identification (see {@link AuthApi}). */
    auth: AuthApi;
  }
}

/** Methods that must not change state, so need no CSRF token (RFC 9110 §9.2.1). */
export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const MAX_TOKEN_LENGTH = 8192;

const DESCRIPTIONS: Record<TokenFailure, string> = {
  malformed: 'The access token is malformed.',
  invalid: 'The access token is invalid.',
  expired: 'The access token expired.',
  revoked: 'The session was ended.',
};

const USERS_ONLY = 'This route accepts Gatehouse credentials only, not tokens of other issuers.';
const FIRST_PARTY_ONLY =
  "This route manages the account's sign-in methods, sessions and apps: it takes the person's own " +
  'sign-in (the session cookie, or a token of the password grant), never a token an app got through ' +
  'the authorization code flow.';
const NO_CLIENTS = 'This route is for signed-in people: a client_credentials token cannot call it.';
const APP_NEEDS_SCOPES =
  "An app's token is good only for what the person allowed it: this route names no scope, so it takes " +
  "the person's own sign-in (the session cookie, or a token of the password grant).";

const CLIENT_DESCRIPTIONS: Record<ClientTokenFailure, string> = {
  invalid: 'The access token is invalid.',
  expired: 'The access token expired.',
  revoked: 'The access token was revoked.',
  client_removed: 'The client this token was issued to was removed.',
  client_disabled: 'The client this token was issued to is disabled.',
};

/** A 401 whose `WWW-Authenticate` follows RFC 6750 §3. */
export function invalidToken(description: string): GatehouseError {
  return new GatehouseError('INVALID_TOKEN', description, {
    challenge: { scheme: 'Bearer', error: 'invalid_token', description },
  });
}

/**
 * The token of an `Authorization: Bearer` header (RFC 6750 §2.1): undefined when the request has
 * no bearer header; a 401 `invalid_token` when the header is malformed or oversized.
 */
export function readBearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined || !/^bearer(\s|$)/i.test(header)) return undefined;
  const match = header.length <= MAX_TOKEN_LENGTH ? BEARER.exec(header) : null;
  if (match?.[1] === undefined) throw invalidToken(DESCRIPTIONS.malformed);
  return match[1];
}

/**
 * The signed-in Gatehouse user of a request behind a guard: `request.auth` narrowed to
 * {@link UserAuthContext}. Throws a 401 when no one was identified, and when the caller is of
 * another kind (a guard that allows external callers lets them through; account code refuses them
 * here rather than reading a `user` that is not there).
 */
export function userAuthOf(request: { auth: AuthContext | null }): UserAuthContext {
  if (request.auth === null) throw unauthenticated();
  if (request.auth.kind !== 'user')
    throw invalidToken(request.auth.kind === 'client' ? NO_CLIENTS : USERS_ONLY);
  return request.auth;
}

/** What a hook hands `done`: thrown values that are not errors are wrapped (they never are here). */
function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function unauthenticated(): GatehouseError {
  return new GatehouseError('UNAUTHENTICATED', 'Sign in first: send a bearer token or the session cookie.', {
    challenge: { scheme: 'Bearer' },
  });
}

/** Kinds a guard may allow, for callers in plain JavaScript. */
const OPT_IN_KINDS: ReadonlySet<string> = new Set<OptInPrincipalKind>(['external', 'client']);

/** The `allow` list of `options`, checked: a role cannot be combined with other kinds of caller. */
function allowedKinds(
  options: RequireOptions | IdentifyOptions,
  what: string,
): ReadonlySet<OptInPrincipalKind> {
  const allow = options.allow ?? [];
  for (const kind of allow) {
    if (!OPT_IN_KINDS.has(kind))
      throw new TypeError(`${what}: unknown principal kind ${JSON.stringify(kind)}`);
  }
  if (allow.length > 0 && 'role' in options && options.role !== undefined) {
    // Issue 15: external and client principals can never hold a Gatehouse role.
    throw new TypeError(`${what}: a route that allows ${allow.join(', ')} callers cannot require a role`);
  }
  return new Set(allow);
}

/** Installs `request.auth` and `app.auth` (call once, from the Gatehouse plugin). */
export function installAuth(
  app: FastifyInstance,
  deps: {
    gatehouse: GatehouseCore;
    cookies: CookiePolicy;
    csrf: CsrfGuard;
    externalTokens: ExternalTokenVerifier;
  },
): void {
  const { gatehouse, cookies, csrf, externalTokens } = deps;
  const { clientCredentials } = gatehouse;
  app.decorateRequest('auth', null);

  const { sessions, userCache } = gatehouse;
  const hasExternalIssuers = externalTokens.issuers.length > 0;
  const mfaRoles: readonly string[] = gatehouse.config.requireMfaForRoles;
  // The policy's, not the core's ROLE_SCOPES: apps add `user` scopes (dicery's), and a downgraded
  // session holds those too; with the core's list alone it would pass for an admin's.
  const userScopes: readonly string[] = gatehouse.scopes.forRole('user');

  const contextOf = (
    check: Extract<TokenCheck, { ok: true }>,
    user: AccountUser | undefined,
    transport: UserAuthContext['transport'],
  ): UserAuthContext => {
    if (user === undefined || !user.isActive) throw invalidToken('The account is disabled or gone.');
    return {
      kind: 'user',
      user,
      sessionId: check.sessionId,
      scopes: check.scopes,
      transport,
      clientId: check.clientId,
      expiresAt: check.expiresAt,
    };
  };

  const externalContextOf = (check: ExternalTokenCheck): ExternalAuthContext => {
    if (!check.ok) {
      if (check.reason === 'unavailable') {
        throw new GatehouseError('EXTERNAL_ISSUER_UNAVAILABLE', check.description, {
          retryAfterSeconds: check.retryAfterSeconds ?? 1,
        });
      }
      // 503, not 401: clients retry a 503 but drop a token refused with 401, and this may be a
      // rotation's new key (red-team 2026-12m E2). Its own code, not logged as an outage: anyone
      // can send a token with a random kid (review of E2).
      if (check.reason === 'key-unknown') {
        throw new GatehouseError('EXTERNAL_KEY_UNKNOWN', check.description, {
          retryAfterSeconds: check.retryAfterSeconds ?? 1,
        });
      }
      throw invalidToken(check.description);
    }
    const { principal } = check;
    return {
      kind: 'external',
      issuer: principal.issuer,
      subject: principal.subject,
      clientId: principal.clientId,
      scopes: principal.scopes,
      claims: principal.claims,
      transport: 'bearer',
      expiresAt: principal.expiresAt,
    };
  };

  const clientContextOf = (check: ClientTokenCheck): ClientAuthContext => {
    if (!check.ok) throw invalidToken(CLIENT_DESCRIPTIONS[check.reason]);
    const { principal } = check;
    return {
      kind: 'client',
      clientId: principal.clientId,
      scopes: principal.scopes,
      transport: 'bearer',
      expiresAt: principal.expiresAt,
    };
  };

  /**
   * One of our `client_credentials` tokens: verified when `allow` has `'client'`, refused
   * unverified everywhere else, so account, admin, audit and consent routes never take one.
   */
  const identifyClient = (
    token: string,
    allow: ReadonlySet<OptInPrincipalKind>,
  ): ClientAuthContext | Promise<ClientAuthContext> => {
    if (!allow.has('client')) throw invalidToken(NO_CLIENTS);
    const peeked = clientCredentials.peek(token);
    if (peeked !== undefined) return clientContextOf(peeked);
    return clientCredentials.verify(token).then(clientContextOf);
  };

  /** The rest of {@link identifyRequest} once the token needed a read or a signature check. */
  const identifySlowly = async (
    checking: TokenCheck | Promise<TokenCheck>,
    transport: UserAuthContext['transport'],
  ): Promise<UserAuthContext> => {
    const check = await checking;
    if (!check.ok) throw invalidToken(DESCRIPTIONS[check.reason]);
    return contextOf(check, userCache.peek(check.userId) ?? (await userCache.get(check.userId)), transport);
  };

  /**
   * An external issuer's token: verified when `allow` has `'external'`, refused unverified (and
   * without any fetch) everywhere else, so account, admin and audit routes never even look.
   */
  const identifyExternal = (
    token: string,
    allow: ReadonlySet<OptInPrincipalKind>,
  ): ExternalAuthContext | Promise<ExternalAuthContext> => {
    if (!allow.has('external')) throw invalidToken(USERS_ONLY);
    const peeked = externalTokens.peek(token);
    if (peeked !== undefined) return externalContextOf(peeked);
    return externalTokens.verify(token).then(externalContextOf);
  };

  /**
   * Who is calling: synchronously when the token's verdict and the user are in memory (the
   * caches' usual case), else a promise. Throws (or rejects) on a bad credential.
   */
  const identifyRequest = (
    request: FastifyRequest,
    allow: ReadonlySet<OptInPrincipalKind>,
  ): AuthContext | null | Promise<AuthContext> => {
    // The usual request carries `Bearer <token>` with a token this instance has already verified:
    // its verdict comes from the cache before the header is parsed with BEARER, whose pass over
    // the whole ≈ 600-character JWT was the guard's largest step (issue 10). Nothing is accepted
    // that the full parse would refuse: a hit means the token is byte-identical to one that passed
    // readBearerToken (and the signature check) before, so `Bearer ` + token matches BEARER too.
    const header = request.headers.authorization;
    const quick =
      header !== undefined && header.length <= MAX_TOKEN_LENGTH && header.startsWith('Bearer ')
        ? header.slice(7)
        : undefined;
    const quickCheck = quick === undefined ? undefined : sessions.peekAccessToken(quick);
    if (quickCheck?.ok === true) {
      const user = userCache.peek(quickCheck.userId);
      if (user !== undefined) return contextOf(quickCheck, user, 'bearer');
    }
    const bearer = readBearerToken(request);
    let transport: UserAuthContext['transport'];
    let check: TokenCheck | undefined;
    let token: string;
    if (bearer !== undefined) {
      transport = 'bearer';
      token = bearer;
      // Peeked above when the header had the usual form (peeking again would count twice).
      check = bearer === quick ? quickCheck : sessions.peekAccessToken(token);
      // Our own verified tokens are answered from memory first; only a token that is not one of
      // those is looked at for an external issuer (an unverified `iss` picks the verifier), or
      // as a client token (our `iss`, `sub` = `client_id`, no session: never a user's).
      if (check?.ok !== true) {
        if (hasExternalIssuers && externalTokens.issuerOf(token) !== undefined) {
          return identifyExternal(token, allow);
        }
        if (clientCredentials.isClientToken(token)) return identifyClient(token, allow);
      }
    } else {
      const cookie = request.cookies[cookies.sessionName];
      if (cookie === undefined || cookie === '') return null;
      transport = 'cookie';
      token = cookie;
      check = sessions.peekCookieToken(token);
    }
    if (check === undefined) {
      const verifying =
        transport === 'bearer' ? sessions.verifyAccessToken(token) : sessions.verifyCookieToken(token);
      return identifySlowly(verifying, transport);
    }
    if (!check.ok) throw invalidToken(DESCRIPTIONS[check.reason]);
    const user = userCache.peek(check.userId);
    if (user === undefined) return identifySlowly(check, transport);
    return contextOf(check, user, transport);
  };

  /**
   * Refuses an app's token (403 `FIRST_PARTY_ONLY` with `message`): on a `firstParty` route, and on
   * any route whose guard names no scope. Cookie sessions and tokens of the default
   * client id are Gatehouse's own and pass without a read; any other `client_id` is a registered
   * client's (the authorization code flow) or a first-party caller's label of the password grant,
   * which refuses registered ids, so the client registry tells them apart. A removed client's
   * sessions are revoked with it, and announced before the removal on the same channel (and
   * reloaded before the registry is re-read after a bus gap), so an instance that reads the client
   * as unknown already holds their revocations; only a `sessions_revoked` publish lost while the
   * removal's went through leaves a window, until `publishes_lost` makes instances reload.
   */
  const refuseAppToken = async (auth: UserAuthContext, message: string): Promise<void> => {
    if (auth.transport === 'cookie' || auth.clientId === FIRST_PARTY_CLIENT_ID) return;
    // Cached (a password-grant label that names no client is read once per 30 s, not per request).
    if ((await gatehouse.liveClients.get(auth.clientId)) !== null) {
      throw new GatehouseError('FIRST_PARTY_ONLY', message);
    }
  };
  const requireFirstParty = (auth: UserAuthContext): Promise<void> => refuseAppToken(auth, FIRST_PARTY_ONLY);

  const usersOnly: ReadonlySet<OptInPrincipalKind> = new Set();
  async function identify(
    request: FastifyRequest,
    options?: IdentifyUserOptions,
  ): Promise<UserAuthContext | null>;
  async function identify(request: FastifyRequest, options: IdentifyOptions): Promise<AuthContext | null>;
  async function identify(
    request: FastifyRequest,
    options?: IdentifyUserOptions | IdentifyOptions,
  ): Promise<AuthContext | null> {
    const auth = await identifyRequest(
      request,
      options?.allow === undefined ? usersOnly : allowedKinds(options, 'app.auth.identify'),
    );
    // As a guard does (red-team 2026-12j E2: an "optional sign-in" POST took the cookie identity
    // of a request another site made the browser send).
    if (
      options?.csrf !== false &&
      auth?.kind === 'user' &&
      auth.transport === 'cookie' &&
      !SAFE_METHODS.has(request.method)
    ) {
      csrf.verify(request, auth.sessionId);
    }
    return auth;
  }

  const require = (options: RequireOptions = {}): Guard => {
    const requiredScopes: readonly string[] = options.scopes ?? [];
    const allow = allowedKinds(options, 'app.auth.require');
    const firstParty = options.firstParty === true;
    // A role Gatehouse does not know fails here, as an unknown scope does below: the type says
    // Role, but the value may come from JavaScript or an app's own setting (red-team 2026-12o O9).
    if (options.role !== undefined && !isRole(options.role)) {
      throw new TypeError(
        `app.auth.require: unknown role ${JSON.stringify(options.role)} (one of ${ROLES.join(', ')})`,
      );
    }
    if (firstParty && allow.size > 0) {
      throw new TypeError('app.auth.require: a firstParty route cannot allow other kinds of caller');
    }
    // Routes that allow external callers take the issuers' own scopes (`orders:read`), which the
    // ScopePolicy does not know; every other guard checks scope names at creation (clients are
    // registered with known scopes only).
    if (!allow.has('external')) {
      // OpenID Connect's own scopes (`openid`, `profile`, `email`) are known too: `openid` opens a
      // route to any app the person signed in to with Gatehouse (`/userinfo`).
      const unknown = requiredScopes.filter(
        (scope) => !gatehouse.scopes.isKnown(scope) && !Object.hasOwn(OIDC_SCOPES, scope),
      );
      if (unknown.length > 0) {
        throw new TypeError(
          `auth.require: unknown scope ${unknown.join(', ')}; register it with createGatehouse's \`scopes\` option`,
        );
      }
    }
    const authorize = (request: FastifyRequest, auth: AuthContext | null): void => {
      if (auth === null) throw unauthenticated();
      // Defence in depth: identification already refuses kinds this guard does not allow.
      if (auth.kind !== 'user' && !allow.has(auth.kind)) {
        throw invalidToken(auth.kind === 'client' ? NO_CLIENTS : USERS_ONLY);
      }
      // Bearer requests cannot be forged cross-site (the browser never adds the header itself).
      if (auth.kind === 'user' && auth.transport === 'cookie' && !SAFE_METHODS.has(request.method))
        csrf.verify(request, auth.sessionId);
      if (
        options.role !== undefined &&
        (auth.kind !== 'user' || !roleAtLeast(auth.user.role, options.role))
      ) {
        throw new GatehouseError('FORBIDDEN', `This needs the ${options.role} role.`);
      }
      // REQUIRE_MFA_FOR_ROLES: a sign-in without a second factor got only the `user` scopes (see
      // `effectiveRole`), which is what tells it apart here for a route guarded by role alone.
      if (
        options.role !== undefined &&
        options.role !== 'user' &&
        auth.kind === 'user' &&
        mfaRoles.includes(auth.user.role) &&
        auth.scopes.every((scope) => userScopes.includes(scope))
      ) {
        throw new GatehouseError(
          'FORBIDDEN',
          `This needs the ${options.role} role, which needs a sign-in with a second factor.`,
        );
      }
      // The person's own sign-in (the cookie, or a token of the first-party client) holds the
      // identity scopes OpenID Connect gives apps (`openid`, `profile`, `email`): a route named
      // `openid` to open it to apps stays open to the person (the review of red-team 2026-12j E1).
      const missing = requiredScopes.filter(
        (scope) =>
          !auth.scopes.includes(scope) &&
          !(
            Object.hasOwn(OIDC_SCOPES, scope) &&
            auth.kind === 'user' &&
            (auth.transport === 'cookie' || auth.clientId === FIRST_PARTY_CLIENT_ID)
          ),
      );
      if (missing.length > 0) {
        throw new GatehouseError('INSUFFICIENT_SCOPE', `The token lacks the scope ${missing.join(' ')}.`, {
          challenge: { scheme: 'Bearer', error: 'insufficient_scope', scope: requiredScopes },
        });
      }
    };
    const finish = (
      request: FastifyRequest,
      reply: FastifyReply,
      auth: AuthContext | null,
      done: HookHandlerDoneFunction,
    ) => {
      try {
        authorize(request, auth);
      } catch (error) {
        done(asError(error));
        return;
      }
      // An answer to an authenticated request is someone's data: never stored by a cache (RFC 9111
      // §5.2.2.5). RFC 9111 §3.5 keeps only requests with Authorization out of shared caches, and
      // browsers read these with the session cookie (red-team 2026-12d I7). A route that may be
      // cached sets its own Cache-Control, which replaces this one.
      reply.header('cache-control', 'no-store');
      // An OAuth app's token carries the scopes the person consented to, and a guard that names
      // none asks for none: without this, an app allowed `openid` alone passed every role-only or
      // bare guard of an embedding app as the person (an admin's token: the admin's routes), which
      // the consent never said (red-team 2026-12j E1; RFC 9700 §2.3, least privilege). So an app's
      // token passes only guards that name scopes, all of which it holds.
      if (
        (firstParty || requiredScopes.length === 0) &&
        auth?.kind === 'user' &&
        auth.transport === 'bearer' &&
        auth.clientId !== FIRST_PARTY_CLIENT_ID
      ) {
        refuseAppToken(auth, firstParty ? FIRST_PARTY_ONLY : APP_NEEDS_SCOPES).then(
          () => {
            request.auth = auth;
            done();
          },
          (error: unknown) => done(asError(error)),
        );
        return;
      }
      request.auth = auth;
      done();
    };
    const guard = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
      let identified: ReturnType<typeof identifyRequest>;
      try {
        identified = identifyRequest(request, allow);
      } catch (error) {
        done(asError(error));
        return;
      }
      if (identified instanceof Promise) {
        identified.then(
          (auth) => finish(request, reply, auth, done),
          (error: unknown) => done(asError(error)),
        );
      } else {
        finish(request, reply, identified, done);
      }
    };
    return Object.assign(guard, { requirement: { ...options } });
  };

  app.decorate('auth', { require, identify, requireFirstParty } satisfies AuthApi);

  // The route's OpenAPI security requirement comes from the same declaration as the guard.
  app.addHook('onRoute', (route: RouteOptions) => {
    // A guard works as `preHandler` (as documented) or `preValidation` (our routes: then a caller
    // who may not use the route gets 401/403 before any 400 that would describe its schema).
    const handlers = [route.preValidation, route.preHandler].flatMap((hook) =>
      Array.isArray(hook) ? hook : [hook],
    );
    const guard = handlers.find(
      (handler): handler is Guard => typeof handler === 'function' && 'requirement' in handler,
    );
    if (guard === undefined) return;
    const scopes = [...(guard.requirement.scopes ?? [])];
    const role = guard.requirement.role;
    const external = guard.requirement.allow?.includes('external') ?? false;
    const clients = guard.requirement.allow?.includes('client') ?? false;
    const firstParty = guard.requirement.firstParty === true;
    const schema = (route.schema ?? {}) as Record<string, unknown>;
    const note = [
      role === undefined ? 'Requires a signed-in user' : `Requires the ${role} role (or higher)`,
      external ? 'or an access token of one of the configured external issuers (`EXTERNAL_ISSUERS`)' : '',
      clients ? 'or a `client_credentials` access token of a registered client (service-to-service)' : '',
      scopes.length > 0 ? `and the scope${scopes.length > 1 ? 's' : ''} ${scopes.join(', ')}.` : '.',
      firstParty
        ? "First-party only: the session cookie or a password-grant token; an OAuth app's token " +
          '(authorization code flow) gets 403 `FIRST_PARTY_ONLY` whatever its scopes.'
        : scopes.length === 0
          ? "No scope is named, so an OAuth app's token for a person (authorization code flow) gets 403 " +
            '`FIRST_PARTY_ONLY`' +
            (external || clients ? '.' : ': the session cookie or a password-grant token only.')
          : '',
    ]
      .filter(Boolean)
      .join(' ');
    route.schema = {
      ...schema,
      description: [schema.description, note].filter(Boolean).join('\n\n'),
      security: [
        { OAuth2PasswordBearer: scopes },
        { sessionCookie: [] },
        ...(external ? [{ externalBearer: [] }] : []),
        ...(clients ? [{ OAuth2ClientCredentials: scopes }] : []),
      ],
    } as RouteOptions['schema'];
  });
}
