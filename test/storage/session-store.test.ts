import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSessionStore,
  type SessionRecord,
  type SessionStore,
} from '../../src/storage/session-store.js';
import { createUserStore } from '../../src/storage/user-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

describe.each(engines)('SessionStore on $name', ({ name }) => {
  let test: TestDatabase;
  let store: SessionStore;
  const userId = randomUUID();

  const newSession = (overrides: Partial<SessionRecord> = {}): SessionRecord => ({
    id: randomUUID(),
    userId,
    transport: 'bearer',
    scopes: ['me', 'clothes:read'],
    createdAt: 1_000,
    lastUsedAt: 1_000,
    expiresAt: 100_000,
    revokedAt: null,
    userAgent: 'test',
    ip: '127.0.0.1',
    authTime: 1_000,
    amr: ['pwd'],
    ...overrides,
  });

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createSessionStore(test.database.db);
    await createUserStore(test.database.db).insertUser({
      id: userId,
      email: 's@example.com',
      emailKey: 's@example.com',
      fullName: null,
      passwordHash: 'h',
      role: 'user',
      isActive: true,
      emailVerified: false,
      createdAt: 0,
      updatedAt: 0,
    });
  });
  afterAll(async () => test.dispose());

  it('stores sessions and finds them by id and cookie hash', async () => {
    const session = newSession({ transport: 'cookie' });
    await store.insertSession(session, 'cookie-hash-1');
    expect(await store.findSession(session.id)).toEqual(session);
    expect(await store.findSessionByCookieHash('cookie-hash-1')).toEqual(session);
    await store.touchSession(session.id, 2_000);
    expect((await store.findSession(session.id))?.lastUsedAt).toBe(2_000);
  });

  it('records a re-authentication on a live session only, and reads sessions without one as a password login', async () => {
    const session = newSession({ createdAt: 2_000, authTime: 2_000 });
    await store.insertSession(session);
    expect(await store.recordAuthentication(session.id, ['pwd', 'otp', 'mfa'], 5_000)).toBe(true);
    expect(await store.findSession(session.id)).toMatchObject({
      authTime: 5_000,
      amr: ['pwd', 'otp', 'mfa'],
    });
    await store.revokeSessions([session.id], 6_000);
    expect(await store.recordAuthentication(session.id, ['pwd'], 7_000)).toBe(false);
    expect(await store.recordAuthentication(randomUUID(), ['pwd'], 7_000)).toBe(false);
    // Rows written before migration 012b have neither column.
    const legacy = newSession({ createdAt: 3_000 });
    await store.insertSession(legacy);
    await test.database.db
      .updateTable('sessions')
      .set({ auth_time: null, amr: null })
      .where('id', '=', legacy.id)
      .execute();
    expect(await store.findSession(legacy.id)).toMatchObject({ authTime: 3_000, amr: ['pwd'] });
  });

  it('spends a refresh token exactly once under 20 concurrent attempts, then reports reuse', async () => {
    const session = newSession();
    await store.insertSession(session);
    await store.insertRefreshToken('refresh-1', session.id, 1_000, 50_000);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => store.spendRefreshToken('refresh-1', 2_000)),
    );
    expect(results.filter((r) => r.status === 'spent')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'reused')).toHaveLength(19);
    expect(await store.spendRefreshToken('never-issued', 2_000)).toEqual({ status: 'unknown' });
  });

  it('revokes sessions once and lists them for the revocation list', async () => {
    const a = newSession();
    const b = newSession();
    const expired = newSession({ expiresAt: 1_500 });
    for (const s of [a, b, expired]) await store.insertSession(s);
    expect(await store.revokeSessions([a.id], 3_000)).toEqual([{ id: a.id, expiresAt: a.expiresAt }]);
    expect(await store.revokeSessions([a.id], 3_001)).toEqual([]);
    const live = await store.listLiveSessions(userId, 3_000);
    expect(live.map((s) => s.id)).toContain(b.id);
    expect(live.map((s) => s.id)).not.toContain(a.id);
    const revokedNow = await store.revokeUserSessions(userId, 3_000, b.id);
    expect(revokedNow.map((s) => s.id)).not.toContain(b.id);
    const listed = await store.listRevokedSince(2_000, 3_000);
    expect(listed).toContainEqual({ id: a.id, expiresAt: a.expiresAt, revokedAt: 3_000 });
    expect(listed.map((s) => s.id)).not.toContain(expired.id);
    // Incremental: only revocations after the watermark.
    expect((await store.listRevokedSince(3_000, 3_000)).map((s) => s.id)).not.toContain(a.id);
  });

  it('finds live database-strategy access tokens only', async () => {
    const session = newSession();
    await store.insertSession(session);
    await store.insertAccessToken(
      'access-1',
      { sessionId: session.id, scopes: ['me'], expiresAt: 10_000 },
      1_000,
    );
    expect(await store.findAccessToken('access-1', 5_000)).toEqual({
      sessionId: session.id,
      userId,
      scopes: ['me'],
      expiresAt: 10_000,
    });
    expect(await store.findAccessToken('access-1', 10_000)).toBeUndefined();
    await store.revokeSessions([session.id], 6_000);
    expect(await store.findAccessToken('access-1', 7_000)).toBeUndefined();
  });

  it('sweeps expired sessions and tokens, and keeps live ones', async () => {
    // Its own rows: the test must not rely on what earlier tests left behind.
    const expired = newSession({ expiresAt: 5_000_000 });
    const live = newSession({ expiresAt: 20_000_000 });
    for (const s of [expired, live]) await store.insertSession(s);
    await store.insertRefreshToken(`sweep-expired-${expired.id}`, expired.id, 1_000, 5_000_000);
    await store.insertRefreshToken(`sweep-live-${live.id}`, live.id, 1_000, 20_000_000);
    await store.insertAccessToken(
      `sweep-access-${expired.id}`,
      { sessionId: expired.id, scopes: ['me'], expiresAt: 5_000_000 },
      1_000,
    );
    expect(await store.deleteExpired(10_000_000)).toBeGreaterThanOrEqual(3);
    expect(await store.findSession(expired.id)).toBeUndefined();
    expect(await store.findSession(live.id)).toEqual(live);
    expect((await store.spendRefreshToken(`sweep-expired-${expired.id}`, 10_000_000)).status).toBe('unknown');
    expect((await store.spendRefreshToken(`sweep-live-${live.id}`, 10_000_000)).status).toBe('spent');
  });
});
