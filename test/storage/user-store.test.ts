import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserStore, type UserRecord, type UserStore } from '../../src/storage/user-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

function newUser(email: string, overrides: Partial<UserRecord> = {}): UserRecord {
  return {
    id: randomUUID(),
    email,
    emailKey: email.toLowerCase(),
    fullName: null,
    passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$x$y',
    role: 'user',
    isActive: true,
    emailVerified: false,
    createdAt: 1_000,
    updatedAt: 1_000,
    credentialsVersion: 0,
    ...overrides,
  };
}

describe.each(engines)('UserStore on $name', ({ name }) => {
  let test: TestDatabase;
  let store: UserStore;

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createUserStore(test.database.db);
  });
  afterAll(async () => test.dispose());

  it('inserts and finds by id and email key', async () => {
    const user = newUser('Find.Me@Example.com', { fullName: 'Find Me' });
    expect(await store.insertUser(user)).toEqual({ ok: true });
    expect(await store.findUserById(user.id)).toEqual(user);
    expect(await store.findUserByEmailKey('find.me@example.com')).toEqual(user);
    expect(await store.findUserById(randomUUID())).toBeUndefined();
  });

  it('keeps exactly one row when 50 inserts race for one email', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.insertUser(newUser(i % 2 ? 'RACE@example.com' : 'race@example.com')),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'email_taken')).toHaveLength(49);
    const { total } = await store.listUsers({ limit: 10, offset: 0, emailPrefix: 'race@' });
    expect(total).toBe(1);
  });

  it('updates, lists with filters, counts super admins and deletes', async () => {
    const admin = newUser('boss@list.example', { role: 'super_admin', createdAt: 2_000 });
    const other = newUser('b_c%@list.example', { createdAt: 3_000 });
    await store.insertUser(admin);
    await store.insertUser(other);
    const updated = await store.updateUser(other.id, { fullName: 'Other', isActive: false }, 5_000);
    expect(updated).toMatchObject({ fullName: 'Other', isActive: false, updatedAt: 5_000 });
    expect(await store.updateUser(randomUUID(), { fullName: 'x' }, 5_000)).toBeUndefined();
    // LIKE wildcards in the prefix match literally.
    expect(
      (await store.listUsers({ limit: 10, offset: 0, emailPrefix: 'b_c%' })).items.map((u) => u.id),
    ).toEqual([other.id]);
    expect((await store.listUsers({ limit: 10, offset: 0, emailPrefix: 'b%' })).total).toBe(0);
    expect(
      (await store.listUsers({ limit: 10, offset: 0, role: 'super_admin' })).items.map((u) => u.id),
    ).toContain(admin.id);
    expect((await store.listUsers({ limit: 10, offset: 0, isActive: false })).items.map((u) => u.id)).toEqual(
      [other.id],
    );
    expect(await store.countActiveSuperAdmins()).toBe(1);
    expect(await store.deleteUser(other.id)).toBe(true);
    expect(await store.deleteUser(other.id)).toBe(false);
  });
});
