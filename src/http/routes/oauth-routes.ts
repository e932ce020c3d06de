import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { callerOf } from '../caller.js';
import { formParam, OAuthErrorSchema, publicClientOf, readForm } from '../oauth-form.js';
import { NoBody } from '../schemas.js';

/** RFC 8414 §2 metadata, exactly the members Gatehouse supports. */
const MetadataSchema = Type.Object({
  issuer: Type.String({ description: 'The `iss` of every token (PUBLIC_URL unless JWT_ISSUER is set)' }),
  token_endpoint: Type.String(),
  revocation_endpoint: Type.String(),
  jwks_uri: Type.Optional(Type.String({ description: 'Only with an asymmetric JWT_ALG' })),
  grant_types_supported: Type.Array(Type.String()),
  response_types_supported: Type.Array(Type.String(), {
    description: 'Empty: there is no authorization endpoint yet',
  }),
  scopes_supported: Type.Array(Type.String()),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
  service_documentation: Type.String(),
});

/**
 * `POST /revoke` (RFC 7009) and `GET /.well-known/oauth-authorization-server` (RFC 8414). Every
 * URL in the metadata derives from `PUBLIC_URL`, never from the request's `Host` header, which
 * the client chooses (a poisoned cache would otherwise send tokens elsewhere).
 */
export function registerOAuthRoutes(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const { config, tokenGrants, keyring } = gatehouse;
  const base = config.publicUrl;
  const metadata = {
    issuer: config.issuer,
    token_endpoint: `${base}/token`,
    revocation_endpoint: `${base}/revoke`,
    // A shared HS256 secret is never published, so there is no JWK Set to point at.
    ...(keyring.algorithm === 'HS256' ? {} : { jwks_uri: `${base}/.well-known/jwks.json` }),
    // PASSWORD_GRANT=false withdraws the password grant (RFC 9700 §2.4), so it is not advertised.
    grant_types_supported: config.passwordGrant ? ['password', 'refresh_token'] : ['refresh_token'],
    // RFC 8414 §2 makes this member REQUIRED; no response type is supported without /authorize.
    response_types_supported: [],
    scopes_supported: Object.keys(gatehouse.scopes.descriptions),
    // Public clients only for now (RFC 8414 §2, RFC 7591 §2 "none"); secrets are refused.
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    service_documentation: `${base}/docs`,
  };

  app.get(
    '/.well-known/oauth-authorization-server',
    {
      schema: {
        tags: ['oauth'],
        operationId: 'getAuthorizationServerMetadata',
        summary: 'OAuth 2.0 authorization server metadata (RFC 8414)',
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
          'alone (RFC 7009 §2.2). Refresh tokens are not bound to a client yet: any holder may revoke one. ' +
          'Errors follow RFC 6749 §5.2.',
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
            Type.String({ maxLength: 0, description: 'Empty or absent (no confidential clients yet)' }),
          ),
        }),
        response: {
          200: NoBody({ description: 'Revoked, or nothing to revoke' }),
          400: OAuthErrorSchema,
          401: OAuthErrorSchema,
          503: OAuthErrorSchema,
        },
      },
    },
    async (request, reply) => {
      const form = readForm(request);
      const clientId = publicClientOf(request, form);
      await tokenGrants.revoke(
        formParam(form, 'token', true),
        { hint: formParam(form, 'token_type_hint', false), clientId },
        callerOf(request),
      );
      // RFC 7009 §2.2: 200 whether or not anything was revoked (no oracle for valid tokens).
      return reply.header('cache-control', 'no-store').code(200).send();
    },
  );
}
