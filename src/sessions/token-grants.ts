import type { AccountService } from '../accounts/account-service.js';
import { INVALID_OR_UNCONFIRMED_LOGIN } from '../accounts/login-refusal.js';
import { effectiveRole, type Role } from '../accounts/roles.js';
import { createScopePolicy, parseScopeParameter, type ScopePolicy } from '../accounts/scopes.js';
import type { AuditLog } from '../audit/audit-log.js';
import { type Caller, recordRefusal } from '../audit/record-committed.js';
import type { ErrorCode } from '../errors.js';
import { amrOf, type MfaService, SECOND_FACTOR_LOCKED_MESSAGE } from '../mfa/mfa-service.js';
import type { AuthorizationServer } from '../oauth/authorization-server.js';
import type { OAuthClient } from '../oauth/oauth-clients.js';
import type { BearerTokens, SessionManager, TokenTypeHint } from './session-manager.js';

/**
 * A token request (RFC 6749 §4.3.2, §6), its parameters already read off the wire: absent and
 * empty parameters are `undefined` (RFC 6749 §3.1), repeated ones were refused by the adapter.
 */
export interface TokenRequest {
  /** `grant_type`: `password` or `refresh_token`; anything else is `unsupported_grant_type`. */
  grantType: string;
  /** The public client asking; the access token's `client_id` (RFC 9068 §2.2). */
  clientId: string;
  /** Password grant: the email. */
  username?: string | undefined;
  /** Password grant: the password. */
  password?: string | undefined;
  /** Refresh grant: the refresh token. */
  refreshToken?: string | undefined;
  /** Space-separated scopes (RFC 6749 §3.3); none asks for everything the role allows. */
  scope?: string | undefined;
  /** Password grant: the device token from this client's last successful login (OWASP device cookie). */
  deviceToken?: string | undefined;
  /** MFA grant: the `mfa_token` the password grant answered with. */
  mfaToken?: string | undefined;
  /** MFA grant: a TOTP code or a recovery code. */
  otp?: string | undefined;
  /** The registered client making the request, authenticated by the adapter (RFC 6749 §2.3). */
  client?: OAuthClient | undefined;
  /** Authorization code grant: the code. */
  code?: string | undefined;
  /** Authorization code grant: the redirect URI of the authorization request. */
  redirectUri?: string | undefined;
  /** Authorization code grant: the PKCE verifier (RFC 7636 §4.5). */
  codeVerifier?: string | undefined;
}

/**
 * The grant type that completes a login with a second factor: `mfa_token` (from the password
 * grant's `mfa_required` answer) and `otp`. Modelled on Auth0's `http://auth0.com/oauth/grant-type/mfa-otp`;
 * a URN of our own, as RFC 6749 §4.5 asks of extension grants.
 */
export const MFA_OTP_GRANT_TYPE = 'urn:gatehouse:params:oauth:grant-type:mfa-otp';

/** An RFC 6749 §5.2 error code a token request can end with. */
export type TokenErrorCode =
  | 'invalid_request'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'unsupported_grant_type'
  | 'unauthorized_client'
  /** A client disabled or removed between its authentication and its code's exchange. */
  | 'invalid_client';

/**
 * Outcome of {@link TokenGrants.exchange}. Refusals are values: `error` with its RFC 6749 §5.2
 * code, or `throttled` (too many failed logins, `TOO_MANY_LOGIN_ATTEMPTS`, or too many checks of
 * this account at once, `TOO_MANY_REQUESTS`) with the seconds to wait.
 */
export type TokenGrant =
  | {
      ok: true;
      tokens: BearerTokens;
      /** Password grant only: the client's new device token. */
      deviceToken?: string | undefined;
      /** Authorization code grant with the `openid` scope: the OpenID Connect ID token. */
      idToken?: string | undefined;
    }
  | {
      ok: false;
      reason: 'error';
      error: TokenErrorCode;
      description: string;
      /** Our stable code, sent beside `error` when the RFC's code alone is ambiguous. */
      code?: ErrorCode;
    }
  /** The password was right and the account has a second factor: continue with the MFA grant. */
  | { ok: false; reason: 'mfa_required'; mfaToken: string; description: string }
  | {
      ok: false;
      reason: 'throttled';
      code: 'TOO_MANY_LOGIN_ATTEMPTS' | 'TOO_MANY_REQUESTS';
      description: string;
      retryAfterSeconds: number;
    };

/**
 * The OAuth 2.0 token and revocation endpoints' rules, without HTTP: which grant, which scopes,
 * what is audited.
 */
export interface TokenGrants {
  /**
   * Runs the grant `request` names: `password` signs the user in and starts a bearer session with
   * the scopes their role allows (never more than asked for); `refresh_token` rotates a refresh
   * token, never widening its session's scope (RFC 6749 §6). Logins, failed logins and refresh
   * token reuse are audited.
   */
  exchange(request: TokenRequest, caller: Caller): Promise<TokenGrant>;
  /**
   * RFC 7009: ends the session behind a refresh or access token of `clientId` and audits it.
   * `hint` (`token_type_hint`) only orders the look-ups; an unknown one is ignored (§2.1).
   * Resolves the same whether or not anything was revoked: the endpoint answers 200 either way,
   * so it is no oracle for valid tokens (§2.2).
   */
  revoke(
    token: string,
    options: { hint?: string | undefined; clientId: string },
    caller: Caller,
  ): Promise<void>;
}

/** Dependencies of {@link createTokenGrants}, wired in `createGatehouse`. */
export interface TokenGrantsDeps {
  /** The server's scopes, its apps' included. @default createScopePolicy() (the core's alone) */
  scopes?: ScopePolicy;
  accounts: Pick<AccountService, 'loginWithPassword'>;
  mfa: Pick<MfaService, 'issueChallenge' | 'completeChallenge'>;
  sessions: Pick<SessionManager, 'startBearerSession' | 'refresh' | 'revokeToken'>;
  /** Read at each call (`audit.record`), so a replaced `record` is the one used. */
  audit: Pick<AuditLog, 'record'>;
  /** REQUIRE_MFA_FOR_ROLES (see `effectiveRole`). @default [] */
  requireMfaForRoles?: readonly Role[];
  /**
   * REQUIRE_VERIFIED_EMAIL: an unverified account's right password gets the wrong password's
   * answer, {@link INVALID_OR_UNCONFIRMED_LOGIN}. @default false
   */
  requireVerifiedEmail?: boolean;
  /**
   * Who may use the password grant (issue 15; RFC 9700 §2.4 says it MUST NOT be used): nobody
   * when `enabled` is false (`PASSWORD_GRANT=false`), and never a registered OAuth client, which
   * must use the authorization code flow. @default enabled, no client registered
   */
  passwordGrant?: {
    enabled: boolean;
    /** True when `clientId` names a registered OAuth client (they are refused the grant). */
    isRegisteredClient(clientId: string): Promise<boolean>;
  };
  /** The authorization code grant (issue 15). @default not offered */
  authorizationCodes?: Pick<AuthorizationServer, 'exchangeCode'>;
}

function refuse(error: TokenErrorCode, description: string): TokenGrant {
  return { ok: false, reason: 'error', error, description };
}

function missing(name: string): TokenGrant {
  return refuse('invalid_request', `The ${name} parameter is missing.`);
}

const MALFORMED_SCOPE = refuse('invalid_scope', 'The scope parameter is malformed.');

/** Creates the {@link TokenGrants}. */
export function createTokenGrants(deps: TokenGrantsDeps): TokenGrants {
  const { accounts, sessions, audit, mfa } = deps;
  const scopePolicy = deps.scopes ?? createScopePolicy();

  const passwordGrant = async (request: TokenRequest, caller: Caller): Promise<TokenGrant> => {
    const policy = deps.passwordGrant;
    if (policy?.enabled === false) {
      return refuse('unsupported_grant_type', 'The password grant is turned off on this server.');
    }
    // Checked before the password, so a registered client's users never type theirs into it.
    if (policy !== undefined && (await policy.isRegisteredClient(request.clientId))) {
      return refuse(
        'unauthorized_client',
        'Registered clients must use the authorization code flow with PKCE, not the password grant.',
      );
    }
    if (request.username === undefined) return missing('username');
    if (request.password === undefined) return missing('password');
    const requested = parseScopeParameter(request.scope ?? '');
    if (requested === undefined) return MALFORMED_SCOPE;
    const { client } = caller;
    const login = await accounts.loginWithPassword(
      request.username,
      request.password,
      client.ip,
      request.deviceToken,
    );
    if (!login.ok) {
      if (login.reason === 'throttled') {
        return {
          ok: false,
          reason: 'throttled',
          code: 'TOO_MANY_LOGIN_ATTEMPTS',
          description: 'Too many failed logins; try again later.',
          retryAfterSeconds: login.retryAfterSeconds,
        };
      }
      if (login.reason === 'busy') {
        return {
          ok: false,
          reason: 'throttled',
          code: 'TOO_MANY_REQUESTS',
          description: 'Too many logins to this account at once; try again shortly.',
          retryAfterSeconds: login.retryAfterSeconds,
        };
      }
      await recordRefusal(audit, caller, {
        event: 'login_failed',
        targetId: login.userId,
        ...client,
        details: { reason: login.reason, via: 'token' },
      });
      // "Disabled" is only revealed once the password was right (see loginWithPassword); unknown
      // email and wrong password give byte-identical answers (no account enumeration).
      if (login.reason === 'disabled') return refuse('invalid_grant', 'The account is disabled.');
      // An unverified account (REQUIRE_VERIFIED_EMAIL) answers as a wrong password does, byte for
      // byte (see INVALID_OR_UNCONFIRMED_LOGIN).
      return refuse(
        'invalid_grant',
        deps.requireVerifiedEmail === true ? INVALID_OR_UNCONFIRMED_LOGIN : 'Invalid username or password.',
      );
    }
    const userId = login.user.id;
    const enrolled = login.secondFactor;
    // Unlike seed 001's tutorial, asking for a scope never grants it: the role decides. A role that
    // needs a second factor (REQUIRE_MFA_FOR_ROLES) counts as `user` for a password-only login.
    const role = enrolled
      ? login.user.role
      : effectiveRole(login.user.role, ['pwd'], deps.requireMfaForRoles ?? []);
    const grant = scopePolicy.grant(role, requested);
    if (!grant.ok) {
      const hint = role === login.user.role ? '' : ' Set up a second factor first (REQUIRE_MFA_FOR_ROLES).';
      return refuse(
        'invalid_scope',
        `Scope not allowed for this account: ${grant.rejected.join(' ')}.${hint}`,
      );
    }
    if (enrolled) {
      // No session, no tokens and no device token yet: a password alone proves one factor. The
      // device token is withheld too (device trust only after every factor, issue 13).
      const mfaToken = mfa.issueChallenge({
        userId,
        scopes: grant.scopes,
        clientId: request.clientId,
        flow: 'token',
        deviceId: login.trustedDeviceId,
        credentialsVersion: login.user.credentialsVersion,
      });
      return {
        ok: false,
        reason: 'mfa_required',
        mfaToken,
        description: 'A second factor is required: use the mfa-otp grant with this mfa_token.',
      };
    }
    // The session, its tokens and this audit entry commit in one transaction (issue 10): a login
    // is one write, and a session never exists without its entry.
    const tokens = await sessions.startBearerSession(userId, grant.scopes, client, request.clientId, {
      passwordUpgrade: login.passwordUpgrade,
      // A reset (or "log out everywhere"…) committing after the password check ends this sign-in
      // with it (red-team 2026-12d I3).
      credentialsVersion: login.user.credentialsVersion,
      audit: (session) => ({
        event: 'login_succeeded',
        actorId: userId,
        targetId: userId,
        ...client,
        details: { via: 'token', session: session.id },
      }),
    });
    return { ok: true, tokens, deviceToken: login.deviceToken };
  };

  const mfaGrant = async (request: TokenRequest, caller: Caller): Promise<TokenGrant> => {
    // The second half of the password grant: off with it (an mfa_token issued before the switch
    // must not finish a grant the server no longer offers).
    if (deps.passwordGrant?.enabled === false) {
      return refuse('unsupported_grant_type', 'The password grant is turned off on this server.');
    }
    if (request.mfaToken === undefined) return missing('mfa_token');
    if (request.otp === undefined) return missing('otp');
    const { client } = caller;
    // Spending the code, claiming the mfa_token, the session, its tokens and the audit rows are one
    // transaction: an outage before the session is written spends nothing, so the same token and
    // code work on a retry.
    const result = await mfa.completeChallenge(
      request.mfaToken,
      request.otp,
      'token',
      (proof) => {
        const { user, challenge, method } = proof;
        // The role may have changed since the first step: never mint a scope it no longer allows.
        const allowed = scopePolicy.forRole(user.role);
        const scopes = challenge.scopes.filter((scope) => allowed.includes(scope));
        return sessions.startBearerSession(user.id, scopes, client, challenge.clientId, {
          amr: amrOf(method),
          credentialsVersion: challenge.credentialsVersion,
          spend: (stores) => proof.spend(stores, { actorId: user.id, targetId: user.id, ...client }),
          audit: (session) => ({
            event: 'login_succeeded',
            actorId: user.id,
            targetId: user.id,
            ...client,
            details: { via: 'token', session: session.id, second_factor: method },
          }),
        });
      },
      client,
    );
    if (!result.ok) {
      if (result.reason === 'locked') {
        // RFC 6749 §5.2 `invalid_grant`: the grant (this password's second step) is refused until
        // another factor ends the run, so waiting (`temporarily_unavailable`) would be the wrong advice;
        // `code` tells it apart from a wrong code.
        return {
          ok: false,
          reason: 'error',
          error: 'invalid_grant',
          description: SECOND_FACTOR_LOCKED_MESSAGE,
          code: 'SECOND_FACTOR_LOCKED',
        };
      }
      if (result.reason === 'throttled') {
        return {
          ok: false,
          reason: 'throttled',
          code: 'TOO_MANY_LOGIN_ATTEMPTS',
          description: 'Too many wrong codes; try again later.',
          retryAfterSeconds: result.retryAfterSeconds,
        };
      }
      if (result.reason === 'invalid_token') {
        return refuse(
          'invalid_grant',
          'The mfa_token is invalid, expired, used or out of tries: log in again.',
        );
      }
      // Outside the refused transaction: a wrong code stays on record.
      await recordRefusal(audit, caller, {
        event: 'mfa_failed',
        targetId: result.userId,
        ...client,
        details: { via: 'token' },
      });
      return refuse('invalid_grant', 'The code is wrong, expired or already used.');
    }
    return { ok: true, tokens: result.value, deviceToken: result.deviceToken };
  };

  const refreshGrant = async (request: TokenRequest, caller: Caller): Promise<TokenGrant> => {
    // RFC 6749 §5.2: a registered client may use only the grants it registered.
    if (request.client !== undefined && !request.client.grantTypes.includes('refresh_token')) {
      return refuse('unauthorized_client', 'This client may not use the refresh_token grant.');
    }
    if (request.refreshToken === undefined) return missing('refresh_token');
    const requested = parseScopeParameter(request.scope ?? '');
    if (requested === undefined) return MALFORMED_SCOPE;
    // The scope is checked by the session manager before anything is minted or stored (RFC 6749
    // §6: a refresh may not widen the scope originally granted); a refused request leaves the
    // token unspent.
    const result = await sessions.refresh(request.refreshToken, requested, request.clientId, {
      // In the transaction that ends the session (SessionManager.refresh).
      reuseAudit: (session, ended) => ({
        event: 'refresh_token_reused',
        targetId: session.userId,
        ...caller.client,
        details: { action: ended ? 'session revoked' : 'already ended', session: session.id },
      }),
    });
    if (result.ok) return { ok: true, tokens: result.tokens };
    if (result.reason === 'invalid_scope') {
      return refuse('invalid_scope', `Scope was not granted to this session: ${result.rejected.join(' ')}.`);
    }
    return refuse('invalid_grant', 'The refresh token is invalid, expired or already used.');
  };

  return {
    async exchange(request, caller) {
      if (request.grantType === 'password') return passwordGrant(request, caller);
      if (request.grantType === 'refresh_token') return refreshGrant(request, caller);
      if (request.grantType === MFA_OTP_GRANT_TYPE) return mfaGrant(request, caller);
      if (request.grantType === 'authorization_code' && deps.authorizationCodes !== undefined) {
        // RFC 6749 §4.1.3: only a registered client can have been issued a code.
        if (request.client === undefined) {
          return refuse('unauthorized_client', 'The authorization code grant needs a registered client_id.');
        }
        const result = await deps.authorizationCodes.exchangeCode(
          {
            client: request.client,
            code: request.code,
            redirectUri: request.redirectUri,
            codeVerifier: request.codeVerifier,
          },
          caller,
        );
        if (!result.ok) return refuse(result.error, result.description);
        return { ok: true, tokens: result.tokens, idToken: result.idToken };
      }
      return refuse(
        'unsupported_grant_type',
        `The grant type ${JSON.stringify(request.grantType.slice(0, 40))} is not supported.`,
      );
    },

    async revoke(token, options, caller) {
      const hint: TokenTypeHint | undefined =
        options.hint === 'access_token' || options.hint === 'refresh_token' ? options.hint : undefined;
      // The entry goes in the revocation's transaction (SessionManager.revokeToken).
      await sessions.revokeToken(token, {
        hint,
        clientId: options.clientId,
        audit: ({ sessionId, userId }) => ({
          event: 'session_revoked',
          actorId: userId,
          targetId: userId,
          ...caller.client,
          details: { session: sessionId, via: 'revoke' },
        }),
      });
    },
  };
}
