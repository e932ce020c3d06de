import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/accounts/roles.js';
import { ROLE_SCOPES } from '../../src/accounts/scopes.js';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import type { Caller } from '../../src/audit/record-committed.js';
import { createGatehouseCore } from '../../src/gatehouse.js';
import type { GatehouseCore } from '../../src/gatehouse-core.js';
import { createTokenGrants, type TokenGrant } from '../../src/sessions/token-grants.js';
import { createTestClock, type TestClock, testConfig } from '../../src/testing.js';

const PASSWORD = 'correct horse battery staple 7731';
const REUSE_INTERVAL = 10;

/** A caller that keeps the audit entries it was told were lost. */
function caller(lost: AuditEntry[] = []): Caller {
  return {
    client: { ip: '198.51.100.4', userAgent: 'grants-test/1.0' },
    onAuditLost: (_error, entry) => void lost.push(entry),
  };
}

/** The grant, or a failed expectation naming the refusal. */
function granted(grant: TokenGrant) {
  if (!grant.ok) throw new Error(`expected tokens, got ${JSON.stringify(grant)}`);
  return grant;
}

describe('TokenGrants (no HTTP)', () => {
  let gatehouse: GatehouseCore;
  let clock: TestClock;

  beforeAll(async () => {
    clock = createTestClock();
    gatehouse = await createGatehouseCore(testConfig({ refreshReuseInterval: REUSE_INTERVAL }), { clock });
  });
  afterAll(async () => gatehouse?.close());

  async function account(role: Role = 'user') {
    const email = `grants-${randomUUID().slice(0, 8)}@example.test`;
    const user = await gatehouse.accounts.register({ email, password: PASSWORD, role });
    return { email, user };
  }

  async function auditOf(userId: string) {
    const page = await gatehouse.audit.list({ limit: 100, offset: 0, targetId: userId });
    return page.items.map((item) => ({ event: item.event, details: item.details }));
  }

  it('refuses an unknown grant type and missing parameters with their RFC 6749 codes', async () => {
    const { exchange } = gatehouse.tokenGrants;
    expect(await exchange({ grantType: 'client_credentials', clientId: 'app' }, caller())).toEqual({
      ok: false,
      reason: 'error',
      error: 'unsupported_grant_type',
      description: 'The grant type "client_credentials" is not supported.',
    });
    expect(await exchange({ grantType: 'password', clientId: 'app', password: 'x' }, caller())).toMatchObject(
      {
        error: 'invalid_request',
        description: 'The username parameter is missing.',
      },
    );
    expect(
      await exchange({ grantType: 'password', clientId: 'app', username: 'a@b.c' }, caller()),
    ).toMatchObject({ error: 'invalid_request', description: 'The password parameter is missing.' });
    expect(await exchange({ grantType: 'refresh_token', clientId: 'app' }, caller())).toMatchObject({
      error: 'invalid_request',
      description: 'The refresh_token parameter is missing.',
    });
  });

  it('password grant: the role decides the scopes, and the login is audited', async () => {
    const { email, user } = await account();
    const all = granted(
      await gatehouse.tokenGrants.exchange(
        { grantType: 'password', clientId: 'cli', username: email, password: PASSWORD },
        caller(),
      ),
    );
    expect(all.tokens.session.scopes).toEqual([...ROLE_SCOPES.user]);
    expect(typeof all.deviceToken).toBe('string');
    expect(await gatehouse.sessions.verifyAccessToken(all.tokens.accessToken)).toMatchObject({
      ok: true,
      userId: user.id,
      sessionId: all.tokens.session.id,
    });

    const narrow = granted(
      await gatehouse.tokenGrants.exchange(
        { grantType: 'password', clientId: 'cli', username: email, password: PASSWORD, scope: 'me me' },
        caller(),
      ),
    );
    expect(narrow.tokens.session.scopes).toEqual(['me']);
    expect(await auditOf(user.id)).toEqual([
      { event: 'login_succeeded', details: { via: 'token', session: narrow.tokens.session.id } },
      { event: 'login_succeeded', details: { via: 'token', session: all.tokens.session.id } },
    ]);
  });

  it('password grant: a scope beyond the role or a malformed one starts no session', async () => {
    const { email, user } = await account();
    const ask = (scope: string) =>
      gatehouse.tokenGrants.exchange(
        { grantType: 'password', clientId: 'cli', username: email, password: PASSWORD, scope },
        caller(),
      );
    expect(await ask('me users:write')).toEqual({
      ok: false,
      reason: 'error',
      error: 'invalid_scope',
      description: 'Scope not allowed for this account: users:write.',
    });
    expect(await ask('me\\x')).toMatchObject({
      error: 'invalid_scope',
      description: 'The scope parameter is malformed.',
    });
    expect(await gatehouse.sessions.listSessions(user.id)).toEqual([]);
  });

  it('password grant: wrong password and disabled account are invalid_grant, told apart only after a right password', async () => {
    const { email, user } = await account();
    const wrong = await gatehouse.tokenGrants.exchange(
      { grantType: 'password', clientId: 'cli', username: email, password: 'not the password at all' },
      caller(),
    );
    expect(wrong).toMatchObject({ error: 'invalid_grant', description: 'Invalid username or password.' });
    await gatehouse.accounts.applyUserChange(user.id, { isActive: false });
    const disabled = await gatehouse.tokenGrants.exchange(
      { grantType: 'password', clientId: 'cli', username: email, password: PASSWORD },
      caller(),
    );
    expect(disabled).toMatchObject({ error: 'invalid_grant', description: 'The account is disabled.' });
    // Wrong passwords go to the hourly tally; the disabled account's attempt is a row of its own.
    expect(await auditOf(user.id)).toEqual([
      { event: 'login_failed', details: { reason: 'disabled', via: 'token' } },
    ]);
  });

  it('refresh grant: rotates, never widens the scope, and a late reuse is audited and refused', async () => {
    const { email } = await account('admin');
    const first = granted(
      await gatehouse.tokenGrants.exchange(
        { grantType: 'password', clientId: 'cli', username: email, password: PASSWORD, scope: 'me' },
        caller(),
      ),
    );
    const wider = await gatehouse.tokenGrants.exchange(
      {
        grantType: 'refresh_token',
        clientId: 'cli',
        refreshToken: first.tokens.refreshToken,
        scope: 'me users:read',
      },
      caller(),
    );
    expect(wider).toMatchObject({
      error: 'invalid_scope',
      description: 'Scope was not granted to this session: users:read.',
    });
    // The refused request left the token unspent.
    const second = granted(
      await gatehouse.tokenGrants.exchange(
        { grantType: 'refresh_token', clientId: 'cli', refreshToken: first.tokens.refreshToken },
        caller(),
      ),
    );
    expect(second.tokens.refreshToken).not.toBe(first.tokens.refreshToken);
    expect(second.deviceToken).toBeUndefined();

    clock.advance((REUSE_INTERVAL + 1) * 1000);
    const reused = await gatehouse.tokenGrants.exchange(
      { grantType: 'refresh_token', clientId: 'cli', refreshToken: first.tokens.refreshToken },
      caller(),
    );
    expect(reused).toMatchObject({
      error: 'invalid_grant',
      description: 'The refresh token is invalid, expired or already used.',
    });
    expect(await gatehouse.sessions.verifyAccessToken(second.tokens.accessToken)).toEqual({
      ok: false,
      reason: 'revoked',
    });
    const reuses = async () =>
      (await gatehouse.audit.list({ limit: 10, offset: 0, event: 'refresh_token_reused' })).items.filter(
        (item) => item.details?.session === second.tokens.session.id,
      );
    expect(await reuses()).toMatchObject([
      { userAgent: 'grants-test/1.0', details: { action: 'session revoked' } },
    ]);
    // The token coming back again, its session already ended: the alarm is recorded all the same.
    await gatehouse.tokenGrants.exchange(
      { grantType: 'refresh_token', clientId: 'cli', refreshToken: first.tokens.refreshToken },
      caller(),
    );
    expect((await reuses()).map((item) => item.details?.action).sort()).toEqual([
      'already ended',
      'session revoked',
    ]);
  });

  it('a successful login writes its audit entry in its own transaction, not through the after-commit log', async () => {
    const { email } = await account();
    const lost: AuditEntry[] = [];
    const grants = createTokenGrants({
      accounts: gatehouse.accounts,
      sessions: gatehouse.sessions,
      mfa: gatehouse.mfa,
      audit: { record: () => Promise.reject(new Error('audit store down')) },
    });
    const grant = await grants.exchange(
      { grantType: 'password', clientId: 'cli', username: email, password: PASSWORD },
      caller(lost),
    );
    expect(grant.ok).toBe(true);
    // The entry committed with the session (issue 10: one write transaction per login), so the
    // failing after-commit log never saw it and nothing was lost.
    expect(lost).toEqual([]);
    if (!grant.ok) return;
    const page = await gatehouse.audit.list({ limit: 10, offset: 0, event: 'login_succeeded' });
    expect(page.items.some((item) => item.details?.session === grant.tokens.session.id)).toBe(true);
  });

  it('revoke ends the session behind a token, ignores an unknown hint, and audits only a real revocation', async () => {
    const { email, user } = await account();
    const { tokens } = granted(
      await gatehouse.tokenGrants.exchange(
        { grantType: 'password', clientId: 'cli', username: email, password: PASSWORD },
        caller(),
      ),
    );
    await gatehouse.tokenGrants.revoke('not-a-token', { clientId: 'cli' }, caller());
    await gatehouse.tokenGrants.revoke(tokens.refreshToken, { hint: 'id_token', clientId: 'cli' }, caller());
    expect(await gatehouse.sessions.verifyAccessToken(tokens.accessToken)).toEqual({
      ok: false,
      reason: 'revoked',
    });
    const revoked = (await auditOf(user.id)).filter((entry) => entry.event === 'session_revoked');
    expect(revoked).toEqual([
      { event: 'session_revoked', details: { session: tokens.session.id, via: 'revoke' } },
    ]);
  });
});
