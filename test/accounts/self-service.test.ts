import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLE_SCOPES } from '../../src/accounts/scopes.js';
import type { BrowserSignIn } from '../../src/accounts/self-service.js';
import type { AuditEntry } from '../../src/audit/audit-log.js';
import type { Caller } from '../../src/audit/record-committed.js';
import { createGatehouseCore } from '../../src/gatehouse.js';
import type { GatehouseCore } from '../../src/gatehouse-core.js';
import { createTestClock, testConfig } from '../../src/testing.js';

const PASSWORD = 'correct horse battery staple 7731';
const NEW_PASSWORD = 'an entirely new passphrase 5518';
const CALLER: Caller = {
  client: { ip: '198.51.100.9', userAgent: 'self-service-test/1.0' },
  onAuditLost: () => {},
};

/** The successful sign-in, or a failed expectation naming the refusal. */
function signedIn(result: BrowserSignIn) {
  if (!result.ok) throw new Error(`expected a session, got ${JSON.stringify(result)}`);
  return result;
}

/** Awaits `promise` and returns the error code it rejected with. */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return error instanceof Error && 'code' in error ? String(error.code) : 'no code';
  }
}

describe('SelfService (no HTTP)', () => {
  let gatehouse: GatehouseCore;

  beforeAll(async () => {
    gatehouse = await createGatehouseCore(testConfig(), { clock: createTestClock() });
  });
  afterAll(async () => gatehouse?.close());

  const uniqueEmail = () => `self-${randomUUID().slice(0, 8)}@example.test`;

  async function auditOf(userId: string) {
    const page = await gatehouse.audit.list({ limit: 100, offset: 0, targetId: userId });
    return page.items.map((item) => ({ event: item.event, details: item.details }));
  }

  it('registers an account and audits it; a lost entry is reported, the account kept', async () => {
    const user = await gatehouse.selfService.register({ email: uniqueEmail(), password: PASSWORD }, CALLER);
    expect(await auditOf(user.id)).toEqual([{ event: 'user_registered', details: null }]);

    const lost: AuditEntry[] = [];
    const record = gatehouse.audit.record;
    gatehouse.audit.record = () => Promise.reject(new Error('audit store down'));
    try {
      const other = await gatehouse.selfService.register(
        { email: uniqueEmail(), password: PASSWORD },
        { ...CALLER, onAuditLost: (_error, entry) => void lost.push(entry) },
      );
      expect(await gatehouse.users.findUserById(other.id)).toMatchObject({ id: other.id });
    } finally {
      gatehouse.audit.record = record;
    }
    expect(lost.map((entry) => entry.event)).toEqual(['user_registered']);
  });

  it('signs a browser in with every scope of the role, ending the session it had (no fixation)', async () => {
    const email = uniqueEmail();
    const user = await gatehouse.selfService.register({ email, password: PASSWORD }, CALLER);
    const first = signedIn(await gatehouse.selfService.signIn({ email, password: PASSWORD }, CALLER));
    expect(first.session.transport).toBe('cookie');
    expect(first.session.scopes).toEqual([...ROLE_SCOPES.user]);
    expect((await gatehouse.sessions.verifyCookieToken(first.cookieToken)).ok).toBe(true);

    const second = signedIn(
      await gatehouse.selfService.signIn(
        { email, password: PASSWORD, deviceToken: first.deviceToken, previousSessionId: first.session.id },
        CALLER,
      ),
    );
    // A revoked cookie session is no longer found at all.
    expect((await gatehouse.sessions.verifyCookieToken(first.cookieToken)).ok).toBe(false);
    expect((await gatehouse.sessions.listSessions(user.id)).map((session) => session.id)).toEqual([
      second.session.id,
    ]);
    expect((await auditOf(user.id)).filter((entry) => entry.event === 'login_succeeded')).toHaveLength(2);
  });

  it('refuses a disabled account only after the right password, audited, and starts nothing', async () => {
    const email = uniqueEmail();
    const user = await gatehouse.selfService.register({ email, password: PASSWORD }, CALLER);
    expect(
      await gatehouse.selfService.signIn({ email, password: 'not the password at all' }, CALLER),
    ).toEqual({
      ok: false,
      reason: 'invalid_credentials',
    });
    await gatehouse.accounts.applyUserChange(user.id, { isActive: false });
    expect(await gatehouse.selfService.signIn({ email, password: PASSWORD }, CALLER)).toEqual({
      ok: false,
      reason: 'disabled',
    });
    expect(await gatehouse.sessions.listSessions(user.id)).toEqual([]);
    expect((await auditOf(user.id)).filter((entry) => entry.event === 'login_failed')).toEqual([
      { event: 'login_failed', details: { reason: 'disabled', via: 'cookie' } },
    ]);
  });

  it('changes the password against the stored hash, keeps only the current session, and audits it', async () => {
    const email = uniqueEmail();
    const user = await gatehouse.selfService.register({ email, password: PASSWORD }, CALLER);
    const here = signedIn(await gatehouse.selfService.signIn({ email, password: PASSWORD }, CALLER));
    const elsewhere = signedIn(await gatehouse.selfService.signIn({ email, password: PASSWORD }, CALLER));

    const changed = await gatehouse.selfService.changeProfile(
      user.id,
      { password: NEW_PASSWORD, currentPassword: PASSWORD, fullName: '  Ada  Lovelace ' },
      here.session.id,
      CALLER,
    );
    expect(changed.fullName).toBe('Ada Lovelace');
    expect((await gatehouse.sessions.verifyCookieToken(here.cookieToken)).ok).toBe(true);
    // A revoked cookie session is no longer found at all.
    expect((await gatehouse.sessions.verifyCookieToken(elsewhere.cookieToken)).ok).toBe(false);
    // The old password is judged against the hash read now, not the one the caller had.
    expect(
      await codeOf(
        gatehouse.selfService.changeProfile(
          user.id,
          { password: 'yet another passphrase 9034', currentPassword: PASSWORD },
          here.session.id,
          CALLER,
        ),
      ),
    ).toBe('INVALID_CURRENT_PASSWORD');
    expect((await auditOf(user.id)).filter((entry) => entry.event === 'password_changed')).toHaveLength(1);

    // A name change alone audits nothing.
    await gatehouse.selfService.changeProfile(user.id, { fullName: null }, here.session.id, CALLER);
    expect((await auditOf(user.id)).filter((entry) => entry.event === 'password_changed')).toHaveLength(1);
    expect(
      await codeOf(
        gatehouse.selfService.changeProfile(randomUUID(), { fullName: 'x' }, here.session.id, CALLER),
      ),
    ).toBe('USER_NOT_FOUND');
  });

  it("lists one's sessions marking the current one, and ends only one's own", async () => {
    const email = uniqueEmail();
    const user = await gatehouse.selfService.register({ email, password: PASSWORD }, CALLER);
    const a = signedIn(await gatehouse.selfService.signIn({ email, password: PASSWORD }, CALLER));
    const b = signedIn(await gatehouse.selfService.signIn({ email, password: PASSWORD }, CALLER));
    const otherEmail = uniqueEmail();
    await gatehouse.selfService.register({ email: otherEmail, password: PASSWORD }, CALLER);
    const stranger = signedIn(
      await gatehouse.selfService.signIn({ email: otherEmail, password: PASSWORD }, CALLER),
    );

    const listed = await gatehouse.selfService.listSessions(user.id, a.session.id);
    expect(
      listed.map(({ id, current }) => ({ id, current })).sort((x, y) => x.id.localeCompare(y.id)),
    ).toEqual(
      [
        { id: a.session.id, current: true },
        { id: b.session.id, current: false },
      ].sort((x, y) => x.id.localeCompare(y.id)),
    );

    // Someone else's, a missing and an ended session all answer alike.
    expect(await codeOf(gatehouse.selfService.endSession(user.id, stranger.session.id, CALLER))).toBe(
      'SESSION_NOT_FOUND',
    );
    expect((await gatehouse.sessions.verifyCookieToken(stranger.cookieToken)).ok).toBe(true);
    expect(await codeOf(gatehouse.selfService.endSession(user.id, randomUUID(), CALLER))).toBe(
      'SESSION_NOT_FOUND',
    );
    await gatehouse.selfService.endSession(user.id, b.session.id, CALLER);
    // A revoked cookie session is no longer found at all.
    expect((await gatehouse.sessions.verifyCookieToken(b.cookieToken)).ok).toBe(false);
    expect(await codeOf(gatehouse.selfService.endSession(user.id, b.session.id, CALLER))).toBe(
      'SESSION_NOT_FOUND',
    );
    expect((await auditOf(user.id)).filter((entry) => entry.event === 'session_revoked')).toEqual([
      { event: 'session_revoked', details: { session: b.session.id } },
    ]);
  });

  it('signs out one session or all of them, audited', async () => {
    const email = uniqueEmail();
    const user = await gatehouse.selfService.register({ email, password: PASSWORD }, CALLER);
    const a = signedIn(await gatehouse.selfService.signIn({ email, password: PASSWORD }, CALLER));
    const b = signedIn(await gatehouse.selfService.signIn({ email, password: PASSWORD }, CALLER));
    const c = signedIn(await gatehouse.selfService.signIn({ email, password: PASSWORD }, CALLER));
    await gatehouse.selfService.signOut(user.id, a.session.id, CALLER);
    // A revoked cookie session is no longer found at all.
    expect((await gatehouse.sessions.verifyCookieToken(a.cookieToken)).ok).toBe(false);
    expect((await gatehouse.sessions.verifyCookieToken(b.cookieToken)).ok).toBe(true);
    expect(await gatehouse.selfService.signOutEverywhere(user.id, CALLER)).toBe(2);
    // A revoked cookie session is no longer found at all.
    expect((await gatehouse.sessions.verifyCookieToken(c.cookieToken)).ok).toBe(false);
    const events = (await auditOf(user.id)).filter((entry) => entry.event.startsWith('logout'));
    expect(events).toEqual([
      { event: 'logout_all', details: { sessions: 2 } },
      { event: 'logout', details: { session: a.session.id } },
    ]);
  });
});
