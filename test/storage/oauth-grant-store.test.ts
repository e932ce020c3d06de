import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOAuthClientStore } from '../../src/storage/oauth-client-store.js';
import { createOAuthGrantStore, type OAuthGrantStore } from '../../src/storage/oauth-grant-store.js';
import { createSessionStore } from '../../src/storage/session-store.js';
import { createUserStore } from '../../src/storage/user-store.js';
import { addTestUser, createTestDatabase, engines, type TestDatabase } from '../support/databases.js';
import { gate, someoneWaitsOnALock } from '../support/lock-waits.js';

describe.each(engines)('OAuthGrantStore on $name', ({ name }) => {
  let test: TestDatabase;
  let store: OAuthGrantStore;
  const clientId = `client-${randomUUID()}`;
  const secondClientId = `client-${randomUUID()}`;

  const addUser = () => addTestUser(test.database.db);

  const code = (userId: string, overrides: { codeHash?: string; expiresAt?: number } = {}) => ({
    codeHash: overrides.codeHash ?? randomUUID(),
    clientId,
    userId,
    redirectUri: 'https://app.example/cb',
    redirectUriGiven: true,
    scopes: ['openid', 'email'],
    codeChallenge: 'c'.repeat(43),
    nonce: 'n',
    authTime: 1_000,
    amr: ['pwd', 'otp'],
    createdAt: 1_000,
    expiresAt: overrides.expiresAt ?? 61_000,
  });

  /** One cap for the account and for each client: the account-wide rule alone decides. */
  const caps = (max: number) => ({ perClient: max, perAccount: max });

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createOAuthGrantStore(test.database.db);
    for (const id of [clientId, secondClientId]) {
      await createOAuthClientStore(test.database.db).insertClient({
        clientId: id,
        name: 'App',
        secretHash: null,
        redirectUris: ['https://app.example/cb'],
        postLogoutRedirectUris: [],
        grantTypes: ['authorization_code'],
        scopes: ['openid', 'email'],
        createdAt: 0,
        disabledAt: null,
        idTokenSignedResponseAlg: null,
      });
    }
  });
  afterAll(async () => test.dispose());

  it('stores a code, spends it exactly once under a race, and records a replay', async () => {
    const userId = await addUser();
    const record = code(userId);
    await store.insertCode(record);
    expect(await store.findCode(record.codeHash)).toEqual({
      ...record,
      usedAt: null,
      sessionId: null,
      approvedBySession: null,
    });
    expect(await store.countLiveCodes(userId, 2_000)).toBe(1);
    expect(await store.countLiveCodes(userId, 61_000)).toBe(0);
    const spent = await Promise.all([
      store.spendCode(record.codeHash, 5_000),
      store.spendCode(record.codeHash, 5_000),
    ]);
    expect(spent.filter(Boolean)).toHaveLength(1);
    // The replay comes before the first exchange attached its session: the exchange sees it.
    expect(await store.markReplayed(record.codeHash, 6_000)).toBeNull();
    expect(await store.attachSession(record.codeHash, 'session-1')).toBe(true);
    expect(await store.markReplayed(record.codeHash, 7_000)).toBe('session-1');
    const other = code(userId);
    await store.insertCode(other);
    expect(await store.attachSession(other.codeHash, 'session-2')).toBe(false);
  });

  it('keeps the per-account cap exactly, even when 25 approvals race: the newest displace the oldest', async () => {
    const userId = await addUser();
    const other = await addUser();
    // An expired code does not count; another account's codes do not count.
    await store.insertCode(code(userId, { expiresAt: 500 }));
    await store.insertCode(code(other));
    const added = await Promise.all(
      Array.from({ length: 25 }, () => store.insertCodeWithinCap(code(userId), caps(20))),
    );
    // Red-team 2026-12e J2: the newest code is never the one refused (a flood of codes nobody
    // exchanges refused the person's real sign-in); the oldest unexchanged one makes room.
    expect(added.filter((outcome) => outcome === 'inserted')).toHaveLength(25);
    expect(await store.countLiveCodes(userId, 1_000)).toBe(20);
    expect(await store.insertCodeWithinCap(code(other), caps(20))).toBe('inserted');
    expect(await store.countLiveCodes(other, 1_000)).toBe(2);
  });

  it('at the cap, displaces the oldest unexchanged code of the busiest client; refuses when all are spent', async () => {
    const userId = await addUser();
    const at = (ms: number, client = clientId) => ({
      ...code(userId),
      clientId: client,
      createdAt: ms,
      expiresAt: ms + 60_000,
    });
    const quiet = at(1_000, secondClientId);
    const busyOld = at(1_001);
    const busyNew = at(1_002);
    for (const record of [quiet, busyOld, busyNew])
      expect(await store.insertCodeWithinCap(record, caps(3))).toBe('inserted');
    // The quiet client's code is the oldest, but the busy client holds more: its oldest goes.
    const next = at(1_003, secondClientId);
    expect(await store.insertCodeWithinCap(next, caps(3))).toBe('inserted');
    expect(await store.findCode(busyOld.codeHash)).toBeUndefined();
    expect(await store.findCode(quiet.codeHash)).toBeDefined();
    expect(await store.findCode(next.codeHash)).toBeDefined();
    // Spent codes are kept for replay detection, never displaced: with all three spent, refused.
    for (const record of [quiet, busyNew, next])
      expect(await store.spendCode(record.codeHash, 1_004)).toBe(true);
    expect(await store.insertCodeWithinCap(at(1_005), caps(3))).toBe('capped');
    expect(await store.countLiveCodes(userId, 1_005)).toBe(3);
    // Once the live codes expire, the account may start sign-ins again.
    expect(await store.insertCodeWithinCap(at(70_000), caps(3))).toBe('inserted');
  });

  it('between equally busy clients, displaces the code that waited longest, whichever client holds it', async () => {
    for (const [older, newer] of [
      [clientId, secondClientId],
      [secondClientId, clientId],
    ] as const) {
      const userId = await addUser();
      const at = (ms: number, client: string) => ({ ...code(userId), clientId: client, createdAt: ms });
      const waited = at(1_000, older);
      const fresh = at(1_001, newer);
      for (const record of [waited, fresh])
        expect(await store.insertCodeWithinCap(record, caps(2))).toBe('inserted');
      // One code each: a tie, so the code that waited longest makes room.
      expect(await store.insertCodeWithinCap(at(1_002, newer), caps(2))).toBe('inserted');
      expect(await store.findCode(waited.codeHash)).toBeUndefined();
      expect(await store.findCode(fresh.codeHash)).toBeDefined();
    }
  });

  // Red-team 2026-12f K2: a client that exchanges every code fills its cap with spent codes.
  it('at a client’s own cap, displaces its oldest unexchanged code, and its spent codes refuse that client alone', async () => {
    const userId = await addUser();
    const within = { perClient: 2, perAccount: 10 };
    const at = (ms: number, client = clientId) => ({ ...code(userId), clientId: client, createdAt: ms });
    const theirs = at(1_000, secondClientId);
    const [first, second] = [at(1_001), at(1_002)];
    for (const record of [theirs, first, second])
      expect(await store.insertCodeWithinCap(record, within)).toBe('inserted');
    // The other client's code is older, yet only the client's own oldest makes room.
    const third = at(1_003);
    expect(await store.insertCodeWithinCap(third, within)).toBe('inserted');
    expect(await store.findCode(first.codeHash)).toBeUndefined();
    expect(await store.findCode(theirs.codeHash)).toBeDefined();
    // Every live code of the client exchanged: its next is refused, another client's is not.
    for (const record of [second, third]) expect(await store.spendCode(record.codeHash, 1_004)).toBe(true);
    expect(await store.insertCodeWithinCap(at(1_005), within)).toBe('capped');
    expect(await store.insertCodeWithinCap(at(1_005, secondClientId), within)).toBe('inserted');
    // The spent codes stay for replay detection.
    expect((await store.findCode(second.codeHash))?.usedAt).toBe(1_004);
    expect((await store.findCode(third.codeHash))?.usedAt).toBe(1_004);
  });

  // RFC 9700 §4.5: a spent code must stay so that its replay revokes what it produced.
  it('never displaces a code that an exchange spends while the displacement picks it', async () => {
    const userId = await addUser();
    const [older, newer] = [
      { ...code(userId), createdAt: 1_000 },
      { ...code(userId), createdAt: 1_001 },
    ];
    for (const record of [older, newer])
      expect(await store.insertCodeWithinCap(record, caps(2))).toBe('inserted');
    // An exchange spends the oldest code and holds its transaction open.
    const hold = gate();
    const spent = gate();
    const exchange = test.database.transaction(async (trx) => {
      expect(await createOAuthGrantStore(trx).spendCode(older.codeHash, 1_002)).toBe(true);
      spent.open();
      await hold.opened;
    });
    await spent.opened;
    // Meanwhile a new code needs room. On PostgreSQL it reads `older` as unexchanged and its DELETE
    // waits for the exchange's row; on SQLite it waits for the exchange's transaction.
    const next = { ...code(userId), createdAt: 1_003 };
    const inserted = store.insertCodeWithinCap(next, caps(2));
    await someoneWaitsOnALock(test.database, inserted);
    hold.open();
    await exchange;
    expect(await inserted).toBe('inserted');
    expect((await store.findCode(older.codeHash))?.usedAt).toBe(1_002);
    expect(await store.findCode(newer.codeHash)).toBeUndefined();
    expect(await store.countLiveCodes(userId, 1_003)).toBe(2);
  });

  it("joins the caller's transaction when it runs inside one", async () => {
    const userId = await addUser();
    await expect(
      test.database.transaction(async (trx) => {
        expect(await createOAuthGrantStore(trx).insertCodeWithinCap(code(userId), caps(1))).toBe('inserted');
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await store.countLiveCodes(userId, 1_000)).toBe(0);
  });

  it('sweeps expired codes only', async () => {
    const userId = await addUser();
    const old = code(userId, { expiresAt: 10 });
    const live = code(userId, { expiresAt: 10_000_000 });
    await store.insertCode(old);
    await store.insertCode(live);
    expect(await store.deleteExpiredCodes(1_000_000)).toBeGreaterThanOrEqual(1);
    expect(await store.findCode(old.codeHash)).toBeUndefined();
    expect(await store.findCode(live.codeHash)).toBeDefined();
  });

  it('saves, replaces, lists and deletes consent; rows go with the account', async () => {
    const userId = await addUser();
    expect(await store.findConsent(userId, clientId)).toBeUndefined();
    await store.saveConsent(userId, clientId, ['openid'], 1_000);
    await store.saveConsent(userId, clientId, ['openid', 'email'], 2_000);
    expect(await store.findConsent(userId, clientId)).toEqual(['openid', 'email']);
    expect(await store.listConsents(userId)).toEqual([
      { clientId, clientName: 'App', scopes: ['openid', 'email'], createdAt: 1_000, updatedAt: 2_000 },
    ]);
    expect(await store.deleteConsent(userId, clientId)).toBe(true);
    expect(await store.deleteConsent(userId, clientId)).toBe(false);
    await store.saveConsent(userId, clientId, ['openid'], 3_000);
    await store.insertCode(code(userId));
    await createUserStore(test.database.db).deleteUser(userId);
    expect(await store.listConsents(userId)).toEqual([]);
    expect(await store.countLiveCodes(userId, 0)).toBe(0);
  });

  it("finds a client's live sessions, with or without refresh tokens", async () => {
    const userId = await addUser();
    const sessions = createSessionStore(test.database.db);
    const session = (id: string, client: string) => ({
      id,
      userId,
      transport: 'bearer' as const,
      scopes: ['openid'],
      createdAt: 0,
      lastUsedAt: 0,
      expiresAt: 10_000_000_000_000,
      revokedAt: null,
      userAgent: null,
      ip: null,
      clientId: client,
    });
    const [mine, noRefresh, firstParty, ended] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await sessions.insertSession(session(mine, clientId));
    // An app registered without the refresh_token grant: its session holds no refresh token.
    await sessions.insertSession(session(noRefresh, clientId));
    await sessions.insertSession(session(firstParty, 'gatehouse'));
    await sessions.insertSession(session(ended, clientId));
    await sessions.insertRefreshToken(`h-${mine}-1`, mine, 0, 10_000_000_000_000, clientId);
    await sessions.insertRefreshToken(`h-${mine}-2`, mine, 0, 10_000_000_000_000, clientId);
    await sessions.insertRefreshToken(`h-${firstParty}`, firstParty, 0, 10_000_000_000_000, 'gatehouse');
    await sessions.insertRefreshToken(`h-${ended}`, ended, 0, 10_000_000_000_000, clientId);
    await sessions.revokeSessions([ended], 1);
    expect((await store.sessionsOfClient(clientId, userId)).sort()).toEqual([mine, noRefresh].sort());
    expect(await store.sessionsOfClient(clientId)).toEqual(expect.arrayContaining([mine, noRefresh]));
    expect(await store.sessionsOfClient(clientId, userId, 1)).toHaveLength(1);
    expect(await store.sessionsOfClient(clientId, randomUUID())).toEqual([]);
  });

  // Red-team 2026-12d I2: a code an app holds back must not start a session after the person cut
  // the app off (disconnect) or ended every session.
  it('deletes the unexchanged codes of one client and account; spent codes and others stay', async () => {
    const userId = await addUser();
    const someoneElse = await addUser();
    const [pending, spent, theirs] = [code(userId), code(userId), code(someoneElse)];
    for (const record of [pending, spent, theirs]) await store.insertCode(record);
    expect(await store.spendCode(spent.codeHash, 2_000)).toBe(true);
    expect(await store.deleteUnexchangedCodes(userId, `client-${randomUUID()}`)).toBe(0);
    expect(await store.deleteUnexchangedCodes(userId, clientId)).toBe(1);
    expect(await store.findCode(pending.codeHash)).toBeUndefined();
    // Kept for replay detection until it expires.
    expect((await store.findCode(spent.codeHash))?.usedAt).toBe(2_000);
    expect(await store.findCode(theirs.codeHash)).toBeDefined();
  });

  it("revoking a user's sessions deletes the user's unexchanged codes too", async () => {
    const userId = await addUser();
    const someoneElse = await addUser();
    const [pending, spent, theirs] = [code(userId), code(userId), code(someoneElse)];
    for (const record of [pending, spent, theirs]) await store.insertCode(record);
    expect(await store.spendCode(spent.codeHash, 2_000)).toBe(true);
    await createSessionStore(test.database.db).revokeUserSessions(userId, 3_000);
    expect(await store.findCode(pending.codeHash)).toBeUndefined();
    expect(await store.findCode(spent.codeHash)).toBeDefined();
    expect(await store.findCode(theirs.codeHash)).toBeDefined();
  });
});
