import type { OAuthClient } from './oauth-clients.js';

/**
 * A client as the admin API and `gatehouse clients` print it, with RFC 7591 §2 member names where
 * one exists (never the secret, which exists in clear only in the registration's answer).
 */
export function clientView(client: OAuthClient) {
  return {
    client_id: client.clientId,
    name: client.name,
    client_type: client.type,
    redirect_uris: client.redirectUris,
    post_logout_redirect_uris: client.postLogoutRedirectUris,
    grant_types: client.grantTypes,
    scopes: client.scopes,
    token_endpoint_auth_method:
      client.type === 'public' ? ('none' as const) : ('client_secret_basic' as const),
    created_at: new Date(client.createdAt).toISOString(),
    disabled: client.disabled,
    id_token_signed_response_alg: client.idTokenSignedResponseAlg,
  };
}
