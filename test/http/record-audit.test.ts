import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { buildTestServer } from '../../src/testing.js';
import { form, login, PASSWORD, signIn, uniqueEmail } from '../support/accounts.js';

/**
 * Issue 9: a change that has committed never answers 5xx because a later step failed. Here the
 * audit log's after-the-fact writes fail (its table gone, a lost connection…): a sign-up that took
 * effect and a refused login still answer as they would, and the lost entry is logged. A password
 * change and "log out everywhere" write their entries in their own transactions (a failing write
 * rolls them back: test/http/audit-with-change.test.ts), so they do not go through this log.
 */
describe('audit writes after a committed change', () => {
  let app: FastifyInstance;
  const logged: string[] = [];

  beforeAll(async () => {
    app = await buildTestServer(
      {},
      { logger: { level: 'error', stream: { write: (line: string) => void logged.push(line) } } },
    );
    gatehouseCore(app.gatehouse).audit.record = async () => {
      throw new Error('audit store unavailable');
    };
  });
  afterAll(async () => app?.close());

  it('sign-up and a refused login still answer, the lost entries are logged; a password change and logout carry theirs', async () => {
    const email = uniqueEmail('audit');
    const registered = await app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email, password: PASSWORD },
    });
    expect(registered.statusCode).toBe(201);

    const tokens = await login(app, email);
    const headers = { authorization: `Bearer ${tokens.access_token}` };
    const changed = await app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers,
      payload: { password: 'a brand new passphrase 4417', current_password: PASSWORD },
    });
    expect(changed.statusCode).toBe(200);

    const other = await signIn(app);
    const logout = await app.inject({ method: 'POST', url: '/auth/logout-all', headers: other.headers });
    expect(logout.statusCode).toBe(204);
    // The logout took effect although its audit entry was lost.
    expect((await app.inject({ method: 'GET', url: '/users/me', headers: other.headers })).statusCode).toBe(
      401,
    );

    const failed = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ grant_type: 'password', username: email, password: 'not the right passphrase' }),
    });
    expect(failed.statusCode).toBe(400);

    const lost = logged.filter((line) => line.includes('audit entry lost'));
    expect(lost.some((line) => line.includes('"event":"user_registered"'))).toBe(true);
    expect(lost.some((line) => line.includes('"event":"login_failed"'))).toBe(true);
    // Written with their changes, not after them: nothing lost, both on record.
    expect(lost.some((line) => /"event":"(password_changed|logout_all)"/.test(line))).toBe(false);
    const core = gatehouseCore(app.gatehouse);
    for (const event of ['password_changed', 'logout_all'] as const) {
      expect((await core.audit.list({ event, limit: 10, offset: 0 })).total, event).toBe(1);
    }
  });
});
