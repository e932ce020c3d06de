import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import type { AccountUser } from '../accounts/public-user.js';
import { effectiveRole, type Role } from '../accounts/roles.js';
import { isScope, parseScopeParameter, ROLE_SCOPES, type ScopePolicy } from '../accounts/scopes.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Caller } from '../audit/record-committed.js';
import { oauthErrorText } from '../errors.js';
import { type EventBus, publishRevokedSessions } from '../events/event-bus.js';
import { assertSessionLive } from '../sessions/live-session.js';
import type { BearerTokens, SessionManager } from '../sessions/session-manager.js';
import type { SweepBatchOptions } from '../storage/batched-sweep.js';
import type {
  AuthorizationCodeRecord,
  ConsentRecord,
  OAuthGrantStore,
} from '../storage/oauth-grant-store.js';
import type { SessionStore } from '../storage/session-store.js';
import type { UserStore } from '../storage/user-store.js';
import type { Keyring } from '../tokens/keyring.js';
import type { AsymmetricAlgorithm } from '../tokens/signing-key-material.js';
import { isHintThrottled } from './hint-throttle.js';
import type { IdTokenHintVerifier } from './id-token-hint.js';
import {
  type OAuthClient,
  type OAuthClients,
  OIDC_SCOPES,
  redirectIdentifiesClient,
  redirectUriMatches,
} from './oauth-clients.js';

/** Longest life of an authorization code (RFC 6749 §4.1.2 recommends at most 10 minutes; we keep 60 s). */
export const AUTHORIZATION_CODE_TTL_MS = 60_000;

/**
 * Most live (unexpired) codes one account may hold for one client. A new code beyond it displaces
 * that client's oldest unexchanged code; when all of them were exchanged (spent codes stay until
 * they expire, for replay detection) the client's new code is refused, and only the client's: an
 * app that bounces the person's browser through silent `/authorize` visits and exchanges every
 * code refuses itself, never the person's sign-ins to other apps (red-team 2026-12f K2).
 */
export const MAX_LIVE_CODES_PER_CLIENT = 20;

/**
 * Most live codes one account may hold in all (bounds `oauth_codes` per account). A new code beyond
 * it displaces the oldest unexchanged code of the client holding the most, so a page steering the
 * person's browser through silent `/authorize` visits cannot refuse their real sign-ins (red-team
 * 2026-12e J2); filling it with spent codes takes five clients the person allowed, working together.
 */
export const MAX_LIVE_CODES_PER_ACCOUNT = 5 * MAX_LIVE_CODES_PER_CLIENT;

/**
 * After `prompt=login` or a too old sign-in (`max_age`) sent the person to the login form, how
 * long the resumed authorization request's `login_after` marker holds: the time to sign in. While
 * it holds, a sign-in later than the redirect meets the request (so `max_age=0` cannot loop), and
 * no earlier one does (red-team 2026-12e J1).
 */
export const REAUTHENTICATION_WINDOW_SECONDS = 600;

/** The `typ` header of ID tokens (OpenID Connect Core leaves it open; `JWT` is what RPs expect). */
export const ID_TOKEN_TYP = 'JWT';

/**
 * Thrown inside the exchange's transaction when the code was spent by another exchange, to roll
 * back the session it was about to start; caught by `exchangeCode`, never beyond.
 */
class CodeSpent extends Error {
  constructor() {
    super('authorization code already spent');
    this.name = 'CodeSpent';
  }
}

/**
 * Thrown inside the exchange's transaction when the client was disabled or removed after its
 * authentication, to roll back the session it was about to start; caught by `exchangeCode`.
 */
class ClientWithdrawn extends Error {
  constructor() {
    super('client disabled or removed');
    this.name = 'ClientWithdrawn';
  }
}

/**
 * Thrown inside the exchange's transaction when the browser session that approved the code has
 * ended since (red-team 2026-12t V2); caught by `exchangeCode`, never beyond.
 */
class ApprovalEnded extends Error {
  constructor() {
    super('approving session ended');
    this.name = 'ApprovalEnded';
  }
}

/** How long an ID token is valid: it is consumed at sign-in, not presented later. */
export const ID_TOKEN_TTL_SECONDS = 300;

/** The parameters of `GET /authorize` (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1). */
export interface AuthorizationParameters {
  responseType?: string | undefined;
  clientId?: string | undefined;
  redirectUri?: string | undefined;
  scope?: string | undefined;
  state?: string | undefined;
  nonce?: string | undefined;
  codeChallenge?: string | undefined;
  codeChallengeMethod?: string | undefined;
  prompt?: string | undefined;
  /** OIDC Core §3.1.2.1 `max_age`, as sent: seconds, a non-negative integer. */
  maxAge?: string | undefined;
  responseMode?: string | undefined;
  /** OIDC Core §3.1.2.1 `id_token_hint`: an ID token we issued to this client, expired or not. */
  idTokenHint?: string | undefined;
  /** OIDC Core §6.1 `request` (a request object): not supported, only noticed to refuse it. */
  request?: string | undefined;
  /** OIDC Core §6.2 `request_uri`: not supported, only noticed to refuse it. */
  requestUri?: string | undefined;
  /** The client's address, not a parameter: failed hints are limited per address. */
  clientIp?: string | undefined;
}

/** A checked authorization request: its client and redirect URI are known to be registered. */
export interface AuthorizationRequest {
  client: OAuthClient;
  /** The request's `redirect_uri`, or the client's only registered one when the request left it out. */
  redirectUri: string;
  /** Whether the request carried `redirect_uri`: the code's exchange must then repeat it (RFC 6749 §4.1.3). */
  redirectUriGiven: boolean;
  /** The scopes asked for, all allowed to the client (a role may narrow them at approval). */
  scopes: string[];
  state: string | undefined;
  nonce: string | undefined;
  codeChallenge: string;
  /** `prompt=none`: answer without any page (OIDC Core §3.1.2.1). */
  promptNone: boolean;
  /** `prompt=login`: the person signs in again, even with a live browser session. */
  promptLogin: boolean;
  /** `prompt=consent`: the consent page is shown, even when consent was remembered. */
  promptConsent: boolean;
  /**
   * `max_age` in seconds: a browser sign-in older than this must be repeated (`max_age=0` is
   * `prompt=login`). The ID token's `auth_time` says when it happened, so the app can check.
   */
  maxAge: number | undefined;
  /**
   * The `sub` of a verified `id_token_hint`: the person the app expects. Only they may get a code
   * (OIDC Core §3.1.2.1: "If the End-User identified by the ID Token is logged in or is logged in by
   * the request, then the Authorization Server returns a positive response; otherwise, it SHOULD
   * return an error, such as login_required"; red-team 2026-12e J5).
   */
  hintUserId: string | undefined;
}

/**
 * The `prompt` values /authorize accepts (OIDC Core §3.1.2.1), as discovery lists them;
 * `select_account` is a no-op (one account per browser).
 */
export const PROMPT_VALUES: ReadonlySet<string> = new Set(['none', 'login', 'consent', 'select_account']);

/** An RFC 6749 §4.1.2.1 / OIDC Core §3.1.2.6 error code sent back to the client's redirect URI. */
export type AuthorizationErrorCode =
  | 'invalid_request'
  | 'unauthorized_client'
  | 'access_denied'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'temporarily_unavailable'
  | 'login_required'
  | 'consent_required'
  | 'request_not_supported'
  | 'request_uri_not_supported';

/**
 * Outcome of {@link AuthorizationServer.checkRequest}. When the client or the redirect URI is
 * not valid, the error must NOT go to the redirect URI (RFC 6749 §4.1.2.1: an open redirector);
 * the endpoint shows an error page instead (`redirect: false`).
 */
export type AuthorizationCheck =
  | { ok: true; request: AuthorizationRequest }
  | { ok: false; redirect: false; code: 'UNKNOWN_CLIENT' | 'INVALID_REDIRECT_URI'; description: string }
  | { ok: false; redirect: true; to: string };

/** A code exchange at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5). */
export interface CodeExchange {
  /** The registered client, already authenticated (confidential) or identified (public). */
  client: OAuthClient;
  code: string | undefined;
  redirectUri: string | undefined;
  codeVerifier: string | undefined;
}

/** Outcome of {@link AuthorizationServer.exchangeCode}. */
export type CodeExchangeResult =
  | { ok: true; tokens: BearerTokens<boolean>; idToken: string | undefined }
  | {
      ok: false;
      error: 'invalid_request' | 'invalid_grant' | 'unauthorized_client' | 'invalid_client';
      description: string;
    };

/** A connected app as the account page lists it. */
export type ConnectedApp = ConsentRecord;

/** The keyrings that sign ID tokens, one per algorithm a client may choose (`IdTokenKeys`). */
export interface IdTokenSigner {
  /** The keyring of `algorithm` (the installation's default when undefined). */
  keyring(algorithm?: AsymmetricAlgorithm): Promise<Pick<Keyring, 'sign'>>;
}

/** The OpenID Connect Core §5.1 claims `GET /userinfo` returns for the token's scopes. */
export interface UserInfo {
  sub: string;
  name?: string | undefined;
  email?: string | undefined;
  email_verified?: boolean | undefined;
}

/**
 * The authorization server's rules (issue 15, items 2 and 3), without HTTP: checking an
 * authorization request, consent, codes, their exchange, ID tokens, userinfo, connected apps.
 */
export interface AuthorizationServer {
  /** Checks the request `GET /authorize` received, in RFC 6749 §4.1.2.1's order. */
  checkRequest(params: AuthorizationParameters): Promise<AuthorizationCheck>;
  /**
   * The scopes `user` can grant `request`: what was asked, narrowed by the role, which counts as
   * `user` when REQUIRE_MFA_FOR_ROLES lists it and the sign-in's `amr` has no second factor.
   */
  grantableScopes(request: AuthorizationRequest, user: AccountUser, amr: readonly string[]): string[];
  /**
   * Whether a consent to `request` may be remembered and later answer without a page: for a
   * confidential client, or a redirect URI under `https` on a host that is not a loopback one
   * (which only the site's holder receives: `redirectIdentifiesClient`).
   * RFC 8252 §8.6: a public client redirecting to a private-use scheme or a loopback address
   * cannot prove its identity (any app on the device can claim the scheme or listen on the port,
   * and brings its own PKCE pair), so each of its requests is treated as if none had been
   * approved before: the consent page every time, and `consent_required` for `prompt=none`.
   */
  mayRememberConsent(request: AuthorizationRequest): boolean;
  /**
   * True when `userId` already allowed `request`'s client every one of `scopes`, and the request
   * may be answered from that ({@link mayRememberConsent}).
   */
  hasConsent(userId: string, request: AuthorizationRequest, scopes: readonly string[]): Promise<boolean>;
  /**
   * Approves `request` for `user`, remembering consent when `remember` (and
   * {@link mayRememberConsent}), and returns where to send
   * the browser: the redirect URI with `code`, `state` and `iss` (RFC 9207), or an error there
   * (`temporarily_unavailable` only when the client's {@link MAX_LIVE_CODES_PER_CLIENT} codes, or
   * the account's {@link MAX_LIVE_CODES_PER_ACCOUNT}, were all exchanged within the code's
   * lifetime; otherwise the oldest unexchanged one makes room).
   */
  approve(
    request: AuthorizationRequest,
    user: AccountUser,
    authentication: { authTime: number; amr: readonly string[]; sessionId: string },
    options: { remember: boolean; consentRemembered: boolean },
    caller: Caller,
  ): Promise<string>;
  /** The redirect URI with an error (e.g. `access_denied` when the person declined). */
  errorRedirect(
    request: Pick<AuthorizationRequest, 'redirectUri' | 'state'>,
    error: AuthorizationErrorCode,
    description: string,
  ): string;
  /** Exchanges a code for tokens (and an ID token with `openid`). A replay revokes what it produced. */
  exchangeCode(exchange: CodeExchange, caller: Caller): Promise<CodeExchangeResult>;
  /** The claims of `user` that `scopes` allow. */
  userInfo(user: AccountUser, scopes: readonly string[]): UserInfo;
  /** The apps `userId` has allowed, and those holding a live session of theirs without a consent on record. */
  listConnectedApps(userId: string): Promise<ConnectedApp[]>;
  /** Forgets the consent and ends every session of that app for `userId`. False when there was none. */
  disconnectApp(userId: string, clientId: string, caller: Caller): Promise<boolean>;
  /** Ends `userId`'s sessions holding tokens of `clientId` (RP-initiated logout); the consent stays. */
  endClientSessions(userId: string, clientId: string): Promise<number>;
  /** Deletes expired codes (the hourly sweep), a batch at a time. */
  sweep(options?: SweepBatchOptions): Promise<number>;
}

/**
 * The stores a consent change runs on inside one transaction: what it writes, the sessions it
 * ends and its audit entry commit together, after the account's row lock (ARCHITECTURE.md, "Lock
 * order").
 */
export interface ConsentStores {
  users: Pick<UserStore, 'lockUser'>;
  grants: OAuthGrantStore;
  sessions: Pick<SessionStore, 'revokeSessions' | 'isSessionLive'>;
  audit: Pick<AuditLog, 'record'>;
}

/** Dependencies of {@link createAuthorizationServer}, wired in `createGatehouseCore`. */
export interface AuthorizationServerDeps {
  issuer: string;
  clients: Pick<OAuthClients, 'find'>;
  grants: OAuthGrantStore;
  /** Runs `work` in one database transaction over {@link ConsentStores} bound to it. */
  transaction<T>(work: (stores: ConsentStores) => Promise<T>): Promise<T>;
  /** Where the sessions a disconnection ended are announced, once it has committed. */
  bus: Pick<EventBus, 'publish'>;
  sessions: Pick<SessionManager, 'startBearerSession' | 'revokeSessions'>;
  users: { get(userId: string): Promise<AccountUser | undefined> };
  idTokens: IdTokenSigner;
  /** Verifies an `id_token_hint` (`createIdTokenHintVerifier`, shared with RP-initiated logout). */
  verifyIdTokenHint: IdTokenHintVerifier;
  clock: () => number;
  /** The server's scopes (its apps' included), for what a role may grant. @default the core's */
  scopes?: Pick<ScopePolicy, 'forRole'>;
  /**
   * REQUIRE_MFA_FOR_ROLES (see `effectiveRole`): a browser signed in without a second factor
   * must not get its role's scopes through `/authorize` either. @default []
   */
  requireMfaForRoles?: readonly Role[];
  /** The codes an account may exchange per app and window (`LoginThrottle.checkAppSignIns`). @default unlimited */
  appSignIns?: Pick<LoginThrottle, 'checkAppSignIns' | 'recordAppSignIn'>;
}

const CODE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/** "1 minute", "7 minutes": a wait in whole minutes, rounded up. */
function minutes(seconds: number): string {
  const count = Math.max(1, Math.ceil(seconds / 60));
  return `${count} minute${count === 1 ? '' : 's'}`;
}
// RFC 7636 §4.1: code-verifier = 43*128unreserved
const CODE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

function hashCode(code: string): string {
  return createHash('sha256').update(code, 'utf8').digest('hex');
}

/** RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge, compared in constant time. */
function verifierMatches(verifier: string, challenge: string): boolean {
  const computed = Buffer.from(createHash('sha256').update(verifier, 'ascii').digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}

/** What was asked, narrowed by the role: OpenID scopes concern one's own identity, Gatehouse scopes need the role. */
function grantableScopes(
  request: AuthorizationRequest,
  role: Role,
  policy: Pick<ScopePolicy, 'forRole'> | undefined,
): string[] {
  const roleScopes: readonly string[] = policy?.forRole(role) ?? ROLE_SCOPES[role];
  return request.scopes.filter(
    (scope) =>
      Object.hasOwn(OIDC_SCOPES, scope) ||
      ((policy !== undefined || isScope(scope)) && roleScopes.includes(scope)),
  );
}

/** Creates the {@link AuthorizationServer}. */
export function createAuthorizationServer(deps: AuthorizationServerDeps): AuthorizationServer {
  const roleOf = (user: AccountUser, amr: readonly string[]): Role =>
    effectiveRole(user.role, amr, deps.requireMfaForRoles ?? []);
  const { issuer, clients, grants, sessions, users, idTokens, clock } = deps;

  const redirectWith = (redirectUri: string, params: Record<string, string | undefined>): string => {
    const url = new URL(redirectUri);
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined) url.searchParams.append(name, value);
    }
    // RFC 9207 §2: the issuer identifier, so a client talking to several servers can tell
    // which one answered (mix-up attacks, RFC 9700 §4.4).
    url.searchParams.append('iss', issuer);
    return url.toString();
  };

  const errorRedirect: AuthorizationServer['errorRedirect'] = (request, error, description) =>
    redirectWith(request.redirectUri, {
      error,
      error_description: oauthErrorText(description),
      state: request.state,
    });

  return {
    async checkRequest(params) {
      if (params.clientId === undefined) {
        return {
          ok: false,
          redirect: false,
          code: 'UNKNOWN_CLIENT',
          description: 'The client_id is missing.',
        };
      }
      const client = await clients.find(params.clientId);
      if (client === undefined) {
        return {
          ok: false,
          redirect: false,
          code: 'UNKNOWN_CLIENT',
          description: 'No app is registered with this client_id.',
        };
      }
      if (client.disabled) {
        // Shown, never redirected: the app may not start sign-ins while an operator has it disabled.
        return { ok: false, redirect: false, code: 'UNKNOWN_CLIENT', description: 'This app is disabled.' };
      }
      // RFC 9700 §4.1.3 / OAuth 2.1 §2.3.1: exact string comparison, but for the port of a loopback
      // IP for a native app, a public client (RFC 8252 §7.3); omitted only when the client
      // registered exactly one (RFC 6749 §3.1.2.3). The code keeps the URI as presented, which the
      // exchange must repeat exactly (§4.1.3).
      const redirectUri =
        params.redirectUri ?? (client.redirectUris.length === 1 ? client.redirectUris[0] : undefined);
      const anyLoopbackPort = client.type === 'public';
      if (
        redirectUri === undefined ||
        !client.redirectUris.some(
          (registered) =>
            registered === redirectUri || (anyLoopbackPort && redirectUriMatches(registered, redirectUri)),
        )
      ) {
        return {
          ok: false,
          redirect: false,
          code: 'INVALID_REDIRECT_URI',
          description: 'The redirect_uri is missing or not registered for this app.',
        };
      }
      const { state } = params;
      // OIDC Core §3.1.2.1: redirect_uri is REQUIRED in an OpenID Connect request, whatever was
      // registered. Shown, never redirected: the request named no address to send it to.
      const scopesAsked = params.scope === undefined ? client.scopes : parseScopeParameter(params.scope);
      if (params.redirectUri === undefined && scopesAsked?.includes('openid') === true) {
        return {
          ok: false,
          redirect: false,
          code: 'INVALID_REDIRECT_URI',
          description: 'An OpenID Connect request (scope openid) must send its redirect_uri.',
        };
      }
      const fail = (error: AuthorizationErrorCode, description: string): AuthorizationCheck => ({
        ok: false,
        redirect: true,
        to: errorRedirect({ redirectUri, state }, error, description),
      });
      // OIDC Core §6.1, §6.2: an OP that does not support request objects MUST answer so. Served
      // from the outer parameters instead, a request whose object said otherwise (another scope, a
      // nonce) would be granted what its sender did not sign for.
      if (params.request !== undefined)
        return fail('request_not_supported', 'Request objects (the request parameter) are not supported.');
      if (params.requestUri !== undefined)
        return fail('request_uri_not_supported', 'The request_uri parameter is not supported.');
      // Only the query response mode: fragments and form posts are not offered (no implicit grant).
      if (params.responseMode !== undefined && params.responseMode !== 'query') {
        return fail('invalid_request', 'Only response_mode=query is supported.');
      }
      if (params.responseType !== 'code') {
        // RFC 9700 §2.1.2: no implicit grant (`token`, `id_token token`) nor hybrid flows.
        return fail('unsupported_response_type', 'Only response_type=code is supported.');
      }
      if (!client.grantTypes.includes('authorization_code')) {
        return fail('unauthorized_client', 'This app may not use the authorization code flow.');
      }
      // RFC 9700 §2.1.1: PKCE for every client, and S256 only (plain gives no protection when
      // the authorization request leaks).
      if (params.codeChallenge === undefined)
        return fail('invalid_request', 'code_challenge is required (PKCE).');
      if (params.codeChallengeMethod !== 'S256') {
        return fail('invalid_request', 'code_challenge_method must be S256.');
      }
      if (!CODE_CHALLENGE.test(params.codeChallenge)) {
        return fail('invalid_request', 'code_challenge must be 43 base64url characters (S256).');
      }
      const requested = params.scope === undefined ? [...client.scopes] : parseScopeParameter(params.scope);
      if (requested === undefined) return fail('invalid_scope', 'The scope parameter is malformed.');
      const unknown = requested.filter((scope) => !client.scopes.includes(scope));
      if (unknown.length > 0)
        return fail('invalid_scope', `Scope not allowed for this app: ${unknown.join(' ')}.`);
      if (params.nonce !== undefined && params.nonce.length > 512)
        return fail('invalid_request', 'The nonce is too long.');
      if (params.state !== undefined && params.state.length > 2048) {
        return fail('invalid_request', 'The state is too long.');
      }
      // OIDC Core §3.1.2.1: `prompt` is a space-separated list; `none` with any other value is an
      // error. Before red-team 2026-12c H4 everything but `none` was ignored, so `login`, `consent`
      // and `max_age` answered a code silently for an old sign-in and a remembered consent.
      const prompts = new Set((params.prompt ?? '').split(' ').filter((value) => value !== ''));
      if ([...prompts].some((value) => !PROMPT_VALUES.has(value))) {
        return fail('invalid_request', 'Unsupported prompt value.');
      }
      if (prompts.has('none') && prompts.size > 1) {
        return fail('invalid_request', 'prompt=none cannot be combined with other values.');
      }
      if (params.maxAge !== undefined && !/^[0-9]{1,9}$/.test(params.maxAge)) {
        return fail('invalid_request', 'max_age must be a number of seconds.');
      }
      let hintUserId: string | undefined;
      if (params.idTokenHint !== undefined) {
        // Checked last: verification may load the keyring (a database read on first use).
        let hint: Awaited<ReturnType<typeof deps.verifyIdTokenHint>>;
        try {
          hint = await deps.verifyIdTokenHint(params.idTokenHint, params.clientIp);
        } catch (error) {
          if (!isHintThrottled(error)) throw error;
          return fail(
            'temporarily_unavailable',
            'Too many invalid id_token_hints from this address; try again in a minute.',
          );
        }
        if (hint === undefined)
          return fail('invalid_request', 'The id_token_hint is not an ID token this server issued.');
        // Its `aud` must be the client asking: another app's ID token says nothing about whom this
        // app expects.
        if (hint.clientId !== client.clientId)
          return fail('invalid_request', 'The id_token_hint was issued to another app.');
        hintUserId = hint.userId;
      }
      return {
        ok: true,
        request: {
          client,
          redirectUri,
          redirectUriGiven: params.redirectUri !== undefined,
          scopes: [...new Set(requested)],
          state,
          nonce: params.nonce,
          codeChallenge: params.codeChallenge,
          promptNone: prompts.has('none'),
          promptLogin: prompts.has('login'),
          promptConsent: prompts.has('consent'),
          maxAge: params.maxAge === undefined ? undefined : Number(params.maxAge),
          hintUserId,
        },
      };
    },

    grantableScopes: (request, user, amr) => grantableScopes(request, roleOf(user, amr), deps.scopes),

    mayRememberConsent,

    async hasConsent(userId, request, scopes) {
      if (!mayRememberConsent(request)) return false;
      const allowed = await grants.findConsent(userId, request.client.clientId);
      return allowed !== undefined && scopes.every((scope) => allowed.includes(scope));
    },

    async approve(request, user, authentication, options, caller) {
      const now = clock();
      const scopes = grantableScopes(request, roleOf(user, authentication.amr), deps.scopes);
      // Recorded as well for a client whose consent is never remembered (RFC 8252 §8.6): it never
      // answers a request for it (hasConsent), but lists the app under "Connected apps", where
      // the person sees it and can disconnect it (ending its sessions).
      if (options.remember || !mayRememberConsent(request)) {
        // One transaction: the consent and its entry commit together. The account's row lock
        // first (the lock order) also makes two approvals of one account merge their scopes in
        // turn, where both could read the same `before` and the second drop the first's scopes.
        await deps.transaction(async (stores) => {
          await stores.users.lockUser(user.id, 'no key update');
          // A consent form posted by a session the owner has just ended writes nothing.
          await assertSessionLive(stores.sessions, authentication.sessionId, user.id, now);
          const before = (await stores.grants.findConsent(user.id, request.client.clientId)) ?? [];
          const union = [...new Set([...before, ...scopes])];
          await stores.grants.saveConsent(user.id, request.client.clientId, union, now);
          if (union.length === before.length) return;
          await stores.audit.record({
            event: 'oauth_consent_granted',
            actorId: user.id,
            targetId: user.id,
            ...caller.client,
            details: { client_id: request.client.clientId, scope: union.join(' ') },
          });
        });
      }
      const allowance = await deps.appSignIns?.checkAppSignIns(user.id, request.client.clientId);
      if (allowance !== undefined && !allowance.allowed) {
        // RFC 6749 §4.1.2.1: the error the authorization endpoint has for this.
        return errorRedirect(
          request,
          'temporarily_unavailable',
          `Too many sign-ins to this app; try again in ${minutes(allowance.retryAfterSeconds)}.`,
        );
      }
      // 256 random bits (RFC 6749 §10.10); only the hash is stored.
      const code = randomBytes(32).toString('base64url');
      // Counted and inserted under the account's row lock: parallel approvals cannot overshoot.
      const inserted = await grants.insertCodeWithinCap(
        {
          codeHash: hashCode(code),
          clientId: request.client.clientId,
          userId: user.id,
          redirectUri: request.redirectUri,
          redirectUriGiven: request.redirectUriGiven,
          scopes,
          codeChallenge: request.codeChallenge,
          nonce: request.nonce ?? null,
          authTime: authentication.authTime,
          amr: [...authentication.amr],
          createdAt: now,
          expiresAt: now + AUTHORIZATION_CODE_TTL_MS,
        },
        { perClient: MAX_LIVE_CODES_PER_CLIENT, perAccount: MAX_LIVE_CODES_PER_ACCOUNT },
        { sessionId: authentication.sessionId, consentRemembered: options.consentRemembered },
      );
      if (inserted === 'withdrawn') {
        // The session was ended, the app disconnected or disabled, while this approval ran
        // (race review 2026-12-06 P1): nothing was written, nothing can be exchanged.
        return errorRedirect(
          request,
          'access_denied',
          'The sign-in or the app was withdrawn while approving.',
        );
      }
      if (inserted === 'capped') {
        return errorRedirect(
          request,
          'temporarily_unavailable',
          'Too many sign-ins in progress; try again in a minute.',
        );
      }
      return redirectWith(request.redirectUri, { code, state: request.state });
    },

    errorRedirect,

    async exchangeCode({ client, code, redirectUri, codeVerifier }, caller) {
      const invalid = (description: string): CodeExchangeResult => ({
        ok: false,
        error: 'invalid_grant',
        description,
      });
      if (code === undefined)
        return { ok: false, error: 'invalid_request', description: 'The code parameter is missing.' };
      if (!client.grantTypes.includes('authorization_code')) {
        return {
          ok: false,
          error: 'unauthorized_client',
          description: 'This app may not use the authorization code flow.',
        };
      }
      const codeHash = hashCode(code);
      const record = await grants.findCode(codeHash);
      const now = clock();
      if (record === undefined) return invalid('The code is invalid, expired or already used.');
      // Each check names no secret: the same answer for every mismatch. The client, redirect URI
      // and verifier come before the replay check: only who could have exchanged the code may end
      // what it produced, so a leaked spent code sent under another (public) client's id, or
      // without the verifier, ends nobody's session (as a refresh token another client presents
      // changes nothing).
      if (record.clientId !== client.clientId) return invalid('The code was issued to another client.');
      // RFC 6749 §4.1.3: "REQUIRED, if the redirect_uri parameter was included in the
      // authorization request, and their values MUST be identical". Left out at /authorize (a
      // client with one registered URI), it may be left out here too, or sent as that URI.
      const omittedButImplied =
        redirectUri === undefined &&
        !record.redirectUriGiven &&
        client.redirectUris.length === 1 &&
        client.redirectUris[0] === record.redirectUri;
      if (redirectUri !== record.redirectUri && !omittedButImplied)
        return invalid('The redirect_uri does not match the authorization request.');
      if (codeVerifier === undefined)
        return { ok: false, error: 'invalid_request', description: 'code_verifier is required (PKCE).' };
      if (!CODE_VERIFIER.test(codeVerifier) || !verifierMatches(codeVerifier, record.codeChallenge)) {
        return invalid('The code_verifier does not match the code_challenge.');
      }
      if (record.usedAt !== null) {
        // RFC 6749 §4.1.2: a code used twice is stolen or replayed; revoke what it produced.
        await revokeReplayed(record, caller);
        return invalid('The code is invalid, expired or already used.');
      }
      if (record.expiresAt <= now) return invalid('The code is invalid, expired or already used.');
      const user = await users.get(record.userId);
      if (user === undefined || !user.isActive) return invalid('The account is disabled or gone.');
      // The client's ID-token keyring before the code is spent: one made on first use needs the
      // database, and a failure after the spend would make the app's retry a replay that revokes.
      const idTokenKeyring = record.scopes.includes('openid')
        ? await idTokens.keyring(client.idTokenSignedResponseAlg ?? undefined)
        : undefined;
      let tokens: BearerTokens<boolean>;
      try {
        tokens = await sessions.startBearerSession(
          record.userId,
          record.scopes,
          caller.client,
          client.clientId,
          {
            amr: record.amr,
            // The person's sign-in, not this exchange: step-up (RFC 9470) must not count an app's
            // token request as a fresh authentication (red-team 2026-12c H2).
            authTime: record.authTime,
            // An app registered without the refresh_token grant could never use one.
            refreshToken: client.grantTypes.includes('refresh_token'),
            // Spending the code, recording the session it started and the session itself are one
            // transaction: an outage (or a crash) before the session is written leaves the code
            // unspent, so the client's retry is an exchange, not a replay that revokes and alarms.
            // A concurrent replay either finds the code unspent and waits on its row (PostgreSQL)
            // until this commits, or finds it spent with the session attached, and revokes it.
            spend: async (stores, session) => {
              // The client first (after the account, the lock order): a disable or removal that
              // raced this exchange past the client's authentication must not miss its session.
              if ((await stores.grants.holdClient(client.clientId)) !== 'enabled')
                throw new ClientWithdrawn();
              // Compare-and-set: of two concurrent exchanges exactly one spends the code.
              if (!(await stores.grants.spendCode(codeHash, now))) throw new CodeSpent();
              if (await stores.grants.attachSession(codeHash, session.id)) throw new CodeSpent();
              // Red-team 2026-12t V2: ending one session (a logout, "end this session") deletes no
              // codes, so a thief looping silent visits with a stolen cookie held one the owner's
              // logout left exchangeable. After the spend, so that a replay is still a replay (and
              // revokes); the refusal rolls the spend back. A logout committing after this read is a
              // logout after the exchange, which leaves the app's session, as a logout always does.
              if (
                record.approvedBySession !== null &&
                !(await stores.sessions.isSessionLive(record.approvedBySession, record.userId, now))
              )
                throw new ApprovalEnded();
            },
            audit: (session) => ({
              event: 'login_succeeded',
              actorId: record.userId,
              targetId: record.userId,
              ...caller.client,
              details: { via: 'authorization_code', client_id: client.clientId, session: session.id },
            }),
          },
        );
      } catch (error) {
        if (error instanceof ClientWithdrawn) {
          // As the client's authentication answers a disabled or removed client (RFC 6749 §5.2).
          return {
            ok: false,
            error: 'invalid_client',
            description: 'The client is disabled or no longer registered.',
          };
        }
        if (error instanceof ApprovalEnded) return invalid('The sign-in that approved this code has ended.');
        if (!(error instanceof CodeSpent)) throw error;
        // RFC 6749 §4.1.2: spent by a concurrent exchange: a replay; what it produced is revoked.
        await revokeReplayed(record, caller);
        return invalid('The code is invalid, expired or already used.');
      }
      // Counted here, where the `login_succeeded` row is written, not where the code is issued:
      // any site can send a signed-in person's browser through silent /authorize visits (a Lax
      // cookie goes along), but only the app (the holder of the PKCE verifier) or the person
      // exchanges codes, so no stranger can spend the person's allowance for an app (a review's
      // finding on the first version). The session has committed: a counter that cannot be written
      // must not fail the answer, or the app's retry would be a replay that revokes it.
      await deps.appSignIns?.recordAppSignIn(record.userId, client.clientId).catch(() => {});
      const idToken =
        idTokenKeyring !== undefined
          ? await idTokenKeyring.sign(
              {
                sub: record.userId,
                aud: client.clientId,
                azp: client.clientId,
                iat: Math.floor(now / 1000),
                exp: Math.floor(now / 1000) + ID_TOKEN_TTL_SECONDS,
                auth_time: Math.floor(record.authTime / 1000),
                amr: record.amr,
                sid: tokens.session.id,
                ...(record.nonce === null ? {} : { nonce: record.nonce }),
              },
              ID_TOKEN_TYP,
            )
          : undefined;
      return { ok: true, tokens, idToken };
    },

    userInfo(user, scopes) {
      return {
        sub: user.id,
        ...(scopes.includes('profile') ? { name: user.fullName ?? undefined } : {}),
        ...(scopes.includes('email') ? { email: user.email, email_verified: user.emailVerified } : {}),
      };
    },

    async listConnectedApps(userId) {
      // With the apps holding a live session and no consent on record: one the person allowed
      // without "remember my choice" keeps its refresh token, and was not listed, so it could not
      // be seen, nor disconnected short of knowing its id (an outside tester's finding).
      const consents = await grants.listConsents(userId);
      const listed = new Set(consents.map((consent) => consent.clientId));
      const unlisted = (await grants.listSessionApps(userId, clock())).filter(
        (app) => !listed.has(app.clientId),
      );
      return [...consents, ...unlisted].sort((a, b) => b.updatedAt - a.updatedAt);
    },

    async disconnectApp(userId, clientId, caller) {
      // One transaction: consent, codes, sessions and the entry go together (a process dying
      // halfway left the consent gone and the app's sessions live, or the change unrecorded).
      // The account's row `FOR UPDATE` first: a code exchange takes its `KEY SHARE` first (the
      // lock order), so one in flight commits before this reads the app's sessions and its
      // session is ended here, and one arriving later waits, then finds its code deleted.
      const ended = await deps.transaction(async (stores) => {
        await stores.users.lockUser(userId, 'update');
        // Before the sessions are read: a code the app held back would start a session
        // afterwards (red-team 2026-12d I2). Codes before the consent, the order in which removing
        // the client cascades (oauth_codes' trigger fires first), so the two cannot deadlock.
        const codes = await stores.grants.deleteUnexchangedCodes(userId, clientId);
        const had = await stores.grants.deleteConsent(userId, clientId);
        const revoked = await stores.sessions.revokeSessions(
          await stores.grants.sessionsOfClient(clientId, userId),
          clock(),
        );
        if (!had && revoked.length === 0 && codes === 0) return undefined;
        await stores.audit.record({
          event: 'oauth_consent_revoked',
          actorId: userId,
          targetId: userId,
          ...caller.client,
          details: { client_id: clientId, sessions_ended: revoked.length },
        });
        return revoked;
      });
      if (ended === undefined) return false;
      await publishRevokedSessions(deps.bus, ended);
      return true;
    },

    async endClientSessions(userId, clientId) {
      return sessions.revokeSessions(await grants.sessionsOfClient(clientId, userId));
    },

    sweep: (options) => grants.deleteExpiredCodes(clock(), options),
  };

  function mayRememberConsent(request: AuthorizationRequest): boolean {
    return request.client.type === 'confidential' || redirectIdentifiesClient(request.redirectUri);
  }

  async function revokeReplayed(record: AuthorizationCodeRecord, caller: Caller): Promise<void> {
    // One transaction: the mark, the session's end and the alarm commit together (a process dying
    // between them left the session ended without its alarm, or the code marked and its session
    // live). The account's row first (the lock order): an account deletion holds the session's row
    // when its cascade reaches the code's, so taking the code's row and then the session's
    // deadlocked with it.
    const ended = await deps.transaction(async (stores) => {
      await stores.users.lockUser(record.userId, 'key share');
      // After the locks: the revocation list reloads by `revoked_at`, which must not trail the commit.
      const now = clock();
      const sessionId = await stores.grants.markReplayed(record.codeHash, now);
      // The code was deleted after it was read (its app disconnected, "log out everywhere", the
      // account deleted): the exchange lost to that, not to a replay. Refused, with no false alarm.
      if (sessionId === undefined) return [];
      const revoked = sessionId === null ? [] : await stores.sessions.revokeSessions([sessionId], now);
      await stores.audit.record({
        event: 'oauth_code_replayed',
        targetId: record.userId,
        ...caller.client,
        details: { client_id: record.clientId, action: sessionId === null ? 'none yet' : 'session revoked' },
      });
      return revoked;
    });
    await publishRevokedSessions(deps.bus, ended);
  }
}
