import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/audit-log.js';
import {
  type AuditRetentionStore,
  createAuditRetentionStore,
  LOGIN_FAILURE_WINDOW_MS,
} from '../../src/storage/audit-retention-store.js';
import { createAuditStore } from '../../src/storage/audit-store.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

const HOUR = LOGIN_FAILURE_WINDOW_MS;
const T0 = 1_800_000_000_000 - (1_800_000_000_000 % HOUR);

describe.each(engines)('AuditRetentionStore on $name', ({ name }) => {
  let test: TestDatabase;
  let store: AuditRetentionStore;

  beforeAll(async () => {
    test = await createTestDatabase(name);
    store = createAuditRetentionStore(test.database.db);
  });
  afterAll(async () => test.dispose());

  it('adds failures to one row per account and hour, also when they race', async () => {
    const account = randomUUID();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.recordLoginFailure(account, `10.0.0.${i}`, T0 + i * 1000)),
    );
    await store.recordLoginFailure(account, '10.0.1.1', T0 + HOUR + 5);
    await store.recordLoginFailure(null, '10.0.2.1', T0 + 7);
    const rows = await store.listLoginFailures({ subjectId: account, limit: 10 });
    expect(rows).toEqual([
      {
        subjectId: account,
        windowStart: T0 + HOUR,
        failures: 1,
        firstAt: T0 + HOUR + 5,
        lastAt: T0 + HOUR + 5,
        lastIp: '10.0.1.1',
      },
      expect.objectContaining({
        subjectId: account,
        windowStart: T0,
        failures: 20,
        firstAt: expect.any(Number),
      }),
    ]);
    expect(await store.listLoginFailures({ subjectId: null, limit: 10 })).toEqual([
      expect.objectContaining({ subjectId: null, windowStart: T0, failures: 1 }),
    ]);
  });

  it('deletes audit entries and tallies older than the cutoff, and keeps the rest', async () => {
    const account = randomUUID();
    let now = T0 + 10 * HOUR;
    const audit = createAuditLog(createAuditStore(test.database.db), () => now, store);
    await audit.record({ event: 'logout', actorId: account });
    await store.recordLoginFailure(account, null, now);
    now = T0 + 20 * HOUR;
    await audit.record({ event: 'logout_all', actorId: account });
    await store.recordLoginFailure(account, null, now);

    expect(await store.deleteBefore(T0 + 15 * HOUR)).toBeGreaterThanOrEqual(2);
    const left = await audit.list({ limit: 10, offset: 0, actorId: account });
    expect(left.items.map((item) => item.event)).toEqual(['logout_all']);
    expect(
      (await store.listLoginFailures({ subjectId: account, limit: 10 })).map((row) => row.windowStart),
    ).toEqual([T0 + 20 * HOUR]);
  });

  it('receives wrong-password entries from the audit log instead of one row each', async () => {
    const account = randomUUID();
    const audit = createAuditLog(createAuditStore(test.database.db), () => T0 + 30 * HOUR, store);
    for (let i = 0; i < 3; i++)
      await audit.record({
        event: 'login_failed',
        targetId: account,
        ip: '10.0.3.1',
        details: { reason: 'invalid_credentials' },
      });
    await audit.record({ event: 'login_failed', targetId: account, details: { reason: 'disabled' } });
    expect((await store.listLoginFailures({ subjectId: account, limit: 10 }))[0]?.failures).toBe(3);
    // A disabled account's right password is rare and telling: it stays an entry of its own.
    expect(
      (await audit.list({ limit: 10, offset: 0, targetId: account })).items.map((item) => item.details),
    ).toEqual([{ reason: 'disabled' }]);
  });

  // Race review 2026-12-06 P3: a logout on another device, or a wrong password being hashed, when
  // the account was deleted wrote its row with its IP after the deletion had stripped the rest.
  it('strips again the rows of accounts deleted since a time: what requests in flight wrote after the deletion', async () => {
    const gone = randomUUID();
    const earlier = randomUUID();
    const kept = randomUUID();
    let now = T0 + 40 * HOUR;
    const audit = createAuditLog(createAuditStore(test.database.db), () => now, store);
    await audit.record({ event: 'user_deleted', actorId: earlier, targetId: earlier });
    now = T0 + 43 * HOUR;
    await audit.record({ event: 'user_deleted', actorId: gone, targetId: gone });
    await store.forgetPersonalData(gone);
    // The stragglers, after the deletion's own pass.
    await audit.record({
      event: 'logout',
      actorId: gone,
      targetId: gone,
      ip: '10.0.4.1',
      userAgent: 'Phone/1.0',
    });
    await store.recordLoginFailure(gone, '10.0.4.2', now);
    await audit.record({ event: 'logout', actorId: earlier, ip: '10.0.4.3' });
    await audit.record({ event: 'logout', actorId: kept, ip: '10.0.4.4' });

    // At least this deletion: the database is shared with this file's other tests, in any order.
    expect(await store.forgetPersonalDataOfDeletedSince(T0 + 42 * HOUR)).toBeGreaterThanOrEqual(1);
    const rowsOf = async (actorId: string) =>
      (await audit.list({ limit: 10, offset: 0, actorId })).items.map((item) => [item.ip, item.userAgent]);
    expect(await rowsOf(gone)).toEqual([
      [null, null],
      [null, null],
    ]);
    expect((await store.listLoginFailures({ subjectId: gone, limit: 10 }))[0]?.lastIp).toBeNull();
    // Deleted before `since`: left for an earlier pass; never deleted: untouched.
    expect(await rowsOf(earlier)).toContainEqual(['10.0.4.3', null]);
    expect(await rowsOf(kept)).toEqual([['10.0.4.4', null]]);
  });

  // The review of P3: the pass matched the `user_deleted` entry too (its target is the account),
  // which keeps the deleting administrator's IP and user agent for accountability.
  it("keeps the administrator's IP and user agent on the user_deleted entry, and rows from before the deletion", async () => {
    const admin = randomUUID();
    const gone = randomUUID();
    let now = T0 + 50 * HOUR;
    const audit = createAuditLog(createAuditStore(test.database.db), () => now, store);
    await audit.record({ event: 'logout', actorId: gone, ip: '10.0.5.1' });
    now = T0 + 51 * HOUR;
    await audit.record({
      event: 'user_deleted',
      actorId: admin,
      targetId: gone,
      ip: '203.0.113.7',
      userAgent: 'admin-console',
    });
    expect(await store.forgetPersonalDataOfDeletedSince(T0 + 50 * HOUR)).toBeGreaterThanOrEqual(1);
    const deletion = (await audit.list({ limit: 10, offset: 0, actorId: admin })).items[0];
    expect([deletion?.ip, deletion?.userAgent]).toEqual(['203.0.113.7', 'admin-console']);
    // Before the deletion: the deletion's own pass handles it (forgetPersonalData), not this one.
    expect((await audit.list({ limit: 10, offset: 0, actorId: gone })).items[0]?.ip).toBe('10.0.5.1');
  });
});
