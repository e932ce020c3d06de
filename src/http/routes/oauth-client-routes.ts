import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { GatehouseCore } from '../../gatehouse-core.js';
import { clientView } from '../../oauth/client-view.js';
import { credentialedAppOrigins, credentialedAppWarning } from '../../oauth/credentialed-app-origins.js';
import {
  clientScopes,
  MAX_OAUTH_CLIENTS,
  MAX_REDIRECT_URIS,
  OAUTH_GRANT_TYPES,
} from '../../oauth/oauth-clients.js';
import { clientInfo } from '../client-info.js';
import { declareLocation, errorResponses, NoBody, problemRef } from '../schemas.js';
import { authOf } from './me-routes.js';

const UriList = (description: string) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 2000 }), { maxItems: MAX_REDIRECT_URIS, description });

/** A registered client as the admin API shows it (never its secret). */
const ClientSchema = Type.Object({
  client_id: Type.String(),
  name: Type.String(),
  client_type: Type.Union([Type.Literal('public'), Type.Literal('confidential')]),
  redirect_uris: Type.Array(Type.String()),
  post_logout_redirect_uris: Type.Array(Type.String()),
  grant_types: Type.Array(Type.String()),
  scopes: Type.Array(Type.String()),
  token_endpoint_auth_method: Type.Union([Type.Literal('none'), Type.Literal('client_secret_basic')], {
    description: '`none` for public clients; confidential ones may also use `client_secret_post`',
  }),
  created_at: Type.String({ format: 'date-time' }),
  disabled: Type.Boolean({
    description:
      'Disabled by an admin or operator: it cannot authenticate, get tokens or start a sign-in, and its tokens stop working',
  }),
  id_token_signed_response_alg: Type.String({
    description:
      'The JWS algorithm of its ID tokens (OpenID Connect Dynamic Client Registration §2): the one it chose, else ' +
      'the installation’s default (JWT_ALG when asymmetric, else ES256)',
  }),
});

/** A client as its registration answers it: once with its secret, and any warning for the operator. */
const RegisteredClientSchema = Type.Intersect([
  ClientSchema,
  Type.Object({
    client_secret: Type.Optional(Type.String({ description: 'Confidential clients only; shown once' })),
    warnings: Type.Optional(
      Type.Array(Type.String(), {
        description:
          'For the operator: a redirect URI’s origin is in CORS_CREDENTIALED_ORIGINS, which gives this app ' +
          'the person’s cookie session (also logged, and again at every start)',
      }),
    ),
  }),
]);

/** The `id_token_signed_response_alg` a registration or change may ask for: the installation's algorithms. */
const IdTokenAlgorithm = (algorithms: readonly string[]) =>
  Type.Union(
    algorithms.map((algorithm) => Type.Literal(algorithm)),
    {
      description:
        `The JWS algorithm of the client’s ID tokens: ${algorithms.join(' or ')}. The first is the installation’s ` +
        'default (JWT_ALG when asymmetric, else ES256); RS256 is there for relying parties that accept nothing ' +
        'else (OpenID Connect Core §15.1). An explicit choice stays when JWT_ALG changes (the default follows it).',
    },
  );

const ClientIdParams = Type.Object({
  client_id: Type.String({ pattern: '^[\\x21-\\x7E]{1,255}$', description: 'The client id' }),
});

/**
 * Admin management of OAuth clients: `POST/GET /oauth/clients`, `GET/PATCH/DELETE /oauth/clients/{client_id}`
 * (rules in `gatehouse.oauthClients`).
 */
export function registerOAuthClientRoutes(parent: FastifyInstance, gatehouse: GatehouseCore): void {
  const app = parent.withTypeProvider<TypeBoxTypeProvider>();
  const clients = gatehouse.oauthClients;
  const idTokenAlgorithm = IdTokenAlgorithm(gatehouse.idTokenKeys.algorithms);
  const canRead = app.auth.require({ role: 'admin', scopes: ['clients:read'], firstParty: true });
  const canWrite = app.auth.require({ role: 'admin', scopes: ['clients:write'], firstParty: true });

  app.post(
    '/oauth/clients',
    {
      preValidation: canWrite,
      schema: {
        tags: ['admin'],
        summary: 'Register an OAuth client',
        description:
          'Admins. A public client (the default: SPAs, native apps) has no secret and must use PKCE; a ' +
          '`confidential` one gets a `client_secret`, shown in this response only (only its hash is stored), and ' +
          'authenticates with `client_secret_basic` or `client_secret_post`. Redirect URIs are matched exactly ' +
          '(RFC 9700 §4.1.3; for a public client an http one on 127.0.0.1 or [::1] with any port, RFC 8252 §7.3): https, http on 127.0.0.1/[::1]/localhost, or a reverse-domain private-use scheme; ' +
          'no fragment, no port 0, and no `code`, `state`, `iss` or `error*` parameter in the query (the server ' +
          'adds those to its redirects). Grants: `authorization_code` (default, with `refresh_token`), `client_credentials` ' +
          `(confidential only); never implicit or password. At most ${MAX_OAUTH_CLIENTS} clients ` +
          '(409 `TOO_MANY_CLIENTS`). Invalid fields answer 400 `VALIDATION_FAILED`, one error each.',
        body: Type.Object(
          {
            name: Type.String({ maxLength: 1024, description: 'Shown on the consent page' }),
            redirect_uris: Type.Optional(UriList('Required with the authorization_code grant')),
            post_logout_redirect_uris: Type.Optional(UriList('Where RP-initiated logout may return to')),
            confidential: Type.Optional(Type.Boolean({ default: false })),
            grant_types: Type.Optional(
              Type.Array(Type.String({ maxLength: 64 }), {
                maxItems: 8,
                description: `Any of ${OAUTH_GRANT_TYPES.join(', ')}; default authorization_code, refresh_token`,
              }),
            ),
            scopes: Type.Optional(
              Type.Array(Type.String({ maxLength: 64 }), {
                maxItems: 32,
                description: `Any of ${Object.keys(clientScopes(gatehouse.scopes)).join(', ')}; default openid, profile, email`,
              }),
            ),
            id_token_signed_response_alg: Type.Optional(idTokenAlgorithm),
          },
          { additionalProperties: false },
        ),
        response: {
          201: declareLocation(
            RegisteredClientSchema,
            'The new client’s admin resource: `/oauth/clients/{client_id}`',
          ),
          409: problemRef,
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const created = await clients.create(
        {
          name: body.name,
          redirectUris: body.redirect_uris,
          postLogoutRedirectUris: body.post_logout_redirect_uris,
          confidential: body.confidential,
          grantTypes: body.grant_types,
          scopes: body.scopes,
          idTokenSignedResponseAlg: body.id_token_signed_response_alg,
        },
        { actorId: authOf(request).user.id, client: clientInfo(request) },
      );
      const origins = credentialedAppOrigins(created.client, gatehouse.config.corsCredentialedOrigins);
      const warning = origins.length === 0 ? undefined : credentialedAppWarning(created.client, origins);
      if (warning !== undefined) request.log.warn({ client_id: created.client.clientId }, warning);
      return reply
        .code(201)
        .header('location', `/oauth/clients/${encodeURIComponent(created.client.clientId)}`)
        .header('cache-control', 'no-store')
        .send({
          ...clientView(created.client),
          ...(created.clientSecret === undefined ? {} : { client_secret: created.clientSecret }),
          ...(warning === undefined ? {} : { warnings: [warning] }),
        });
    },
  );

  app.get(
    '/oauth/clients',
    {
      preValidation: canRead,
      schema: {
        tags: ['admin'],
        summary: 'List OAuth clients',
        description: `Admins. Oldest first, all of them (at most ${MAX_OAUTH_CLIENTS}).`,
        response: { 200: Type.Object({ items: Type.Array(ClientSchema) }), ...errorResponses },
      },
    },
    async () => ({ items: (await clients.list()).map(clientView) }),
  );

  app.get(
    '/oauth/clients/:client_id',
    {
      preValidation: canRead,
      schema: {
        tags: ['admin'],
        summary: 'One OAuth client',
        description: 'Admins. 404 `CLIENT_NOT_FOUND` for an unknown id.',
        params: ClientIdParams,
        response: { 200: ClientSchema, 404: problemRef, ...errorResponses },
      },
    },
    async (request) => clientView(await clients.get(request.params.client_id)),
  );

  app.patch(
    '/oauth/clients/:client_id',
    {
      preValidation: canWrite,
      schema: {
        tags: ['admin'],
        summary: 'Disable or enable an OAuth client, or choose its ID tokens’ algorithm',
        description:
          'Admins. `{"disabled": true}` stops the client at once on every instance: it can no longer authenticate ' +
          '(`invalid_client`), get tokens or start a sign-in, its `client_credentials` tokens fail on their next use, ' +
          'and every session holding its tokens ends. `{"disabled": false}` lets it work again (ended sessions stay ' +
          'ended); its registration, secret and remembered consents were kept. Audited (`oauth_client_disabled`, ' +
          '`oauth_client_enabled`); repeating the current state changes nothing. ' +
          '`{"id_token_signed_response_alg": "RS256"}` signs its next ID tokens so (audited `oauth_client_updated`; ' +
          '`null` goes back to the default, which follows JWT_ALG); ' +
          'those already issued keep verifying. With both members the algorithm changes first. 404 `CLIENT_NOT_FOUND`.',
        params: ClientIdParams,
        body: Type.Object(
          {
            disabled: Type.Optional(Type.Boolean()),
            id_token_signed_response_alg: Type.Optional(
              Type.Union([
                idTokenAlgorithm,
                Type.Null({ description: 'None chosen: the default, which follows JWT_ALG' }),
              ]),
            ),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: ClientSchema, 404: problemRef, ...errorResponses },
      },
    },
    async (request) => {
      const { client_id: clientId } = request.params;
      const { disabled, id_token_signed_response_alg: algorithm } = request.body;
      const actor = { actorId: authOf(request).user.id, client: clientInfo(request) };
      // Two changes, each in its own transaction: a request that fails between them has changed the
      // algorithm only, and repeating it (both are idempotent) finishes the job.
      let client =
        algorithm === undefined ? undefined : await clients.setIdTokenAlgorithm(clientId, algorithm, actor);
      if (disabled !== undefined) client = await clients.setDisabled(clientId, disabled, actor);
      return clientView(client ?? (await clients.get(clientId)));
    },
  );

  app.delete(
    '/oauth/clients/:client_id',
    {
      preValidation: canWrite,
      schema: {
        tags: ['admin'],
        summary: 'Remove an OAuth client',
        description:
          'Admins. The client can no longer authenticate or start a sign-in. 404 `CLIENT_NOT_FOUND`.',
        params: ClientIdParams,
        response: { 204: NoBody(), 404: problemRef, ...errorResponses },
      },
    },
    async (request, reply) => {
      await clients.remove(request.params.client_id, {
        actorId: authOf(request).user.id,
        client: clientInfo(request),
      });
      return reply.code(204).send();
    },
  );
}
