import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { createSessionStore } from '../../src/storage/session-store.js';
import { buildTestServer } from '../../src/testing.js';
import { bearer, createUser, login, postToken } from '../support/accounts.js';

// Review of dd334eb (revoke-all replacing SECRET_KEY under a running instance): the superseded
// instance refused every token it had signed, and went on signing new ones. `POST /token` answered
// 200 with an access token that no instance accepts (its own cut-off is infinite, the others have
// another key), spending the client's refresh token on it: a client behind a load balancer that
// does not read /readyz looped refresh → 401 → refresh. Apps' tokens (a Dicery seat) the same.
describe('an instance whose SECRET_KEY revoke-all replaced', () => {
  let app: FastifyInstance;
  let email: string;
  let refreshToken: string;
  beforeAll(async () => {
    app = await buildTestServer();
    email = (await createUser(app)).email;
    refreshToken = (await login(app, email)).refresh_token;
    const core = gatehouseCore(app.gatehouse);
    // What revoke-all with another secret leaves in the database: another fingerprint, a cut-off.
    await core.database.db
      .updateTable('secret_key_check')
      .set({ fingerprint: 'another-secret' })
      .where('id', '=', 1)
      .execute();
    await createSessionStore(core.database.db).raiseRevocationCutoff(Math.ceil(Date.now() / 1000) * 1000);
    await core.revocations.reload();
    for (let i = 0; i < 500 && !core.secretSuperseded(); i += 1) await new Promise((r) => setTimeout(r, 10));
    if (!core.secretSuperseded()) throw new Error('the instance did not find its secret superseded');
  });
  afterAll(() => app.close());

  it('refuses /token with 503 temporarily_unavailable and Retry-After, and spends no refresh token', async () => {
    const password = await postToken(app, {
      grant_type: 'password',
      username: email,
      password: 'correct horse battery',
    });
    expect(password.statusCode).toBe(503);
    expect(password.headers['retry-after']).toBeDefined();
    expect(password.json()).toMatchObject({ error: 'temporarily_unavailable' });

    const refreshed = await postToken(app, { grant_type: 'refresh_token', refresh_token: refreshToken });
    expect(refreshed.statusCode).toBe(503);
    // The refresh token was not rotated: its family still has it unspent.
    const core = gatehouseCore(app.gatehouse);
    const { hashOpaqueToken } = await import('../../src/tokens/opaque-token.js');
    const row = await createSessionStore(core.database.db).findRefreshToken(hashOpaqueToken(refreshToken));
    expect(row).toMatchObject({ spentAt: null });
  });

  it('mints no app token (a Dicery seat would renew, be refused, and renew again)', async () => {
    const tokens = app.gatehouse.appTokens;
    await expect(
      tokens.sign(
        { typ: 'room+jwt', audience: 'dicery' },
        { sub: 'p', exp: Math.floor(Date.now() / 1000) + 60 },
      ),
    ).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect((await app.inject({ method: 'GET', url: '/users/me', headers: bearer('x') })).statusCode).toBe(
      401,
    );
  });
});
