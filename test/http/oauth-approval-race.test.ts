import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, form, login } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import { gate } from '../support/lock-waits.js';
import {
  authorizationResponse,
  authorizeUrl,
  exchangeCode,
  FORM,
  hiddenField,
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

  // The review of P1: the consent form's "remember" wrote the consent in its own transaction without
  // looking at the session, so a form posted before "disconnect" and "log out everywhere" listed the
  // app again, and later silent visits from the owner's browser were approved without a prompt.
  it('a consent form held past "disconnect" and "log out everywhere" remembers nothing', async () => {
    const user = await createUser(app);
    const { access_token: ownerToken } = await login(app, user.email);
    const thief = new Browser(app);
    expect((await thief.login(user.email)).statusCode).toBe(204);
    const page = await thief.request(
      'GET',
      authorizeUrl({
        response_type: 'code',
        client_id: client.clientId,
        redirect_uri: REDIRECT,
        scope: 'openid profile email',
        state: 'st',
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
      }),
    );
    expect(page.statusCode).toBe(200);
    const body: Record<string, string> = { decision: 'allow', remember: 'on' };
    for (const field of [
      'response_type',
      'client_id',
      'redirect_uri',
      'scope',
      'state',
      'code_challenge',
      'code_challenge_method',
      'csrf_token',
    ])
      body[field] = hiddenField(page.body, field);
    const server = gatehouseCore(app.gatehouse).authorizationServer;
    const approve = server.approve;
    const reached = gate();
    const held = gate();
    server.approve = async (...args) => {
      reached.open();
      await held.opened;
      return approve.apply(server, args);
    };
    try {
      const posting = app.inject({
        method: 'POST',
        url: '/authorize',
        headers: { ...FORM, cookie: thief.cookieHeader() },
        payload: form(body),
      });
      await reached.opened;
      server.approve = approve;
      await remedies['disconnect the app'](ownerToken);
      expect((await remedies['log out everywhere'](ownerToken)).statusCode).toBe(204);
      held.open();
      const answer = await posting;
      expect(String(answer.headers.location ?? '')).not.toMatch(/[?&]code=/);
    } finally {
      server.approve = approve;
      held.open();
    }
    const { access_token: fresh } = await login(app, user.email);
    const listed = await app.inject({
      method: 'GET',
      url: '/users/me/connected-apps',
      headers: bearer(fresh),
    });
    expect(listed.statusCode, listed.body).toBe(200);
    expect(listed.body).not.toContain(client.clientId);
  });
});
