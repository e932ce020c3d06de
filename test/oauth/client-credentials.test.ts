import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { CLIENT_CACHE_MAX_AGE_MS } from '../../src/oauth/live-clients.js';
import type { OAuthClient } from '../../src/oauth/oauth-clients.js';
import { ACCESS_TOKEN_TYP } from '../../src/sessions/session-manager.js';
import { buildTestServer, createTestClock, type TestClock } from '../../src/testing.js';
import { createUser, login } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

const CALLER = { client: { ip: '203.0.113.5', userAgent: null }, onAuditLost: () => {} };

/**
 * The client credentials grant's tokens (issue 15): a client token and a user token can never pass
 * as each other, even when signed by our own keys; and a removal reaches another instance that
 * missed the bus message within the live-client cache's age.
 */
describe.each(engines)('client_credentials tokens on $name', ({ name }) => {
  let first: FastifyInstance;
  let second: FastifyInstance;
  let clock: TestClock;
  let drop: () => Promise<void>;
  let client: OAuthClient;
  let sqliteFile: string;

  beforeAll(async () => {
    clock = createTestClock();
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    // Two instances of one installation: same database and secret, separate in-memory buses (as
    // when the Redis message of a removal is lost).
    sqliteFile = join(tmpdir(), `gh-cc-${randomUUID()}.db`);
    const shared = {
      databaseUrl: name === 'sqlite' ? `sqlite:${sqliteFile}` : database.url,
      secretKey: new Uint8Array(randomBytes(32)),
    };
    first = await buildTestServer(shared, { clock, scheduler: clock });
    second = await buildTestServer(shared, { clock, scheduler: clock });
    client = (
      await gatehouseCore(first.gatehouse).oauthClients.create(
        {
          name: 'Sync',
          confidential: true,
          grantTypes: ['client_credentials'],
          scopes: ['me', 'clothes:read'],
        },
        { actorId: null },
      )
    ).client;
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await drop?.();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${sqliteFile}${suffix}`, { force: true });
  });

  const issue = async (app: FastifyInstance, to: OAuthClient = client) => {
    const result = await gatehouseCore(app.gatehouse).clientCredentials.issue(to, undefined, CALLER);
    if (!result.ok) throw new Error(result.description);
    return result.token.accessToken;
  };

  it('verifies its own tokens on every instance of the installation', async () => {
    const token = await issue(first);
    for (const app of [first, second]) {
      const check = await gatehouseCore(app.gatehouse).clientCredentials.verify(token);
      expect(check).toMatchObject({
        ok: true,
        principal: { clientId: client.clientId, scopes: ['me', 'clothes:read'] },
      });
    }
  });

  it('refuses tokens signed by our own keys that are not client tokens', async () => {
    const core = gatehouseCore(first.gatehouse);
    const { clientCredentials, keyring, config } = core;
    const now = Math.floor(clock() / 1000);
    const claims = {
      sub: client.clientId,
      client_id: client.clientId,
      scope: 'me',
      aud: config.audience,
      iat: now,
      exp: now + 60,
      jti: randomUUID(),
    };
    // A session id makes it a user's token; a subject other than the client, someone else's.
    const withSession = await keyring.sign({ ...claims, sid: randomUUID() }, ACCESS_TOKEN_TYP);
    const otherSubject = await keyring.sign({ ...claims, sub: 'someone-else' }, ACCESS_TOKEN_TYP);
    const otherType = await keyring.sign(claims, 'JWT');
    const otherAudience = await keyring.sign({ ...claims, aud: 'another-api' }, ACCESS_TOKEN_TYP);
    for (const token of [withSession, otherSubject, otherType, otherAudience]) {
      expect(await clientCredentials.verify(token)).toEqual({ ok: false, reason: 'invalid' });
    }
    expect(clientCredentials.isClientToken(withSession)).toBe(false);
    // And the other way round: a user's token is no client token, and a client token no user's.
    const user = await createUser(first);
    const userToken = (await login(first, user.email)).access_token;
    expect(clientCredentials.isClientToken(userToken)).toBe(false);
    expect(await clientCredentials.verify(userToken)).toEqual({ ok: false, reason: 'invalid' });
    expect(await core.sessions.verifyAccessToken(await issue(first))).toMatchObject({ ok: false });
  });

  it('ends on an instance that missed the removal message within the cache age', async () => {
    const doomed = (
      await gatehouseCore(first.gatehouse).oauthClients.create(
        { name: 'Doomed', confidential: true, grantTypes: ['client_credentials'], scopes: ['me'] },
        { actorId: null },
      )
    ).client;
    const token = await issue(first, doomed);
    const onSecond = gatehouseCore(second.gatehouse).clientCredentials;
    expect(await onSecond.verify(token)).toMatchObject({ ok: true });
    await gatehouseCore(first.gatehouse).oauthClients.remove(doomed.clientId, { actorId: null });
    // The removing instance stops at once.
    expect(await gatehouseCore(first.gatehouse).clientCredentials.verify(token)).toEqual({
      ok: false,
      reason: 'client_removed',
    });
    // The other one heard nothing (separate buses) and trusts its cached look-up a while longer...
    clock.advance(CLIENT_CACHE_MAX_AGE_MS - 1);
    expect(onSecond.peek(token)).toMatchObject({ ok: true });
    // ...but never longer than the cache's age.
    clock.advance(1);
    expect(onSecond.peek(token)).toBeUndefined();
    expect(await onSecond.verify(token)).toEqual({ ok: false, reason: 'client_removed' });
  });
});
