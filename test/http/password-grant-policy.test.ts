import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { generateTotpCode } from '../../src/mfa/totp.js';
import { MFA_OTP_GRANT_TYPE } from '../../src/sessions/token-grants.js';
import { buildTestServer } from '../../src/testing.js';
import { createUser, PASSWORD, postToken } from '../support/accounts.js';

// Issue 15: RFC 9700 §2.4 says the password grant MUST NOT be used; Gatehouse keeps it only for
// its first-party clients, never for registered ones, and PASSWORD_GRANT=false turns it off.
describe('the password grant’s policy', () => {
  describe('with PASSWORD_GRANT on (the default)', () => {
    let app: FastifyInstance;
    beforeAll(async () => {
      app = await buildTestServer({}, { webUi: false });
    });
    afterAll(async () => app.close());

    it('refuses a registered client before checking the password (unauthorized_client), audits no login', async () => {
      const user = await createUser(app);
      const { client } = await gatehouseCore(app.gatehouse).oauthClients.create(
        { name: 'SPA', redirectUris: ['https://spa.example/cb'] },
        { actorId: null },
      );
      for (const password of [PASSWORD, 'wrong password entirely']) {
        const response = await postToken(app, {
          grant_type: 'password',
          username: user.email,
          password,
          client_id: client.clientId,
        });
        expect(response.statusCode).toBe(400);
        expect(response.headers['cache-control']).toBe('no-store');
        expect(response.json()).toMatchObject({ error: 'unauthorized_client' });
      }
      const audit = await gatehouseCore(app.gatehouse).audit.list({
        limit: 10,
        offset: 0,
        targetId: user.id,
      });
      expect(audit.items.filter((e) => e.event === 'login_succeeded')).toEqual([]);
    });

    it('still serves first-party clients and undeclared client ids, and advertises the grant', async () => {
      const user = await createUser(app);
      const extras: Record<string, string>[] = [{}, { client_id: 'my-script' }];
      for (const extra of extras) {
        const response = await postToken(app, {
          grant_type: 'password',
          username: user.email,
          password: PASSWORD,
          ...extra,
        });
        expect(response.statusCode).toBe(200);
      }
      const metadata = await app.inject({ url: '/.well-known/oauth-authorization-server' });
      expect(metadata.json().grant_types_supported).toContain('password');
    });
  });

  describe('with PASSWORD_GRANT=false', () => {
    let app: FastifyInstance;
    beforeAll(async () => {
      app = await buildTestServer({ passwordGrant: false }, { webUi: false });
    });
    afterAll(async () => app.close());

    it('answers unsupported_grant_type to everyone, right password or not, and stops advertising it', async () => {
      const user = await createUser(app);
      const response = await postToken(app, {
        grant_type: 'password',
        username: user.email,
        password: PASSWORD,
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'unsupported_grant_type' });
      const metadata = await app.inject({ url: '/.well-known/oauth-authorization-server' });
      expect(metadata.json().grant_types_supported).toEqual([
        'authorization_code',
        'refresh_token',
        'client_credentials',
      ]);
    });

    it('also refuses the mfa-otp grant (its second half), even with a valid mfa_token and a right code', async () => {
      const core = gatehouseCore(app.gatehouse);
      const user = await createUser(app, { verified: true });
      // An enrolled account and an mfa_token as the password grant would have issued it before the
      // switch (the grant itself no longer issues any).
      const session = await core.sessions.startBearerSession(user.id, ['me'], { ip: null, userAgent: null });
      const { secret } = await core.mfa.startTotpEnrolment(user, session.session.id);
      await core.mfa.confirmTotp(user.id, session.session.id, generateTotpCode(secret, core.clock()), {
        actorId: user.id,
      });
      const mfaToken = core.mfa.issueChallenge({
        userId: user.id,
        scopes: ['me'],
        clientId: 'gatehouse',
        flow: 'token',
        deviceId: undefined,
        credentialsVersion: 0,
      });
      const response = await postToken(app, {
        grant_type: MFA_OTP_GRANT_TYPE,
        mfa_token: mfaToken,
        otp: generateTotpCode(secret, core.clock() + 30_000),
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'unsupported_grant_type' });
      expect(await core.sessions.listSessions(user.id)).toHaveLength(1);
    });
  });
});
