import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { OAuthTokenError } from '../../errors.js';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { type BearerTokens, FIRST_PARTY_CLIENT_ID } from '../../sessions/session-manager.js';
import { MFA_OTP_GRANT_TYPE, type TokenGrant } from '../../sessions/token-grants.js';
import { callerOf } from '../caller.js';
import {
  authenticateClientLimited,
  authenticateConfidentialClient,
  type Form,
  OAuthErrorSchema,
  formParam as param,
  readForm,
} from '../oauth-form.js';

const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
  refresh_token: Type.Optional(
    Type.String({
      description:
        'Opaque, single use: each refresh returns a new one. Never with `client_credentials` (RFC 6749 §4.4.3): ' +
        'the client asks for a new token instead; nor from the code exchange of a client registered without the ' +
        '`refresh_token` grant (it could never use one: its session ends with the access token)',
    }),
  ),
  scope: Type.String({ description: 'Space-separated scopes granted' }),
  id_token: Type.Optional(
    Type.String({
      description: 'Authorization code grant with the `openid` scope: the OpenID Connect ID token',
    }),
  ),
  device_token: Type.Optional(
    Type.String({
      description:
        'Password grant only: proof that this client has signed in to this account. Keep it and send it back as ' +
        '`device_token` on later password grants: failed logins from elsewhere then never lock this client out.',
    }),
  ),
});

function sendTokens(
  reply: FastifyReply,
  tokens: BearerTokens<boolean>,
  deviceToken?: string,
  idToken?: string,
) {
  // RFC 6749 §5.1: responses carrying tokens must not be cached.
  return reply
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .send({
      access_token: tokens.accessToken,
      token_type: 'bearer' as const,
      expires_in: tokens.expiresIn,
      refresh_token: tokens.refreshToken,
      scope: tokens.session.scopes.join(' '),
      ...(idToken === undefined ? {} : { id_token: idToken }),
      ...(deviceToken === undefined ? {} : { device_token: deviceToken }),
    });
}

/**
 * `grant_type=client_credentials` (RFC 6749 §4.4): an address with too many failed client
 * authentications is refused before any look-up, then only an authenticated confidential client
 * gets a token, for itself: no refresh token (§4.4.3).
 */
async function clientCredentialsGrant(
  request: FastifyRequest,
  reply: FastifyReply,
  form: Form,
  gatehouse: Pick<GatehouseCore, 'clientCredentials' | 'oauthClients'>,
) {
  const { clientCredentials } = gatehouse;
  // RFC 6749 §4.4.2: "The client MUST authenticate with the authorization server".
  const client = await authenticateConfidentialClient(
    request,
    form,
    gatehouse.oauthClients,
    clientCredentials,
    'The client_credentials grant is for registered confidential clients: authenticate with the client secret.',
  );
  const result = await clientCredentials.issue(client, param(form, 'scope', false), callerOf(request));
  if (!result.ok) {
    if (result.reason === 'throttled') {
      throw OAuthTokenError.throttled('TOO_MANY_REQUESTS', result.description, result.retryAfterSeconds);
    }
    throw new OAuthTokenError(result.error, result.description);
  }
  // RFC 6749 §5.1: responses carrying tokens must not be cached.
  return reply
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .send({
      access_token: result.token.accessToken,
      token_type: 'bearer' as const,
      expires_in: result.token.expiresIn,
      scope: result.token.scopes.join(' '),
    });
}

/** The RFC 6749 §5.2 error (or throttling 429) for a refused grant. */
function toOAuthError(refusal: Exclude<TokenGrant, { ok: true }>): OAuthTokenError {
  if (refusal.reason === 'throttled') {
    return OAuthTokenError.throttled(refusal.code, refusal.description, refusal.retryAfterSeconds);
  }
  if (refusal.reason === 'mfa_required') {
    return new OAuthTokenError('mfa_required', refusal.description, {
      code: 'MFA_REQUIRED',
      extra: { mfa_token: refusal.mfaToken },
    });
  }
  return new OAuthTokenError(
    refusal.error,
    refusal.description,
    refusal.code === undefined ? {} : { code: refusal.code },
  );
}

/**
 * `POST /token`: the OAuth 2.0 grants (RFC 6749 §4.1, §4.3, §4.4, §6, and the MFA grant). This route
 * reads the form (RFC 6749 §3.2: form-encoded, no repeated parameter) and writes the answer; the
 * grant rules live in `gatehouse.tokenGrants`, the client credentials grant's in `gatehouse.clientCredentials`.
 */
export function registerTokenRoute(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { tokenGrants, oauthClients } = gatehouse;

  app.post(
    '/token',
    {
      attachValidation: true,
      schema: {
        tags: ['accounts'],
        summary:
          'Get tokens (OAuth 2.0 authorization_code, client_credentials, password or refresh_token grant)',
        description:
          'Form-encoded, as RFC 6749 requires. `grant_type=password` with `username` (your email) and `password` ' +
          'starts a session; `grant_type=refresh_token` with `refresh_token` rotates it. Errors follow RFC 6749 §5.2. ' +
          'Failed logins from clients without a valid `device_token` are limited per account, per client IP and ' +
          'server-wide; a client with one only by its own counter. A refused login answers 429 with Retry-After and ' +
          '`error=temporarily_unavailable`. When the account has a second factor, a right password answers 400 ' +
          '`error=mfa_required` with an `mfa_token`; complete the login with ' +
          `\`grant_type=${MFA_OTP_GRANT_TYPE}\`, \`mfa_token\` and \`otp\` (a TOTP or recovery code). ` +
          'Wrong codes are limited per `mfa_token` (then it is dead: log in again) and per account (clients that ' +
          'present a `device_token` count on their own). After MFA_MAX_CONSECUTIVE_FAILURES wrong codes in a row ' +
          'on the account (from any client), a client without a `device_token` of it is refused before its ' +
          'authenticator-app code is checked: 400 `invalid_grant` with `code` `SECOND_FACTOR_LOCKED`, until a recovery ' +
          'code (still checked at the cap), a passkey, or a code from a device that signed in before, signs in (or an ' +
          'admin resets the factor). The password grant is for first-party clients only: a ' +
          'registered OAuth client is refused it (400 `unauthorized_client`), and `PASSWORD_GRANT=false` turns it ' +
          'off for everyone (400 `unsupported_grant_type`). `grant_type=authorization_code` (registered clients, ' +
          'after `GET /authorize`) takes `code`, `redirect_uri` (exactly as sent to /authorize) and `code_verifier` ' +
          '(PKCE, RFC 7636); with the `openid` scope the answer carries an `id_token`. A replayed code is refused and, ' +
          'sent by its client with the right `redirect_uri` and `code_verifier`, ends the session its first exchange ' +
          'started. A registered client gets a `refresh_token` from the code exchange, and uses ' +
          '`grant_type=refresh_token`, only when registered for that grant (else no refresh token, and 400 ' +
          '`unauthorized_client`). Confidential clients authenticate with HTTP Basic ' +
          '(`client_secret_basic`) or `client_id` + `client_secret` in the form (`client_secret_post`), not both; ' +
          'public clients send `client_id` only. Failed client authentication answers `invalid_client`: 401 with a `Basic` challenge when the client used HTTP Basic, else 400. ' +
          '`grant_type=client_credentials` (RFC 6749 §4.4, service-to-service calls): a confidential client ' +
          'registered for that grant authenticates and gets an access token for itself (a JWT, `typ: at+jwt`, ' +
          '`sub` = `client_id`, no user, no refresh token) with `scope` (default: every scope it is registered ' +
          'for, OpenID Connect scopes excepted). It passes only routes that accept client callers, and stops ' +
          'working as soon as the client is removed. Limited to CLIENT_CREDENTIALS_PER_MINUTE tokens per client ' +
          'and CLIENT_CREDENTIALS_PER_MINUTE_PER_IP failed client authentications per address (429 `temporarily_unavailable`).',
        consumes: ['application/x-www-form-urlencoded'],
        body: Type.Object({
          grant_type: Type.Union([
            Type.Literal('authorization_code'),
            Type.Literal('client_credentials'),
            Type.Literal('password'),
            Type.Literal('refresh_token'),
            Type.Literal(MFA_OTP_GRANT_TYPE),
          ]),
          username: Type.Optional(Type.String({ description: 'Email address (password grant)' })),
          password: Type.Optional(Type.String({ description: 'Password (password grant)' })),
          refresh_token: Type.Optional(Type.String({ description: 'Refresh token (refresh_token grant)' })),
          scope: Type.Optional(
            Type.String({
              description:
                'Space-separated scopes; default: all your role allows. At `refresh_token`: at most the ' +
                'scope granted (400 `invalid_scope` beyond it); the new access token carries what is asked, ' +
                'the refresh token keeps the grant (RFC 6749 §6)',
            }),
          ),
          code: Type.Optional(Type.String({ description: 'Authorization code grant: the code' })),
          redirect_uri: Type.Optional(
            Type.String({ description: 'Authorization code grant: the redirect_uri sent to /authorize' }),
          ),
          code_verifier: Type.Optional(
            Type.String({ description: 'Authorization code grant: the PKCE code verifier (RFC 7636)' }),
          ),
          client_id: Type.Optional(
            Type.String({
              maxLength: 255,
              description:
                "The app asking: a registered client's id, or for first-party callers a label that becomes the access " +
                `token's \`client_id\` claim (RFC 9068). Default: \`${FIRST_PARTY_CLIENT_ID}\`.`,
            }),
          ),
          client_secret: Type.Optional(
            Type.String({
              description:
                'Confidential clients using `client_secret_post`. Refused (`invalid_client`) for public and ' +
                'unregistered clients.',
            }),
          ),
          mfa_token: Type.Optional(
            Type.String({ description: 'MFA grant: the `mfa_token` of the `mfa_required` answer' }),
          ),
          otp: Type.Optional(
            Type.String({ description: 'MFA grant: the current TOTP code, or an unused recovery code' }),
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
      // `attachValidation`: the form is checked here, so its errors take RFC 6749 §5.2's shape.
      // (On an instance whose SECRET_KEY `gatehouse revoke-all` replaced, the plugin's hook has
      // answered 503 before this runs: a 200 would only start a refresh ↔ 401 loop.)
      const form = readForm(request);
      const grantType = param(form, 'grant_type', true);
      if (grantType === 'client_credentials') return clientCredentialsGrant(request, reply, form, gatehouse);
      const client = await authenticateClientLimited(
        request,
        form,
        oauthClients,
        gatehouse.clientCredentials,
      );
      const grant = await tokenGrants.exchange(
        {
          grantType,
          clientId: client.clientId,
          client: client.registered,
          code: param(form, 'code', false),
          redirectUri: param(form, 'redirect_uri', false),
          codeVerifier: param(form, 'code_verifier', false),
          username: param(form, 'username', false),
          password: param(form, 'password', false),
          refreshToken: param(form, 'refresh_token', false),
          scope: param(form, 'scope', false),
          deviceToken: param(form, 'device_token', false),
          mfaToken: param(form, 'mfa_token', false),
          otp: param(form, 'otp', false),
        },
        callerOf(request),
      );
      if (!grant.ok) throw toOAuthError(grant);
      return sendTokens(reply, grant.tokens, grant.deviceToken, grant.idToken);
    },
  );
}
