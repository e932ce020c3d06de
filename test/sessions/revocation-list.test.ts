import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMemoryEventBus } from '../../src/events/event-bus.js';
import { createRevocationList, revocationRetentionMs } from '../../src/sessions/revocation-list.js';
import {
  createSessionStore,
  type RevokedSessionRow,
  type SessionStore,
} from '../../src/storage/session-store.js';
import { createTestClock } from '../../src/testing.js';
import { addTestUser, createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

const RETENTION = 900_000;
const OVERLAP = 60_000;
const INTERVAL = 3_600_000; // the tests call reload() themselves

/** What a revocation list reads from its store. */
type ListStore = Pick<SessionStore, 'listRevokedSince' | 'readRevocationCutoff'>;

/**
 * A store that answers from `rows` (and the cut-off `setCutoff` gave it) and records every
 * `since` it was asked for.
 */
function fakeStore(rows: RevokedSessionRow[]) {
  const asked: number[] = [];
  let failing = false;
  let cutoff = 0;
  const store: ListStore = {
    async listRevokedSince(since, now) {
      asked.push(since);
      if (failing) throw new Error('database down');
      return rows.filter((row) => row.revokedAt > since && row.expiresAt > now);
    },
    async readRevocationCutoff() {
      if (failing) throw new Error('database down');
      return cutoff;
    },
  };
  return {
    store,
    asked,
    setCutoff: (value: number) => {
      cutoff = value;
    },
    fail: (value: boolean) => {
      failing = value;
    },
  };
}

/**
 * A revocation list over `store` with the tests' retention, overlap and (manual) reload interval,
 * reading `now()` as its clock; `options` adds or replaces the rest (a bus, `onReloadError`).
 */
function listOver(
  store: ListStore,
  now: () => number,
  options: Partial<Parameters<typeof createRevocationList>[0]> = {},
) {
  return createRevocationList({
    store,
    bus: createMemoryEventBus(),
    clock: now,
    retentionMs: RETENTION,
    reloadIntervalMs: INTERVAL,
    overlapMs: OVERLAP,
    ...options,
  });
}

describe('revocation list', () => {
  it('keeps a revocation only until its last access token has expired (plus the overlap)', async () => {
    let now = 10_000_000;
    const old = { id: 'old', revokedAt: now - RETENTION - OVERLAP - 1, expiresAt: now + 86_400_000 };
    const recent = { id: 'recent', revokedAt: now - 1_000, expiresAt: now + 86_400_000 };
    const shortLived = { id: 'short', revokedAt: now - 1_000, expiresAt: now + 5_000 };
    const { store, asked } = fakeStore([old, recent, shortLived]);
    const list = await listOver(store, () => now);
    // The first load reaches back only as far as a revocation can still matter.
    expect(asked).toEqual([now - RETENTION - OVERLAP]);
    expect(list.isRevoked('old')).toBe(false);
    expect(list.isRevoked('recent')).toBe(true);
    expect(list.isRevoked('short')).toBe(true);
    now += 5_000;
    await list.reload();
    // Gone at the session's absolute expiry, whichever comes first.
    expect(list.isRevoked('short')).toBe(false);
    now = recent.revokedAt + RETENTION + OVERLAP - 1;
    await list.reload();
    expect(list.isRevoked('recent')).toBe(true);
    now += 1;
    await list.reload();
    expect(list.isRevoked('recent')).toBe(false);
    expect(list.size).toBe(0);
    list.close();
  });

  it('reloadFresh reads after a reload already under way (which may predate a bus gap), and says whether it read', async () => {
    const now = 10_000_000;
    const rows: RevokedSessionRow[] = [];
    let gate: Promise<void> = Promise.resolve();
    let failing = false;
    const store: ListStore = {
      async listRevokedSince(since, at) {
        // Reads what exists when the query runs, then waits (a slow query).
        const found = rows.filter((row) => row.revokedAt > since && row.expiresAt > at);
        await gate;
        if (failing) throw new Error('database down');
        return found;
      },
      readRevocationCutoff: async () => 0,
    };
    const list = await listOver(store, () => now, { onReloadError: () => {} });
    let open = () => {};
    gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const early = list.reload();
    // Revoked while the reload under way had already read (the revocation missed in a bus gap).
    rows.push({ id: 'missed', revokedAt: now - 1, expiresAt: now + 86_400_000 });
    const fresh = list.reloadFresh();
    open();
    await early;
    expect(await fresh).toBe(true);
    expect(list.isRevoked('missed')).toBe(true);
    failing = true;
    gate = Promise.resolve();
    expect(await list.reloadFresh()).toBe(false);
    list.close();
  });

  it('reloads incrementally from the previous start minus the overlap, and survives failures', async () => {
    let now = 10_000_000;
    const { store, asked, fail } = fakeStore([]);
    const errors: unknown[] = [];
    const list = await listOver(store, () => now, { onReloadError: (error) => errors.push(error) });
    const firstStart = now;
    now += 5_000;
    fail(true);
    await expect(list.reload()).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    // A failed reload does not move the watermark: the retry reads the same range again.
    now += 5_000;
    fail(false);
    await list.reload();
    expect(asked.slice(1)).toEqual([firstStart - OVERLAP, firstStart - OVERLAP]);
    const secondStart = now;
    now += 5_000;
    await list.reload();
    expect(asked.at(-1)).toBe(secondStart - OVERLAP);
    list.close();
  });

  it('reloads on its own every interval on the injected scheduler, and stops when closed', async () => {
    const clock = createTestClock(10_000_000);
    // Lets the reload that a timer started finish (and schedule the next) before looking.
    const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
    let calls = 0;
    const list = await createRevocationList({
      store: {
        async listRevokedSince() {
          calls += 1;
          return [];
        },
        readRevocationCutoff: async () => 0,
      },
      bus: createMemoryEventBus(),
      clock,
      scheduler: clock,
      retentionMs: RETENTION,
      reloadIntervalMs: 5_000,
      overlapMs: OVERLAP,
    });
    expect(calls).toBe(1);
    clock.advance(4_999);
    await settle();
    expect(calls).toBe(1);
    clock.advance(1);
    await settle();
    expect(calls).toBe(2);
    clock.advance(5_000);
    await settle();
    expect(calls).toBe(3);
    list.close();
    clock.advance(60_000);
    await settle();
    expect(calls).toBe(3);
  });

  it('takes broadcasts at once and bounds them by the same retention', async () => {
    let now = 10_000_000;
    const bus = createMemoryEventBus();
    const list = await listOver(fakeStore([]).store, () => now, { bus });
    await bus.publish({ type: 'sessions_revoked', sessions: [{ id: 's1', expiresAt: now + 86_400_000 }] });
    expect(list.isRevoked('s1')).toBe(true);
    now += RETENTION + OVERLAP;
    await list.reload();
    expect(list.isRevoked('s1')).toBe(false);
    list.close();
  });

  it('cuts off tokens issued before the stored cut-off: from the first load, a reload or a broadcast, never lowered', async () => {
    let now = 10_000_000;
    const { store, setCutoff } = fakeStore([]);
    setCutoff(5_000_000);
    const bus = createMemoryEventBus();
    const list = await listOver(store, () => now, { bus });
    expect(list.cutoff).toBe(5_000_000);
    // iat is in seconds: 4 999 s is before the cut-off, 5 000 s is not.
    expect(list.isCutOff(4_999)).toBe(true);
    expect(list.isCutOff(5_000)).toBe(false);
    // A revoke-all, committed and then told over the bus (the value is read from the database).
    setCutoff(8_000_000);
    await bus.publish({ type: 'revocation_cutoff_raised', notBefore: 8_000_000 });
    await vi.waitFor(() => expect(list.isCutOff(7_999)).toBe(true));
    expect(list.isCutOff(8_000)).toBe(false);
    // Missed broadcasts: the next reload reads it.
    setCutoff(9_000_000);
    now += 1_000;
    await list.reload();
    expect(list.isCutOff(8_999)).toBe(true);
    // A lower value (a broadcast arriving late, a database restored from before) lowers nothing.
    await bus.publish({ type: 'revocation_cutoff_raised', notBefore: 1_000 });
    setCutoff(2_000);
    await list.reload();
    expect(list.cutoff).toBe(9_000_000);
    list.close();
  });

  it('tells onCutoffRaised of each rise after the first load, and refuseAll cuts off every iat for good', async () => {
    const now = 10_000_000;
    const { store, setCutoff } = fakeStore([]);
    setCutoff(5_000_000);
    const raised: number[] = [];
    const list = await listOver(store, () => now, { onCutoffRaised: (notBefore) => raised.push(notBefore) });
    // The first load's cut-off is the one start-up already checked against.
    expect(raised).toEqual([]);
    setCutoff(8_000_000);
    await list.reload();
    await list.reload();
    expect(raised).toEqual([8_000_000]);
    const generation = list.cutoffGeneration;
    list.refuseAll();
    expect(list.isCutOff(Number.MAX_SAFE_INTEGER / 1000)).toBe(true);
    expect(list.cutoffGeneration).toBe(generation + 1);
    // Not told of its own infinite cut-off, and no reload lowers it.
    expect(raised).toEqual([8_000_000]);
    setCutoff(9_000_000);
    await list.reload();
    expect(list.cutoff).toBe(Number.POSITIVE_INFINITY);
    list.close();
  });

  it('takes a broadcast cut-off from the database, never from the message (a forged one cuts nothing off)', async () => {
    const now = 10_000_000;
    const { store, setCutoff } = fakeStore([]);
    const bus = createMemoryEventBus();
    const errors: unknown[] = [];
    const list = await listOver(store, () => now, { bus, onReloadError: (error) => errors.push(error) });
    // Anyone who can PUBLISH on Redis: a cut-off far ahead would refuse every token issued until
    // then, in every running instance, and a process never lowers it.
    await bus.publish({ type: 'revocation_cutoff_raised', notBefore: Number.MAX_SAFE_INTEGER });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(list.cutoff).toBe(0);
    expect(list.isCutOff(now / 1000)).toBe(false);
    // The real one: revoke-all committed it, then broadcast.
    setCutoff(8_000_000);
    await bus.publish({ type: 'revocation_cutoff_raised', notBefore: 8_000_000 });
    await vi.waitFor(() => expect(list.cutoff).toBe(8_000_000));
    expect(list.isCutOff(7_999)).toBe(true);
    expect(errors).toEqual([]);
    list.close();
  });

  it('reads the cut-off once per burst of broadcasts, and catches up at the next reload when that read fails', async () => {
    let now = 10_000_000;
    const { store, setCutoff, fail } = fakeStore([]);
    let reads = 0;
    let release = () => {};
    let gate = Promise.resolve();
    const counted: ListStore = {
      listRevokedSince: store.listRevokedSince,
      async readRevocationCutoff() {
        reads += 1;
        await gate;
        return store.readRevocationCutoff();
      },
    };
    const bus = createMemoryEventBus();
    const errors: unknown[] = [];
    const list = await listOver(counted, () => now, { bus, onReloadError: (error) => errors.push(error) });
    reads = 0;
    // A flood of broadcasts (forged or not) while one read is held: one read more after it, no pile-up.
    gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    setCutoff(6_000_000);
    for (let i = 1; i <= 50; i++)
      await bus.publish({ type: 'revocation_cutoff_raised', notBefore: 5_000_000 + i });
    expect(reads).toBe(1);
    release();
    await vi.waitFor(() => expect(reads).toBe(2));
    await vi.waitFor(() => expect(list.cutoff).toBe(6_000_000));
    // The database down when the broadcast comes: reported, and the next reload reads it.
    fail(true);
    setCutoff(7_000_000);
    await bus.publish({ type: 'revocation_cutoff_raised', notBefore: 7_000_000 });
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(list.cutoff).toBe(6_000_000);
    fail(false);
    now += 1_000;
    await list.reload();
    expect(list.cutoff).toBe(7_000_000);
    list.close();
  });

  it("retains entries as long as cookies, apps' re-checks and access tokens need them", () => {
    expect(
      revocationRetentionMs({
        accessTokenTtlMs: 900_000,
        cookieRecheckMs: 30_000,
        appRevocationCheckMs: 15_000,
      }),
    ).toBe(900_000);
    expect(
      revocationRetentionMs({
        accessTokenTtlMs: 1_000,
        cookieRecheckMs: 30_000,
        appRevocationCheckMs: 15_000,
      }),
    ).toBe(30_000);
    expect(
      revocationRetentionMs({
        accessTokenTtlMs: 1_000,
        cookieRecheckMs: 30_000,
        appRevocationCheckMs: 600_000,
      }),
    ).toBe(1_200_000);
  });
});

describe.runIf(engines.some((engine) => engine.name === 'postgres'))('revocation list on PostgreSQL', () => {
  let test: TestDatabase;
  let store: SessionStore;
  const userId = randomUUID();
  beforeAll(async () => {
    test = await createTestDatabase('postgres');
    store = createSessionStore(test.database.db);
    await addTestUser(test.database.db, userId);
  });
  afterAll(async () => test.dispose());

  it('picks up a revocation that committed after a reload with an earlier revoked_at', async () => {
    let now = Date.now();
    const id = randomUUID();
    await store.insertSession({
      id,
      userId,
      transport: 'bearer',
      scopes: [],
      createdAt: now,
      lastUsedAt: now,
      expiresAt: now + 86_400_000,
      revokedAt: null,
      userAgent: null,
      ip: null,
    });
    const list = await listOver(store, () => now);
    // Another instance revokes the session at `revokedAt`, but its transaction stays open…
    const revokedAt = now + 1_000;
    const writer = new pg.Client({ connectionString: test.url });
    await writer.connect();
    try {
      await writer.query('begin');
      await writer.query('update sessions set revoked_at = $1 where id = $2', [revokedAt, id]);
      // …across a reload that starts after `revokedAt`, and so cannot see the row yet.
      now += 3_000;
      await list.reload();
      expect(list.isRevoked(id)).toBe(false);
      await writer.query('commit');
    } finally {
      await writer.end();
    }
    // The next reload reaches back past `revokedAt` (overlap) and applies it.
    now += 5_000;
    await list.reload();
    expect(list.isRevoked(id)).toBe(true);
    list.close();
  });
});
