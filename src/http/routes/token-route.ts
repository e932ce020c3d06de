import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { grantScopes, parseScopeParameter } from '../../accounts/scopes.js';
import { OAuthTokenError } from '../../errors.js';
import type { Gatehouse } from '../../gatehouse.js';
import { type BearerTokens, FIRST_PARTY_CLIENT_ID } from '../../sessions/session-manager.js';
import { clientInfo } from '../client-info.js';
import { type Form, OAuthErrorSchema, formParam as param, publicClientOf, readForm } from '../oauth-form.js';
import { recordAudit } from '../record-audit.js';

const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
  refresh_token: Type.String({ description: 'Opaque, single use: each refresh returns a new one' }),
  scope: Type.String({ description: 'Space-separated scopes granted' }),
  device_token: Type.Optional(
    Type.String({
      description:
        'Password grant only: proof that this client has signed in to this account. Keep it and send it back as ' +
        '`device_token` on later password grants: failed logins from elsewhere then never lock this client out.',
    }),
  ),
});

function sendTokens(reply: FastifyReply, tokens: BearerTokens, deviceToken?: string) {
  // RFC 6749 §5.1: responses carrying tokens must not be cached.
  return reply
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .send({
      access_token: tokens.accessToken,
      token_type: 'bearer',
      expires_in: tokens.expiresIn,
      refresh_token: tokens.refreshToken,
      scope: tokens.session.scopes.join(' '),
      ...(deviceToken === undefined ? {} : { device_token: deviceToken }),
    });
}

/** `POST /token`: the OAuth 2.0 password and refresh-token grants (RFC 6749 §4.3, §6). */
export function registerTokenRoute(app: FastifyInstance, gatehouse: Gatehouse): void {
  const { accounts, sessions, audit } = gatehouse;

  const passwordGrant = async (
    request: FastifyRequest,
    reply: FastifyReply,
    form: Form,
    clientId: string,
  ) => {
    const username = param(form, 'username', true);
    const password = param(form, 'password', true);
    const scopeParam = param(form, 'scope', false) ?? '';
    const requested = parseScopeParameter(scopeParam);
    if (requested === undefined)
      throw new OAuthTokenError('invalid_scope', 'The scope parameter is malformed.');
    const deviceToken = param(form, 'device_token', false);
    const client = clientInfo(request);
    const login = await accounts.loginWithPassword(username, password, client.ip, deviceToken);
    if (!login.ok) {
      if (login.reason === 'throttled') {
        throw OAuthTokenError.throttled(
          'TOO_MANY_LOGIN_ATTEMPTS',
          'Too many failed logins; try again later.',
          login.retryAfterSeconds,
        );
      }
      if (login.reason === 'busy') {
        throw OAuthTokenError.throttled(
          'TOO_MANY_REQUESTS',
          'Too many logins to this account at once; try again shortly.',
          login.retryAfterSeconds,
        );
      }
      await recordAudit(request, audit, {
        event: 'login_failed',
        targetId: login.userId,
        ...client,
        details: { reason: login.reason, via: 'token' },
      });
      // Unknown email and wrong password give byte-identical answers (no account enumeration).
      if (login.reason === 'disabled') throw new OAuthTokenError('invalid_grant', 'The account is disabled.');
      throw new OAuthTokenError('invalid_grant', 'Invalid username or password.');
    }
    const grant = grantScopes(login.user.role, requested);
    if (!grant.ok) {
      throw new OAuthTokenError(
        'invalid_scope',
        `Scope not allowed for this account: ${grant.rejected.join(' ')}.`,
      );
    }
    const userId = login.user.id;
    // The session, its tokens and this audit entry commit in one transaction (issue 10).
    const tokens = await sessions.startBearerSession(userId, grant.scopes, client, clientId, {
      audit: (session) => ({
        event: 'login_succeeded',
        actorId: userId,
        targetId: userId,
        ...client,
        details: { via: 'token', session: session.id },
      }),
    });
    return sendTokens(reply, tokens, login.deviceToken);
  };

  const refreshGrant = async (request: FastifyRequest, reply: FastifyReply, form: Form, clientId: string) => {
    const refreshToken = param(form, 'refresh_token', true);
    const scopeParam = param(form, 'scope', false);
    const requested = scopeParam === undefined ? [] : parseScopeParameter(scopeParam);
    if (requested === undefined) {
      throw new OAuthTokenError('invalid_scope', 'The scope parameter is malformed.');
    }
    // The scope is checked by the core before anything is minted or stored (RFC 6749 §6: a refresh
    // may not widen the scope originally granted); a refused request leaves the token unspent.
    const result = await sessions.refresh(refreshToken, requested, clientId);
    if (!result.ok) {
      if (result.reason === 'invalid_scope') {
        throw new OAuthTokenError(
          'invalid_scope',
          `Scope was not granted to this session: ${result.rejected.join(' ')}.`,
        );
      }
      if (result.reason === 'reused') {
        await recordAudit(request, audit, {
          event: 'refresh_token_reused',
          ...clientInfo(request),
          details: { action: 'session revoked' },
        });
      }
      throw new OAuthTokenError('invalid_grant', 'The refresh token is invalid, expired or already used.');
    }
    return sendTokens(reply, result.tokens);
  };

  app.post(
    '/token',
    {
      attachValidation: true,
      schema: {
        tags: ['accounts'],
        summary: 'Get tokens (OAuth 2.0 password or refresh_token grant)',
        description:
          'Form-encoded, as RFC 6749 requires. `grant_type=password` with `username` (your email) and `password` ' +
          'starts a session; `grant_type=refresh_token` with `refresh_token` rotates it. Errors follow RFC 6749 §5.2. ' +
          'Failed logins from clients without a valid `device_token` are limited per account, per client IP and ' +
          'server-wide; a client with one only by its own counter. A refused login answers 429 with Retry-After and ' +
          '`error=temporarily_unavailable`.',
        consumes: ['application/x-www-form-urlencoded'],
        body: Type.Object({
          grant_type: Type.Union([Type.Literal('password'), Type.Literal('refresh_token')]),
          username: Type.Optional(Type.String({ description: 'Email address (password grant)' })),
          password: Type.Optional(Type.String({ description: 'Password (password grant)' })),
          refresh_token: Type.Optional(Type.String({ description: 'Refresh token (refresh_token grant)' })),
          scope: Type.Optional(
            Type.String({ description: 'Space-separated scopes; default: all your role allows' }),
          ),
          client_id: Type.Optional(
            Type.String({
              maxLength: 255,
              description:
                "The app asking (public clients, not registered yet): becomes the access token's `client_id` " +
                `claim (RFC 9068). Default: \`${FIRST_PARTY_CLIENT_ID}\`.`,
            }),
          ),
          client_secret: Type.Optional(
            Type.String({
              maxLength: 0,
              description:
                'Empty or absent: no confidential clients are registered, so a secret (or HTTP Basic ' +
                'client authentication) is refused with 401 `invalid_client`.',
            }),
          ),
          device_token: Type.Optional(
            Type.String({
              description:
                "Password grant: the `device_token` from this client's last successful password grant for this " +
                'account. A valid one exempts the client from lockouts caused by failures elsewhere.',
            }),
          ),
        }),
        response: {
          200: TokenResponse,
          400: OAuthErrorSchema,
          401: OAuthErrorSchema,
          429: OAuthErrorSchema,
          503: OAuthErrorSchema,
        },
      },
    },
    async (request, reply) => {
      const form = readForm(request);
      const clientId = publicClientOf(request, form);
      const grantType = param(form, 'grant_type', true);
      if (grantType === 'password') return passwordGrant(request, reply, form, clientId);
      if (grantType === 'refresh_token') return refreshGrant(request, reply, form, clientId);
      throw new OAuthTokenError(
        'unsupported_grant_type',
        `The grant type ${JSON.stringify(grantType.slice(0, 40))} is not supported.`,
      );
    },
  );
}
