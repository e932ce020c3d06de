import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';

/** The API identifier (`aud`) the provider issues tokens for, as Auth0 and Keycloak call it. */
export const API_AUDIENCE = 'https://api.gatehouse.test';
/** The service client allowed the client_credentials grant. */
export const CLIENT_ID = 'reporting-service';
const CLIENT_SECRET = 'a-long-enough-client-secret-for-tests-0123456789';

/** A signing key of the provider: the public and private JWK (with `kid`). */
export interface ProviderKey {
  readonly kid: string;
  readonly privateJwk: JWK;
  readonly privateKey: CryptoKey;
}

/** A real OpenID provider (oidc-provider 8) on a free loopback port, for resource-server tests. */
export interface ExternalProvider {
  readonly issuer: string;
  /** Requests to its key set (`/jwks`) so far. */
  jwksFetches(): number;
  /** An access token (RFC 9068 JWT, `typ: at+jwt`) from the client_credentials grant. */
  issueToken(options?: { scope?: string; resource?: string }): Promise<string>;
  /**
   * Restarts the provider with these signing keys (the first signs): how a deployment rotates
   * keys. The port, issuer and client stay.
   */
  useKeys(keys: readonly ProviderKey[]): void;
  close(): Promise<void>;
}

let kidCounter = 0;

/** A fresh ES256 key for {@link ExternalProvider.useKeys}. */
export async function createProviderKey(): Promise<ProviderKey> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  kidCounter += 1;
  const kid = `key-${kidCounter}-${Math.random().toString(36).slice(2, 8)}`;
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  return { kid, privateJwk, privateKey };
}

function buildProvider(issuer: string, keys: readonly ProviderKey[]): Provider {
  return new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: 'orders:read orders:write',
        // The provider holds ES256 keys only; the client's default (RS256) would have none.
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: keys.map((key) => key.privateJwk) },
    scopes: ['orders:read', 'orders:write'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API_AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => ({
          audience: resource,
          scope: 'orders:read orders:write',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
}

/** Starts the provider with `keys` (one fresh key when omitted). */
export async function startExternalProvider(keys?: readonly ProviderKey[]): Promise<ExternalProvider> {
  let handler: ((request: IncomingMessage, response: ServerResponse) => void) | undefined;
  let fetches = 0;
  const server: Server = createServer((request, response) => {
    if (request.url?.startsWith('/jwks')) fetches += 1;
    if (handler === undefined) {
      response.statusCode = 503;
      response.end();
      return;
    }
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const use = (current: readonly ProviderKey[]) => {
    handler = buildProvider(issuer, current).callback();
  };
  use(keys ?? [await createProviderKey()]);
  return {
    issuer,
    jwksFetches: () => fetches,
    async issueToken(options = {}) {
      const body = new URLSearchParams({
        grant_type: 'client_credentials',
        scope: options.scope ?? 'orders:read',
        resource: options.resource ?? API_AUDIENCE,
      });
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body,
      });
      const json = (await response.json()) as { access_token?: string; error?: string };
      if (json.access_token === undefined)
        throw new Error(`provider refused a token: ${JSON.stringify(json)}`);
      return json.access_token;
    },
    useKeys: use,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A server that accepts connections and never answers: a provider that hangs. `connections()`
 * counts the connections made to it.
 */
export async function startHangingServer(): Promise<{
  url: string;
  connections(): number;
  close(): Promise<void>;
}> {
  let connections = 0;
  const server = createServer(() => {
    // Never answers.
  });
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
