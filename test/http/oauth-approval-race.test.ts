import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import {
  authorizationResponse,
  authorizeUrl,
  exchangeCode,
  locationOf,
  PUBLIC_URL,
  pkce,
  REDIRECT,
} from '../support/oauth-provider.js';

/**
 * Race review 2026-12-06 P1: `/authorize` checked the browser session in its guard and wrote the
 * code in a later transaction that never looked again. A remedy of the owner's that committed in
 * between ("log out everywhere", a password change, a disconnect) found no code to delete, and
 * the app exchanged the code written after it for a new session with a 30-day refresh token. A
 * thief with a stolen cookie looping silent `prompt=none` visits undid the owner's remedy.
 */
describe.each(engines)("an approval straddling the owner's remedy ($name)", ({ name }) => {
  let app: FastifyInstance;
  let client: OAuthClient;
  let drop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, databaseUrl: database.url });
    client = (
      await gatehouseCore(app.gatehouse).oauthClients.create(
        { name: 'Race', redirectUris: [REDIRECT] },
        { actorId: null },
      )
    ).client;
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  const remedies = {
    'log out everywhere': (token: string) =>
      app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(token) }),
    'disconnect the app': (token: string) =>
      app.inject({
        method: 'DELETE',
        url: `/users/me/connected-apps/${client.clientId}`,
        headers: bearer(token),
      }),
  } as const;

  for (const [remedy, run] of Object.entries(remedies)) {
    it(`a silent approval held past "${remedy}" writes no code`, async () => {
      const user = await createUser(app);
      const { access_token: ownerToken } = await login(app, user.email);
      const thief = new Browser(app);
      expect((await thief.login(user.email)).statusCode).toBe(204);
      // Consent remembered: later visits are approved without a page.
      await authorizationResponse(app, thief, client, pkce().challenge);
      const server = gatehouseCore(app.gatehouse).authorizationServer;
      const approve = server.approve;
      let entered: () => void = () => {};
      const inApprove = new Promise<void>((resolve) => {
        entered = resolve;
      });
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      server.approve = async (...args) => {
        entered();
        await held;
        return approve.apply(server, args);
      };
      const { verifier, challenge } = pkce();
      let answer: URL;
      try {
        const visiting = thief.request(
          'GET',
          authorizeUrl({
            response_type: 'code',
            client_id: client.clientId,
            redirect_uri: REDIRECT,
            scope: 'openid profile email',
            state: 'st',
            code_challenge: challenge,
            code_challenge_method: 'S256',
            prompt: 'none',
          }),
        );
        // The guard has passed; the code is not written yet.
        await inApprove;
        server.approve = approve;
        const out = await run(ownerToken);
        expect(out.statusCode, out.body).toBe(204);
        release();
        answer = locationOf(await visiting);
      } finally {
        server.approve = approve;
        release();
      }
      expect(answer.searchParams.get('error')).toBe('access_denied');
      const code = answer.searchParams.get('code');
      expect(code).toBeNull();
      if (code !== null) {
        const exchanged = await exchangeCode(app, client, code, verifier);
        expect(exchanged.statusCode, exchanged.body).toBe(400);
      }
    });
  }
});
