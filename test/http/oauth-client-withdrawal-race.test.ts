import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, type SignedIn, signIn } from '../support/accounts.js';
import { Browser } from '../support/cookie-browser.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';
import {
  authorizationAnswer,
  authorizationResponse,
  exchangeCode,
  locationOf,
  PUBLIC_URL,
  pkce,
  REDIRECT,
} from '../support/oauth-provider.js';

/**
 * Red-team 2026-12j R1/R2: an admin disables or removes an app while the app exchanges a code.
 * The exchange authenticates the client before its transaction, and nothing in that transaction
 * met the client's row (`sessions.client_id` has no foreign key), so on PostgreSQL a session
 * committed after the disable had ended the client's sessions: its tokens worked, and after a
 * re-enable its refresh token too ("ended sessions stay ended" was false). A removal racing it
 * deadlocked (40P01 → 503) about one time in four. The exchange now holds the client's row
 * (`FOR SHARE`) before it spends the code.
 */
describe.each(engines)('a client withdrawn while its code is exchanged ($name)', ({ name }) => {
  let app: FastifyInstance;
  let drop: () => Promise<void> = async () => {};
  let admin: SignedIn;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    app = await buildTestServer({ publicUrl: PUBLIC_URL, issuer: PUBLIC_URL, databaseUrl: database.url });
    admin = await signIn(app, 'admin');
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });

  /** A new app, and a code of a new account for it. */
  const freshCode = async () => {
    const core = gatehouseCore(app.gatehouse);
    const client: OAuthClient = (
      await core.oauthClients.create({ name: 'Racer', redirectUris: [REDIRECT] }, { actorId: null })
    ).client;
    const user = await createUser(app);
    const browser = new Browser(app);
    expect((await browser.login(user.email)).statusCode).toBe(204);
    const { verifier, challenge } = pkce();
    const location = await authorizationResponse(app, browser, client, challenge);
    const code = String(location.searchParams.get('code'));
    return { client, user, exchange: () => exchangeCode(app, client, code, verifier) };
  };

  const liveAppSessions = async (userId: string, clientId: string) =>
    (await gatehouseCore(app.gatehouse).sessionStore.listLiveSessions(userId, Date.now())).filter(
      (session) => session.clientId === clientId,
    );

  it('refuses the exchange when the disable committed after the client authenticated', async () => {
    const { client, user, exchange } = await freshCode();
    const clients = gatehouseCore(app.gatehouse).oauthClients;
    const authenticate = clients.authenticate;
    // The disable lands exactly between the client's authentication and the exchange's transaction.
    clients.authenticate = async (clientId, secret) => {
      const result = await authenticate(clientId, secret);
      await clients.setDisabled(client.clientId, true, { actorId: null });
      return result;
    };
    try {
      const answer = await exchange();
      // The disable deleted the unexchanged code (400 invalid_grant); had the code survived, the
      // exchange's hold on the client refuses it (401 invalid_client). Never a session.
      expect([400, 401], answer.body).toContain(answer.statusCode);
    } finally {
      clients.authenticate = authenticate;
    }
    expect(await liveAppSessions(user.id, client.clientId)).toEqual([]);
  });

  it('a code approved before a disable does not sign anyone in after a quick re-enable', async () => {
    const { client, user, exchange } = await freshCode();
    const clients = gatehouseCore(app.gatehouse).oauthClients;
    await clients.setDisabled(client.clientId, true, { actorId: null });
    await clients.setDisabled(client.clientId, false, { actorId: null });
    const answer = await exchange();
    expect(answer.statusCode, answer.body).toBe(400);
    expect(answer.json()).toMatchObject({ error: 'invalid_grant' });
    expect(await liveAppSessions(user.id, client.clientId)).toEqual([]);
  });

  it('the same after a removal: no session of the removed client starts', async () => {
    const { client, user, exchange } = await freshCode();
    const clients = gatehouseCore(app.gatehouse).oauthClients;
    const authenticate = clients.authenticate;
    clients.authenticate = async (clientId, secret) => {
      const result = await authenticate(clientId, secret);
      await clients.remove(client.clientId, { actorId: null });
      return result;
    };
    try {
      const answer = await exchange();
      // The removal's cascade took the code, or the exchange met the missing client: refused either way.
      expect([400, 401], answer.body).toContain(answer.statusCode);
    } finally {
      clients.authenticate = authenticate;
    }
    expect(await liveAppSessions(user.id, client.clientId)).toEqual([]);
  });

  // Truly concurrent on PostgreSQL (the pool's connections); SQLite's writes are serial.
  it.runIf(name === 'postgres')(
    'an exchange and a disable or removal fired together: no session outlives the disable, no deadlock',
    async () => {
      const survivors: string[] = [];
      const conflicts: string[] = [];
      for (let round = 0; round < 24; round++) {
        const { client, user, exchange } = await freshCode();
        const removal = round % 2 === 1;
        const withdraw = async () => {
          await new Promise((resolve) => setTimeout(resolve, round % 4));
          return app.inject(
            removal
              ? { method: 'DELETE', url: `/oauth/clients/${client.clientId}`, headers: admin.headers }
              : {
                  method: 'PATCH',
                  url: `/oauth/clients/${client.clientId}`,
                  headers: admin.headers,
                  payload: { disabled: true },
                },
          );
        };
        const [exchanged, withdrawn] = await Promise.all([exchange(), withdraw()]);
        for (const answer of [exchanged, withdrawn]) {
          if (answer.statusCode === 503) conflicts.push(`${round}: ${answer.body}`);
        }
        expect(withdrawn.statusCode, withdrawn.body).toBe(removal ? 204 : 200);
        if ((await liveAppSessions(user.id, client.clientId)).length > 0) survivors.push(`round ${round}`);
        if (exchanged.statusCode === 200) {
          const { access_token: accessToken } = exchanged.json<{ access_token: string }>();
          const info = await app.inject({ method: 'GET', url: '/userinfo', headers: bearer(accessToken) });
          if (info.statusCode === 200) survivors.push(`round ${round}: its token still works`);
        }
      }
      expect(survivors).toEqual([]);
      expect(conflicts).toEqual([]);
    },
  );

  it.runIf(name === 'postgres')(
    'a sign-in approved while its client is disabled leaves no code a re-enable would bring back',
    async () => {
      const clients = gatehouseCore(app.gatehouse).oauthClients;
      const revived: string[] = [];
      for (let round = 0; round < 16; round++) {
        const client: OAuthClient = (
          await clients.create({ name: 'Approver', redirectUris: [REDIRECT] }, { actorId: null })
        ).client;
        const user = await createUser(app);
        const browser = new Browser(app);
        expect((await browser.login(user.email)).statusCode).toBe(204);
        const { verifier, challenge } = pkce();
        const [approved] = await Promise.all([
          authorizationAnswer(app, browser, client, challenge),
          (async () => {
            await new Promise((resolve) => setTimeout(resolve, round % 4));
            await clients.setDisabled(client.clientId, true, { actorId: null });
          })(),
        ]);
        await clients.setDisabled(client.clientId, false, { actorId: null });
        const code = approved.statusCode === 303 ? locationOf(approved).searchParams.get('code') : null;
        if (code !== null) {
          const answer = await exchangeCode(app, client, code, verifier);
          if (answer.statusCode === 200) revived.push(`round ${round}`);
        }
      }
      expect(revived).toEqual([]);
    },
  );
});
