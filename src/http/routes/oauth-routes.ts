import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { clientScopes } from '../../oauth/oauth-clients.js';
import { callerOf } from '../caller.js';
import {
  admitAuthenticatedClient,
  authenticateClientLimited,
  authenticateConfidentialClient,
  formParam,
  OAuthErrorSchema,
  readForm,
} from '../oauth-form.js';
import { NoBody } from '../schemas.js';

/** RFC 8414 §2 metadata, exactly the members Gatehouse supports. */
const MetadataSchema = Type.Object({
  issuer: Type.String({ description: 'The `iss` of every token (PUBLIC_URL unless JWT_ISSUER is set)' }),
  authorization_endpoint: Type.String(),
  token_endpoint: Type.String(),
  userinfo_endpoint: Type.String(),
  revocation_endpoint: Type.String(),
  jwks_uri: Type.String({
    description: 'Access-token keys with an asymmetric JWT_ALG; ID-token keys always',
  }),
  grant_types_supported: Type.Array(Type.String()),
  response_types_supported: Type.Array(Type.String(), { description: '`code` only: no implicit grant' }),
  response_modes_supported: Type.Array(Type.String()),
  code_challenge_methods_supported: Type.Array(Type.String()),
  authorization_response_iss_parameter_supported: Type.Boolean(),
  scopes_supported: Type.Array(Type.String()),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
  introspection_endpoint: Type.String(),
  introspection_endpoint_auth_methods_supported: Type.Array(Type.String()),
  service_documentation: Type.String(),
});

/**
 * `POST /revoke` (RFC 7009) and `GET /.well-known/oauth-authorization-server` (RFC 8414). Every
 * URL in the metadata derives from `PUBLIC_URL`, never from the request's `Host` header, which
 * the client chooses (a poisoned cache would otherwise send tokens elsewhere).
 */
export function registerOAuthRoutes(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { config, tokenGrants } = gatehouse;
  const base = config.publicUrl;
  const metadata = {
    issuer: config.issuer,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    userinfo_endpoint: `${base}/userinfo`,
    revocation_endpoint: `${base}/revoke`,
    // With HS256 the JWK Set holds only the ID tokens' ES256 keys (the shared secret is never published).
    jwks_uri: `${base}/.well-known/jwks.json`,
    // PASSWORD_GRANT=false withdraws the password grant (RFC 9700 §2.4), so it is not advertised.
    grant_types_supported: [
      'authorization_code',
      'refresh_token',
      'client_credentials',
      ...(config.passwordGrant ? ['password'] : []),
    ],
    // No implicit grant (RFC 9700 §2.1.2): the code flow only, answered in the query.
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    code_challenge_methods_supported: ['S256'],
    // RFC 9207: `iss` comes back with every authorization response.
    authorization_response_iss_parameter_supported: true,
    scopes_supported: Object.keys(clientScopes(gatehouse.scopes)),
    // Confidential clients: HTTP Basic or form secrets; public clients: client_id only (RFC 7591 §2 "none").
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    introspection_endpoint: `${base}/introspect`,
    // RFC 7662 §2.1: introspection needs an authenticated (confidential) client.
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    service_documentation: `${base}/docs`,
  };

  app.get(
    '/.well-known/oauth-authorization-server',
    {
      schema: {
        tags: ['oauth'],
        operationId: 'getAuthorizationServerMetadata',
        summary: 'OAuth 2.0 authorization server metadata (RFC 8414)',
        description:
          'The endpoints (`/authorize`, `/token`, `/revoke`, `/introspect`, `/userinfo`, the JWKS), grant ' +
          'types, PKCE method (S256), client authentication methods and scopes, every URL derived from ' +
          'PUBLIC_URL. `password` is listed unless PASSWORD_GRANT=false. Needs no database; cacheable ' +
          'for 5 minutes.',
        security: [],
        response: { 200: MetadataSchema },
      },
    },
    async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(metadata),
  );

  app.post(
    '/revoke',
    {
      attachValidation: true,
      schema: {
        tags: ['oauth'],
        operationId: 'revokeToken',
        summary: 'Revoke a refresh or access token (RFC 7009)',
        description:
          'Form-encoded. Revoking either token of a session ends the whole session (every token of it ' +
          'fails on the next request, on every instance). Answers 200 with an empty body for unknown, ' +
          'expired or already revoked tokens and for access tokens of another `client_id`, which are left ' +
          'alone (RFC 7009 §2.2). A `client_credentials` access token is revoked alone (it has no session) when ' +
          'the authenticated client it was issued to presents it; it then fails on the next request everywhere. ' +
          'Limits: REVOCATIONS_PER_MINUTE per authenticated confidential client, and REVOCATION_FAILURES_PER_IP ' +
          'failed client authentications per address, which then blocks the address for the minute; beyond ' +
          'either, 429 `temporarily_unavailable` with `Retry-After`. Errors follow RFC 6749 §5.2.',
        security: [],
        consumes: ['application/x-www-form-urlencoded'],
        body: Type.Object({
          token: Type.String({ description: 'The refresh or access token' }),
          token_type_hint: Type.Optional(
            Type.Union([Type.Literal('refresh_token'), Type.Literal('access_token')], {
              description: 'Where to look first; a wrong hint still revokes (RFC 7009 §2.1)',
            }),
          ),
          client_id: Type.Optional(
            Type.String({
              maxLength: 255,
              description: 'The client the token was issued to; default `gatehouse`',
            }),
          ),
          client_secret: Type.Optional(
            Type.String({
              description:
                'Confidential clients (`client_secret_post`; or HTTP Basic, `client_secret_basic`); refused for others',
            }),
          ),
        }),
        response: {
          200: NoBody({ description: 'Revoked, or nothing to revoke' }),
          400: OAuthErrorSchema,
          401: OAuthErrorSchema,
          429: OAuthErrorSchema,
          503: OAuthErrorSchema,
        },
      },
    },
    async (request, reply) => {
      const form = readForm(request);
      const limits = gatehouse.revocationLimits;
      // Failed client authentications count per address (checked first); an authenticated
      // confidential client's revocations count against its own allowance. Public clients and
      // first-party labels authenticate nothing, so no per-client count could be theirs alone.
      const { clientId, registered } = await authenticateClientLimited(
        request,
        form,
        gatehouse.oauthClients,
        limits,
      );
      if (registered?.type === 'confidential') await admitAuthenticatedClient(limits, clientId);
      const token = formParam(form, 'token', true);
      const hint = formParam(form, 'token_type_hint', false);
      if (registered?.type === 'confidential' && gatehouse.clientCredentials.isClientToken(token)) {
        // A client_credentials token has no session: its jti goes into the revocation list
        // (RFC 7009 §2.1), only when the authenticated client is the one it was issued to.
        await gatehouse.clientCredentials.revoke(token, clientId, callerOf(request));
      } else {
        await tokenGrants.revoke(token, { hint, clientId }, callerOf(request));
      }
      // RFC 7009 §2.2: 200 whether or not anything was revoked (no oracle for valid tokens).
      return reply.header('cache-control', 'no-store').code(200).send();
    },
  );

  app.post(
    '/introspect',
    {
      attachValidation: true,
      schema: {
        tags: ['oauth'],
        operationId: 'introspectToken',
        summary: 'Token introspection (RFC 7662)',
        description:
          'Form-encoded, for resource servers (RFC 7662): a registered confidential client authenticates with ' +
          '`client_secret_basic` or `client_secret_post` (anyone else: `invalid_client`, 401 with a `Basic` challenge after HTTP Basic, else 400, so the endpoint is no ' +
          'oracle for token scanning). Any such client may introspect any access token we issue (user tokens, JWT ' +
          'or opaque with TOKEN_STRATEGY=database, and `client_credentials` tokens): a resource server checks the ' +
          'tokens of every app that calls it. A refresh token is described only to the client it was issued to ' +
          '(RFC 7662 §4); to anyone else it is inactive. Everything expired, revoked, spent, of a disabled account ' +
          'or removed client, unknown or foreign answers `{"active": false}`. `token_use` tells an access token ' +
          'from a refresh token: accept only `access_token` as a credential. `token_type_hint` only orders the ' +
          'look-ups (a wrong hint still finds the token). Limits (RFC 7662 §4): INTROSPECTIONS_PER_MINUTE per ' +
          'authenticated client, and INTROSPECTION_FAILURES_PER_IP failed client authentications per ' +
          'address, which then blocks the address for the minute; beyond either, 429 `temporarily_unavailable` ' +
          'with `Retry-After`.',
        security: [],
        consumes: ['application/x-www-form-urlencoded'],
        body: Type.Object({
          token: Type.String({ description: 'The access or refresh token' }),
          token_type_hint: Type.Optional(
            Type.String({
              description: '`access_token` or `refresh_token`: where to look first (RFC 7662 §2.1)',
            }),
          ),
          client_id: Type.Optional(Type.String({ maxLength: 255 })),
          client_secret: Type.Optional(Type.String()),
        }),
        response: {
          200: Type.Object({
            active: Type.Boolean(),
            scope: Type.Optional(Type.String()),
            client_id: Type.Optional(
              Type.String({
                description:
                  'The registered client that requested the token (RFC 7662 §2.2); `gatehouse` for a first-party ' +
                  'token (web UI, Swagger UI, scripts), which no registered client requested',
              }),
            ),
            client_label: Type.Optional(
              Type.String({
                description:
                  'First-party tokens only: the unregistered `client_id` label their caller sent to `/token`. It ' +
                  'names an app and authenticates nothing: never authorise by it',
              }),
            ),
            sub: Type.Optional(
              Type.String({
                description: "The user's id; for a `client_credentials` token, the client's id",
              }),
            ),
            exp: Type.Optional(Type.Integer()),
            iat: Type.Optional(Type.Integer({ description: 'JWT access tokens only' })),
            iss: Type.Optional(Type.String()),
            aud: Type.Optional(Type.String({ description: 'JWT access tokens only' })),
            token_type: Type.Optional(Type.Literal('Bearer', { description: 'Access tokens only' })),
            token_use: Type.Optional(
              Type.Union([Type.Literal('access_token'), Type.Literal('refresh_token')], {
                description: 'Which kind of token this is (as Ory Hydra names it)',
              }),
            ),
            sid: Type.Optional(
              Type.String({ description: "The user's session; absent for `client_credentials` tokens" }),
            ),
          }),
          400: OAuthErrorSchema,
          401: OAuthErrorSchema,
          429: OAuthErrorSchema,
          503: OAuthErrorSchema,
        },
      },
    },
    async (request, reply) => {
      const form = readForm(request);
      const limits = gatehouse.introspectionLimits;
      // RFC 7662 §4: guard against token scanning. The address limit counts only failed client
      // authentications; the client's own allowance is counted once it authenticated, so nobody
      // else can spend it.
      const client = await authenticateConfidentialClient(
        request,
        form,
        gatehouse.oauthClients,
        limits,
        'Introspection is for registered confidential clients: authenticate with the client secret.',
      );
      await admitAuthenticatedClient(limits, client.clientId);
      const answer = await gatehouse.tokenIntrospection.introspect(
        formParam(form, 'token', true),
        client,
        formParam(form, 'token_type_hint', false),
      );
      return reply.header('cache-control', 'no-store').send(answer);
    },
  );
}
