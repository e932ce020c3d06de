import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSessionStore,
  type SessionRecord,
  type SessionStore,
} from '../../src/storage/session-store.js';
import { addTestUser, createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

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
    clientId: 'gatehouse',
    ...overrides,
  });

  const addUser = () => addTestUser(test.database.db);

  const liveIds = async (owner: string, now: number) =>
    (await store.listLiveSessions(owner, now)).map((session) => session.id).sort();

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createSessionStore(test.database.db);
    await addTestUser(test.database.db, userId);
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

  describe('the per-account session cap', () => {
    /** One cap for the account and for each client: the account-wide rule alone decides. */
    const caps = (max: number) => ({ perClient: max, perAccount: max });

    it('at a client’s share, ends that client’s least recently used session, however idle the others are', async () => {
      const owner = await addUser();
      const at = (ms: number, clientId: string) =>
        newSession({ userId: owner, clientId, createdAt: ms, lastUsedAt: ms });
      const browser = at(1_000, 'gatehouse');
      const [first, second] = [at(1_001, 'app'), at(1_002, 'app')];
      const within = { perClient: 2, perAccount: 10 };
      for (const session of [browser, first, second]) await store.insertSessionWithinCap(session, within);
      const third = at(1_003, 'app');
      const { displaced } = await store.insertSessionWithinCap(third, within);
      expect(displaced).toEqual([{ id: first.id, expiresAt: first.expiresAt, clientId: 'app' }]);
      expect(await liveIds(owner, 1_003)).toEqual([browser.id, second.id, third.id].sort());
    });

    it('at the cap, ends the least recently used session of the client holding the most, never the new one', async () => {
      const owner = await addUser();
      const at = (ms: number, clientId: string, lastUsedAt = ms) =>
        newSession({ userId: owner, clientId, createdAt: ms, lastUsedAt });
      // The person's browser is the oldest and idlest session; the app holds the most.
      const browser = at(1_000, 'gatehouse');
      const [appOld, appNew] = [at(1_001, 'app', 1_500), at(1_002, 'app', 1_100)];
      for (const session of [browser, appOld, appNew]) {
        expect(await store.insertSessionWithinCap(session, caps(3))).toEqual({
          replaced: [],
          displaced: [],
        });
      }
      const next = at(2_000, 'app');
      expect(await store.insertSessionWithinCap(next, caps(3))).toEqual({
        replaced: [],
        displaced: [{ id: appNew.id, expiresAt: appNew.expiresAt, clientId: 'app' }],
      });
      expect(await liveIds(owner, 2_000)).toEqual([browser.id, appOld.id, next.id].sort());
      // At a cap of one, a sign-in ends every other session and keeps itself.
      const only = at(3_000, 'gatehouse');
      const { displaced } = await store.insertSessionWithinCap(only, caps(1));
      expect(displaced.map((session) => session.id).sort()).toEqual([browser.id, appOld.id, next.id].sort());
      expect(await liveIds(owner, 3_000)).toEqual([only.id]);
    });

    it('revokes the session a sign-in replaces before counting, and ignores revoked and expired ones', async () => {
      const owner = await addUser();
      const old = newSession({ userId: owner, createdAt: 1_000, transport: 'cookie' });
      const expired = newSession({ userId: owner, createdAt: 1_000, expiresAt: 1_500 });
      const kept = newSession({ userId: owner, createdAt: 1_001 });
      for (const session of [old, expired, kept]) await store.insertSessionWithinCap(session, caps(10));
      const replacement = newSession({ userId: owner, createdAt: 2_000, transport: 'cookie' });
      expect(
        await store.insertSessionWithinCap(replacement, {
          ...caps(2),
          cookieTokenHash: 'h2',
          replaces: old.id,
        }),
      ).toEqual({ replaced: [{ id: old.id, expiresAt: old.expiresAt }], displaced: [] });
      expect(await liveIds(owner, 2_000)).toEqual([kept.id, replacement.id].sort());
      expect((await store.findSessionByCookieHash('h2'))?.id).toBe(replacement.id);
    });

    it('holds exactly at the cap when sign-ins race, and keeps every racing sign-in over older sessions', async () => {
      const owner = await addUser();
      const older = Array.from({ length: 5 }, (_, index) =>
        newSession({ userId: owner, createdAt: 1_000 + index }),
      );
      for (const session of older) await store.insertSessionWithinCap(session, caps(5));
      const racing = Array.from({ length: 4 }, () => newSession({ userId: owner, createdAt: 2_000 }));
      const admissions = await Promise.all(
        racing.map((session) => store.insertSessionWithinCap(session, caps(5))),
      );
      // Four sign-ins ended exactly four sessions between them, all of them older ones.
      const ended = admissions.flatMap(({ displaced }) => displaced.map((session) => session.id));
      expect(ended.sort()).toEqual(
        older
          .slice(0, 4)
          .map((session) => session.id)
          .sort(),
      );
      expect(await liveIds(owner, 2_000)).toEqual(
        [older[4]?.id, ...racing.map((session) => session.id)].sort(),
      );
      // More racing sign-ins than the cap: the account still ends with exactly the cap.
      await Promise.all(
        Array.from({ length: 12 }, () =>
          store.insertSessionWithinCap(newSession({ userId: owner, createdAt: 3_000 }), caps(5)),
        ),
      );
      expect(await liveIds(owner, 3_000)).toHaveLength(5);
    });
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

  // Red-team 2026-12g O4: a session ended by a cap (or any revocation) stayed until its own
  // expiry, up to SESSION_ABSOLUTE_TTL, with its tokens: one account's code exchanges piled up.
  it('O4: sweeps sessions revoked before revokedBefore with their tokens, keeps later revocations and live ones', async () => {
    const old = newSession({ expiresAt: 90_000_000 });
    const recent = newSession({ expiresAt: 90_000_000 });
    const live = newSession({ expiresAt: 90_000_000 });
    for (const s of [old, recent, live]) await store.insertSession(s);
    await store.insertRefreshToken(`revoked-old-${old.id}`, old.id, 1_000, 90_000_000);
    await store.revokeSessions([old.id], 2_000_000);
    await store.revokeSessions([recent.id], 4_000_000);
    expect(await store.deleteExpired(3_000_000, 3_000_000)).toBeGreaterThanOrEqual(1);
    expect(await store.findSession(old.id)).toBeUndefined();
    expect((await store.spendRefreshToken(`revoked-old-${old.id}`, 3_000_000)).status).toBe('unknown');
    expect(await store.findSession(recent.id)).toMatchObject({ revokedAt: 4_000_000 });
    expect(await store.findSession(live.id)).toEqual(live);
    // Without revokedBefore, revoked sessions wait for their expiry as before.
    await store.deleteExpired(5_000_000);
    expect(await store.findSession(recent.id)).toBeDefined();
  });

  it('keeps one revocation cut-off: 0 until raised, raised only upwards, alone or in a transaction', async () => {
    // Its own database: the cut-off is one row for the whole database.
    const own = await createTestDatabase(name);
    try {
      const cutoffs = createSessionStore(own.database.db);
      expect(await cutoffs.readRevocationCutoff()).toBe(0);
      expect(await cutoffs.raiseRevocationCutoff(5_000_000)).toBe(5_000_000);
      expect(await cutoffs.raiseRevocationCutoff(4_000_000)).toBe(5_000_000);
      expect(await cutoffs.readRevocationCutoff()).toBe(5_000_000);
      const raised = await own.database.transaction((trx) =>
        createSessionStore(trx).raiseRevocationCutoff(7_000_000_000_000),
      );
      expect(raised).toBe(7_000_000_000_000);
      expect(await cutoffs.readRevocationCutoff()).toBe(7_000_000_000_000);
      const rows = await own.database.db.selectFrom('revocation_cutoff').selectAll().execute();
      expect(rows).toHaveLength(1);
    } finally {
      await own.dispose();
    }
  });
});
