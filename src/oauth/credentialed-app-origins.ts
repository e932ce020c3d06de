import type { OAuthClient } from './oauth-clients.js';

/**
 * The origins of a client's redirect and post-logout redirect URIs that are in
 * CORS_CREDENTIALED_ORIGINS, in the order first met. Such an origin is trusted as a first-party
 * front end: it passes the Origin check of cookie requests and reads answers with the person's
 * session cookie (red-team 2026-12e J6). An OAuth client is a third-party app by definition, so
 * its origin there hands it the person's whole session API, past the scopes they consented to.
 * Settings origins are `URL.origin` strings (config-schema.ts), so an exact comparison is the
 * browser's own; a private-use scheme's URI has no origin (`null`) and never matches.
 */
export function credentialedAppOrigins(
  client: Pick<OAuthClient, 'redirectUris' | 'postLogoutRedirectUris'>,
  credentialedOrigins: readonly string[],
): string[] {
  const found = new Set<string>();
  for (const uri of [...client.redirectUris, ...client.postLogoutRedirectUris]) {
    const { origin } = new URL(uri);
    if (credentialedOrigins.includes(origin)) found.add(origin);
  }
  return [...found];
}

/** The operator's warning for {@link credentialedAppOrigins}' answer: what is wrong and the fix. */
export function credentialedAppWarning(
  client: Pick<OAuthClient, 'clientId'>,
  origins: readonly string[],
): string {
  return (
    `OAuth client ${client.clientId} redirects to ${origins.join(', ')}, which CORS_CREDENTIALED_ORIGINS ` +
    "trusts as a first-party front end: that app can call the person's session API with their cookies, " +
    'past the scopes they consented to. Remove the origin from CORS_CREDENTIALED_ORIGINS unless the app is ' +
    'your own front end.'
  );
}
