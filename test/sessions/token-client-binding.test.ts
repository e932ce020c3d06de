import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatehouseCore } from '../../src/gatehouse.js';
import type { GatehouseCore } from '../../src/gatehouse-core.js';
import { FIRST_PARTY_CLIENT_ID, type RefreshResult } from '../../src/sessions/session-manager.js';
import { testConfig } from '../../src/testing.js';
import { hashOpaqueToken } from '../../src/tokens/opaque-token.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

const client = { userAgent: 'test', ip: '127.0.0.1' };

// Refresh and opaque access tokens record the client they were issued to (migration 009), so a
// refresh keeps RFC 9068 `client_id` right and RFC 7009 revocation can tell clients apart.
describe.each(engines)('token client binding on $name', ({ name }) => {
  let jwt: GatehouseCore;
  let opaque: GatehouseCore;
  const drops: (() => Promise<void>)[] = [];
  const open = async (tokenStrategy: 'jwt' | 'database') => {
    const { url, drop } = await createTestDatabaseUrl(name);
    drops.push(drop);
    return createGatehouseCore(testConfig({ databaseUrl: url, tokenStrategy }));
  };
  beforeAll(async () => {
    jwt = await open('jwt');
    opaque = await open('database');
  });
  afterAll(async () => {
    await jwt.close();
    await opaque.close();
    for (const drop of drops) await drop();
  });

  let counter = 0;
  const start = async (core: GatehouseCore, clientId?: string) => {
    counter += 1;
    const user = await core.accounts.register({
      email: `binding${counter}.${name}@example.com`,
      password: 'correct horse battery',
    });
    return core.sessions.startBearerSession(user.id, ['me'], client, clientId);
  };
  const tokensOf = (result: RefreshResult) => {
    if (!result.ok) throw new Error(`refresh failed: ${result.reason}`);
    return result.tokens;
  };

  it('a refresh keeps the client_id of the client that obtained the token, and records it on the successor', async () => {
    const first = await start(jwt, 'cli-app');
    const second = tokensOf(await jwt.sessions.refresh(first.refreshToken, [], 'cli-app'));
    expect(decodeJwt(second.accessToken).client_id).toBe('cli-app');
    const row = await jwt.sessionStore.findRefreshToken(hashOpaqueToken(second.refreshToken));
    expect(row?.clientId).toBe('cli-app');
  });

  it("refuses another client's refresh token (RFC 6749 §10.4) and leaves it usable by its own client", async () => {
    const first = await start(jwt, 'cli-app');
    expect(await jwt.sessions.refresh(first.refreshToken, [], 'other-app')).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(await jwt.sessions.refresh(first.refreshToken, [], FIRST_PARTY_CLIENT_ID)).toMatchObject({
      ok: false,
    });
    expect((await jwt.sessions.refresh(first.refreshToken, [], 'cli-app')).ok).toBe(true);
  });

  it("leaves another client's refresh token alone on revocation (RFC 7009 §2.1), revokes its own", async () => {
    const tokens = await start(jwt, 'cli-app');
    const hint = 'refresh_token' as const;
    expect(await jwt.sessions.revokeToken(tokens.refreshToken, { hint, clientId: 'other-app' })).toEqual({
      revoked: false,
    });
    expect((await jwt.sessions.verifyAccessToken(tokens.accessToken)).ok).toBe(true);
    expect(await jwt.sessions.revokeToken(tokens.refreshToken, { hint, clientId: 'cli-app' })).toMatchObject({
      revoked: true,
      sessionId: tokens.session.id,
    });
  });

  it('records the client of opaque access tokens: only that client revokes them', async () => {
    const tokens = await start(opaque, 'cli-app');
    const row = await opaque.sessionStore.findAccessToken(hashOpaqueToken(tokens.accessToken), Date.now());
    expect(row?.clientId).toBe('cli-app');
    expect(await opaque.sessions.revokeToken(tokens.accessToken, { clientId: 'other-app' })).toEqual({
      revoked: false,
    });
    expect((await opaque.sessions.revokeToken(tokens.accessToken, { clientId: 'cli-app' })).revoked).toBe(
      true,
    );
  });

  it('treats refresh tokens stored before migration 009 (no client) as any client’s, as before', async () => {
    const first = await start(jwt);
    await jwt.database.db
      .updateTable('refresh_tokens')
      .set({ client_id: null })
      .where('token_hash', '=', hashOpaqueToken(first.refreshToken))
      .execute();
    const second = tokensOf(await jwt.sessions.refresh(first.refreshToken, [], 'late-app'));
    expect(decodeJwt(second.accessToken).client_id).toBe('late-app');
  });
});
