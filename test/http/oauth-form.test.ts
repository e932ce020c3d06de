import type { FastifyInstance } from 'fastify';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { form } from '../support/accounts.js';
import { injectFetch } from '../support/inject-fetch.js';

const PUBLIC_URL = 'https://auth.example.test';
const CHALLENGE = 'Basic realm="gatehouse"';

/**
 * RFC 6749 §5.2: `invalid_client` is 401 with a challenge in the scheme the client used when it
 * tried the `Authorization` header; RFC 9110 §15.5.2: every 401 carries a challenge. A client that
 * authenticated in the form, or not at all, gets the error as a 400, so client libraries that read
 * a 401's challenge instead of its body (oauth4webapi) still report `invalid_client` (red-team
 * 2026-12n S4).
 */
describe('invalid_client on /token, /revoke and /introspect', () => {
  let app: FastifyInstance;
  let confidential: { id: string; secret: string };
  let publicId: string;
  let address = 0;

  beforeAll(async () => {
    app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL });
    const clients = gatehouseCore(app.gatehouse).oauthClients;
    const created = await clients.create(
      { name: 'API', confidential: true, grantTypes: ['client_credentials'], scopes: ['me'] },
      { actorId: null },
    );
    confidential = { id: created.client.clientId, secret: String(created.clientSecret) };
    publicId = (
      await clients.create({ name: 'SPA', redirectUris: ['https://app.example/cb'] }, { actorId: null })
    ).client.clientId;
  });
  afterAll(async () => app?.close());

  const ENDPOINTS = {
    '/token': { grant_type: 'client_credentials' },
    '/revoke': { token: 'not-a-token' },
    '/introspect': { token: 'not-a-token' },
  } as const;
  const basic = (id: string, secret: string) =>
    `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  /** Each attempt from its own address: failed client authentications are limited per address. */
  const post = (url: keyof typeof ENDPOINTS, params: Record<string, string>, authorization?: string) => {
    address += 1;
    return app.inject({
      method: 'POST',
      url,
      remoteAddress: `198.51.100.${address}`,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(authorization === undefined ? {} : { authorization }),
      },
      payload: form({ ...ENDPOINTS[url], ...params }),
    });
  };

  describe.each(Object.keys(ENDPOINTS) as Array<keyof typeof ENDPOINTS>)('%s', (url) => {
    it.each([
      ['client_secret_basic with a wrong secret', () => post(url, {}, basic(confidential.id, 'nope'))],
      ['malformed HTTP Basic credentials', () => post(url, {}, 'Basic !!!')],
      ['another scheme in Authorization', () => post(url, { client_id: confidential.id }, 'Bearer x')],
    ])('401 with the Basic challenge after %s', async (_case, send) => {
      const response = await send();
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ error: 'invalid_client' });
      expect(response.headers['www-authenticate']).toBe(CHALLENGE);
      expect(response.headers['cache-control']).toBe('no-store');
    });

    it.each([
      [
        'client_secret_post with a wrong secret',
        () => post(url, { client_id: confidential.id, client_secret: 'nope' }),
      ],
      [
        'client_secret_post from an unknown client',
        () => post(url, { client_id: 'who', client_secret: 'nope' }),
      ],
      ['a confidential client without its secret', () => post(url, { client_id: confidential.id })],
    ])('400 without a challenge after %s', async (_case, send) => {
      const response = await send();
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_client' });
      expect(response.headers['www-authenticate']).toBeUndefined();
      expect(response.headers['cache-control']).toBe('no-store');
    });
  });

  it('refuses a public client where only confidential ones may go (client_credentials, introspection) with a 400', async () => {
    for (const url of ['/token', '/introspect'] as const) {
      const response = await post(url, { client_id: publicId });
      expect([url, response.statusCode, response.json().error, response.headers['www-authenticate']]).toEqual(
        [url, 400, 'invalid_client', undefined],
      );
    }
  });

  it('oauth4webapi reports invalid_client to a client_secret_post client, and the challenge to a Basic one', async () => {
    const as = { issuer: PUBLIC_URL, revocation_endpoint: `${PUBLIC_URL}/revoke` };
    const revokeWith = async (authentication: oauth.ClientAuth) =>
      oauth.processRevocationResponse(
        await oauth.revocationRequest(as, { client_id: confidential.id }, authentication, 'x', {
          [oauth.customFetch]: injectFetch(app),
        }),
      );
    await expect(revokeWith(oauth.ClientSecretPost('nope'))).rejects.toMatchObject({
      error: 'invalid_client',
      status: 400,
    });
    const error: unknown = await revokeWith(oauth.ClientSecretBasic('nope')).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    const challenge = error as oauth.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(challenge.cause).toEqual([{ scheme: 'basic', parameters: { realm: 'gatehouse' } }]);
    expect(await challenge.response.json()).toMatchObject({ error: 'invalid_client' });
  });
});
