import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSessionStore, type SessionRecord } from '../../src/storage/session-store.js';
import { createUserStore } from '../../src/storage/user-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';
import { gate, someoneWaitsOnALock } from '../support/lock-waits.js';

/**
 * Red-team 2026-12d I3: a sign-in re-reads the account's credentials version inside its session's
 * transaction; ending all the account's sessions moves it. These tests run the two transactions
 * against each other in both orders: on PostgreSQL (READ COMMITTED, real interleaving) the
 * revocation's `FOR UPDATE` on the user row and the sign-in's share of it order them; on SQLite a
 * transaction holds the one connection. The sign-in side here takes its share through the session
 * insert's foreign key (the older statement order); the service now takes it as its first
 * statement (`UserStore.lockCredentialsVersion`, test/sessions/login-transaction.test.ts), and the revocation
 * must order both the same way.
 */
describe.each(engines)('credentials version on $name', ({ name }) => {
  let test: TestDatabase;

  const newSession = (userId: string): SessionRecord => ({
    id: randomUUID(),
    userId,
    transport: 'bearer',
    scopes: ['me'],
    createdAt: 1_000,
    lastUsedAt: 1_000,
    expiresAt: 100_000,
    revokedAt: null,
    userAgent: null,
    ip: null,
    authTime: 1_000,
    amr: ['pwd'],
  });

  /** Ends all of `userId`'s sessions in a transaction held open after its work until `hold` opens. */
  const heldRevocation = async (userId: string) => {
    const hold = gate();
    let revoked = false;
    const revoke = test.database.db.transaction().execute(async (trx) => {
      await createSessionStore(trx).revokeUserSessions(userId, 2_000);
      revoked = true;
      await hold.opened;
    });
    while (!revoked) await new Promise((resolve) => setImmediate(resolve));
    return { hold, revoke };
  };

  const newAccount = async (): Promise<string> => {
    const id = randomUUID();
    const inserted = await createUserStore(test.database.db).insertUser({
      id,
      email: `${id}@example.test`,
      emailKey: `${id}@example.test`,
      fullName: null,
      passwordHash: 'h',
      role: 'user',
      isActive: true,
      emailVerified: true,
      createdAt: 0,
      updatedAt: 0,
    });
    expect(inserted).toEqual({ ok: true });
    return id;
  };

  beforeAll(async () => {
    test = await createTestDatabase(name);
  });
  afterAll(async () => test.dispose());

  it('starts at 0 and moves with each revocation of all sessions, in the caller’s transaction or one of its own', async () => {
    const { db } = test.database;
    const users = createUserStore(db);
    const userId = await newAccount();
    expect(await users.findCredentialsVersion(userId)).toBe(0);
    expect((await users.findUserById(userId))?.credentialsVersion).toBe(0);
    await createSessionStore(db).revokeUserSessions(userId, 2_000);
    expect(await users.findCredentialsVersion(userId)).toBe(1);
    await db.transaction().execute((trx) => createSessionStore(trx).revokeUserSessions(userId, 3_000));
    expect(await users.findCredentialsVersion(userId)).toBe(2);
    // Rolled back with the caller's transaction: nothing ended, nothing moved.
    await expect(
      db.transaction().execute(async (trx) => {
        await createSessionStore(trx).revokeUserSessions(userId, 4_000);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await users.findCredentialsVersion(userId)).toBe(2);
    expect(await users.findCredentialsVersion(randomUUID())).toBeUndefined();
    // A login's own writes (a hash upgrade, a profile change) do not move it.
    expect(await users.replacePasswordHash(userId, 'h', 'h2', 5_000)).toBe(true);
    await users.updateUser(userId, { fullName: 'New Name' }, 5_000);
    expect(await users.findCredentialsVersion(userId)).toBe(2);
  });

  it('lockCredentialsVersion (a sign-in’s first statement) waits for a revocation of all sessions, then reads the moved version', async () => {
    const { db } = test.database;
    const userId = await newAccount();
    expect(await createUserStore(db).lockCredentialsVersion(userId, 'key share')).toBe(0);
    expect(await createUserStore(db).lockCredentialsVersion(randomUUID(), 'key share')).toBeUndefined();
    const { hold, revoke } = await heldRevocation(userId);
    const signIn = db
      .transaction()
      .execute((trx) => createUserStore(trx).lockCredentialsVersion(userId, 'key share'));
    await someoneWaitsOnALock(test.database, signIn);
    hold.open();
    await revoke;
    expect(await signIn).toBe(1);
  });

  it('a sign-in whose session is inserted before all sessions are ended commits first, and its session is ended', async () => {
    const { db } = test.database;
    const userId = await newAccount();
    const session = newSession(userId);
    const hold = gate();
    let seen: number | undefined;
    // The sign-in's transaction: the insert, the re-read (still the version it was decided on),
    // then held open as a slow commit would be.
    const signIn = db.transaction().execute(async (trx) => {
      await createSessionStore(trx).insertSession(session);
      seen = await createUserStore(trx).findCredentialsVersion(userId);
      await hold.opened;
    });
    while (seen === undefined) await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toBe(0);
    // The owner ends every session meanwhile (its own transaction).
    const revoke = createSessionStore(db).revokeUserSessions(userId, 2_000);
    await someoneWaitsOnALock(test.database, revoke);
    hold.open();
    await signIn;
    const revoked = await revoke;
    // Before the fix (no FOR UPDATE on PostgreSQL): the revocation ran past the uncommitted
    // session, which then committed live.
    expect(revoked.map((row) => row.id)).toContain(session.id);
    expect((await createSessionStore(db).findSession(session.id))?.revokedAt).toBe(2_000);
  });

  it('a sign-in whose session insert comes while all sessions are being ended reads the moved version', async () => {
    const { db } = test.database;
    const userId = await newAccount();
    // The owner's revocation, held open after its work (as a reset's transaction is, while it
    // writes its audit row and deletes the account's links).
    const { hold, revoke } = await heldRevocation(userId);
    // A sign-in decided on version 0 inserts its session and re-reads the version.
    const signIn = db.transaction().execute(async (trx) => {
      await createSessionStore(trx).insertSession(newSession(userId));
      return createUserStore(trx).findCredentialsVersion(userId);
    });
    await someoneWaitsOnALock(test.database, signIn);
    hold.open();
    await revoke;
    // Before the fix: 0 on PostgreSQL (the insert did not wait; the read saw the uncommitted
    // revocation's old value), and the session stayed live.
    expect(await signIn).toBe(1);
  });
});
