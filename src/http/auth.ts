import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  preHandlerHookHandler,
  RouteOptions,
} from 'fastify';
import type { AccountUser } from '../accounts/public-user.js';
import { type Role, roleAtLeast } from '../accounts/roles.js';
import type { Scope } from '../accounts/scopes.js';
import { GatehouseError } from '../errors.js';
import type { GatehouseCore } from '../gatehouse-core.js';
import type { TokenCheck, TokenFailure } from '../sessions/session-manager.js';
import type { CookiePolicy } from './cookies.js';
import type { CsrfGuard } from './csrf.js';

/** Who is calling, set by the guard on `request.auth`. */
export interface AuthContext {
  /** The signed-in, active user, without its password hash. */
  user: AccountUser;
  /** The session the credential belongs to. */
  sessionId: string;
  /** Scopes the credential carries. */
  scopes: readonly string[];
  /** How the credential arrived. */
  transport: 'bearer' | 'cookie';
  /**
   * When the credential stops being accepted, epoch ms: the access token's expiry, or the cookie
   * session's absolute or idle expiry (whichever is first, as of this request). Long-lived
   * responses such as event streams end then.
   */
  expiresAt: number;
}

/** What a route requires; both optional. */
export interface RequireOptions {
  /** Minimum role (`user` < `admin` < `super_admin`). */
  role?: Role;
  /**
   * Scopes the credential must carry, all of them: the core's ({@link Scope}) or ones an app
   * registered (`createGatehouse`'s `scopes`). An unknown name throws when the guard is created,
   * so a typo fails at start-up instead of refusing every request.
   */
  scopes?: readonly (Scope | (string & {}))[];
}

/**
 * A guard created by {@link AuthApi.require}, carrying its declaration for OpenAPI. A callback
 * hook (not an async one): when the credential and the user are already in memory it decides
 * without creating a promise, which is most requests (issue 10: the hot path).
 */
export type Guard = preHandlerHookHandler & { readonly requirement: RequireOptions };

/** The `app.auth` decorator. */
export interface AuthApi {
  /**
   * A preHandler that requires a signed-in active user and, optionally, a role and scopes.
   * Not signed in → 401; signed in but not allowed → 403. Cookie-authenticated unsafe requests
   * must also pass the CSRF check.
   */
  require(options?: RequireOptions): Guard;
  /** Identifies the caller if credentials are present; null otherwise. Throws on a bad credential. */
  identify(request: FastifyRequest): Promise<AuthContext | null>;
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

/** What a hook hands `done`: thrown values that are not errors are wrapped (they never are here). */
function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function unauthenticated(): GatehouseError {
  return new GatehouseError('UNAUTHENTICATED', 'Sign in first: send a bearer token or the session cookie.', {
    challenge: { scheme: 'Bearer' },
  });
}

/** Installs `request.auth` and `app.auth` (call once, from the Gatehouse plugin). */
export function installAuth(
  app: FastifyInstance,
  deps: { gatehouse: GatehouseCore; cookies: CookiePolicy; csrf: CsrfGuard },
): void {
  const { gatehouse, cookies, csrf } = deps;
  app.decorateRequest('auth', null);

  const { sessions, userCache } = gatehouse;

  const contextOf = (
    check: Extract<TokenCheck, { ok: true }>,
    user: AccountUser | undefined,
    transport: AuthContext['transport'],
  ): AuthContext => {
    if (user === undefined || !user.isActive) throw invalidToken('The account is disabled or gone.');
    return { user, sessionId: check.sessionId, scopes: check.scopes, transport, expiresAt: check.expiresAt };
  };

  /** The rest of {@link identifyRequest} once the token needed a read or a signature check. */
  const identifySlowly = async (
    checking: TokenCheck | Promise<TokenCheck>,
    transport: AuthContext['transport'],
  ): Promise<AuthContext> => {
    const check = await checking;
    if (!check.ok) throw invalidToken(DESCRIPTIONS[check.reason]);
    return contextOf(check, userCache.peek(check.userId) ?? (await userCache.get(check.userId)), transport);
  };

  /**
   * Who is calling: synchronously when the token's verdict and the user are in memory (the
   * caches' usual case), else a promise. Throws (or rejects) on a bad credential.
   */
  const identifyRequest = (request: FastifyRequest): AuthContext | null | Promise<AuthContext> => {
    const bearer = readBearerToken(request);
    let transport: AuthContext['transport'];
    let check: TokenCheck | undefined;
    let token: string;
    if (bearer !== undefined) {
      transport = 'bearer';
      token = bearer;
      check = sessions.peekAccessToken(token);
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

  const identify = async (request: FastifyRequest): Promise<AuthContext | null> => identifyRequest(request);

  const require = (options: RequireOptions = {}): Guard => {
    const requiredScopes: readonly string[] = options.scopes ?? [];
    const unknown = requiredScopes.filter((scope) => !gatehouse.scopes.isKnown(scope));
    if (unknown.length > 0) {
      throw new TypeError(
        `auth.require: unknown scope ${unknown.join(', ')}; register it with createGatehouse's \`scopes\` option`,
      );
    }
    const authorize = (request: FastifyRequest, auth: AuthContext | null): void => {
      if (auth === null) throw unauthenticated();
      // Bearer requests cannot be forged cross-site (the browser never adds the header itself).
      if (auth.transport === 'cookie' && !SAFE_METHODS.has(request.method))
        csrf.verify(request, auth.sessionId);
      if (options.role !== undefined && !roleAtLeast(auth.user.role, options.role)) {
        throw new GatehouseError('FORBIDDEN', `This needs the ${options.role} role.`);
      }
      const missing = requiredScopes.filter((scope) => !auth.scopes.includes(scope));
      if (missing.length > 0) {
        throw new GatehouseError('INSUFFICIENT_SCOPE', `The token lacks the scope ${missing.join(' ')}.`, {
          challenge: { scheme: 'Bearer', error: 'insufficient_scope', scope: requiredScopes },
        });
      }
      request.auth = auth;
    };
    const finish = (request: FastifyRequest, auth: AuthContext | null, done: HookHandlerDoneFunction) => {
      try {
        authorize(request, auth);
      } catch (error) {
        done(asError(error));
        return;
      }
      done();
    };
    const guard = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
      let identified: ReturnType<typeof identifyRequest>;
      try {
        identified = identifyRequest(request);
      } catch (error) {
        done(asError(error));
        return;
      }
      if (identified instanceof Promise) {
        identified.then(
          (auth) => finish(request, auth, done),
          (error: unknown) => done(asError(error)),
        );
      } else {
        finish(request, identified, done);
      }
    };
    return Object.assign(guard, { requirement: { ...options } });
  };

  app.decorate('auth', { require, identify } satisfies AuthApi);

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
    const schema = (route.schema ?? {}) as Record<string, unknown>;
    const note = [
      role === undefined ? 'Requires a signed-in user' : `Requires the ${role} role (or higher)`,
      scopes.length > 0 ? `and the scope${scopes.length > 1 ? 's' : ''} ${scopes.join(', ')}.` : '.',
    ].join(' ');
    route.schema = {
      ...schema,
      description: [schema.description, note].filter(Boolean).join('\n\n'),
      security: [{ OAuth2PasswordBearer: scopes }, { sessionCookie: [] }],
    } as RouteOptions['schema'];
  });
}
