import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair } from 'jose';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMemoryCounterStore } from '../../src/accounts/counter-store.js';
import { createUserCache } from '../../src/accounts/user-cache.js';
import {
  createPresence,
  PRESENCE_EXPIRY_BEATS,
  type PresenceMessage,
} from '../../src/apps/dicery/core/presence.js';
import { createMemoryEventBus } from '../../src/events/event-bus.js';
import { hasElapsed } from '../../src/lib/elapsed.js';
import { createLiveClients } from '../../src/oauth/live-clients.js';
import type { OAuthClient, OAuthClients } from '../../src/oauth/oauth-clients.js';
import { createRemoteKeySet } from '../../src/resource-server/remote-key-set.js';
import { createRevocationList } from '../../src/sessions/revocation-list.js';
import { openDatabase } from '../../src/storage/open-database.js';
import type { RevokedSessionRow, SessionStore } from '../../src/storage/session-store.js';
import type { UserRecord, UserStore } from '../../src/storage/user-store.js';
import { buildTestServer, createTestClock } from '../../src/testing.js';
import { createUser, login, postToken, signIn } from '../support/accounts.js';
import { createRoom, joinAsBot } from '../support/rooms.js';

/**
 * Fault review, second part: the wall clock stepped back or forward under a running server (an NTP
 * step, an operator's `date -s`, a VM restored or resumed). Every test drives a clock it owns
 * (`now` below) and steps it without any timer firing, which is what a step does to Node: timers
 * are monotonic, `Date.now()` is not. Each test failed before the fix it names.
 */

const HOUR = 3_600_000;

/** A wall clock the test steps at will. */
function steppableClock(start = 1_800_000_000_000) {
  let now = start;
  const clock = () => now;
  return Object.assign(clock, {
    /** Time passing (or a forward step): `ms` later. */
    pass: (ms: number) => {
      now += ms;
    },
    /** A step back by `ms`. */
    stepBack: (ms: number) => {
      now -= ms;
    },
  });
}

describe('hasElapsed', () => {
  it('counts a time before the start as elapsed: after a step back the age is unknown', () => {
    expect(hasElapsed(1000, 0, 1000)).toBe(true);
    expect(hasElapsed(999, 0, 1000)).toBe(false);
    expect(hasElapsed(-1, 0, 1000)).toBe(true);
    expect(hasElapsed(5, Number.NEGATIVE_INFINITY, 1000)).toBe(true);
  });
});

describe('clock stepped back', () => {
  it('a locked-out key is not locked out for the step longer (memory counters)', async () => {
    const clock = steppableClock();
    const counters = createMemoryCounterStore(clock);
    const window = 15 * 60_000;
    for (let i = 0; i < 5; i += 1) await counters.increment('login:victim@example.com', window);
    clock.stepBack(HOUR);
    // Before the fix the window still ended at its old resetAt: 1 h 15 min more of lockout,
    // and Retry-After said so.
    const after = await counters.peek('login:victim@example.com');
    expect(after).toBeUndefined();
    expect((await counters.increment('login:victim@example.com', window)).count).toBe(1);
    // Windows opened after the step behave normally.
    clock.pass(window - 1);
    expect(await counters.peek('login:victim@example.com')).toMatchObject({ count: 1 });
    clock.pass(1);
    expect(await counters.peek('login:victim@example.com')).toBeUndefined();
  });

  it('a cached user is re-read after its max age, not after the step plus its max age', async () => {
    const clock = steppableClock();
    let row: UserRecord = {
      id: 'u1',
      email: 'a@example.com',
      emailKey: 'a@example.com',
      fullName: null,
      passwordHash: 'h',
      role: 'admin',
      isActive: true,
      emailVerified: false,
      createdAt: 0,
      updatedAt: 0,
      credentialsVersion: 0,
    };
    let reads = 0;
    const store = {
      findUserById: async () => {
        reads += 1;
        return row;
      },
    } as Pick<UserStore, 'findUserById'> as UserStore;
    const cache = createUserCache(store, createMemoryEventBus(), { clock, maxAgeMs: 30_000 });
    expect((await cache.get('u1'))?.role).toBe('admin');
    // Demoted on another instance whose user_changed broadcast was lost (Redis pub/sub is
    // at-most-once): only the max age bounds the stale entry.
    row = { ...row, role: 'user' };
    clock.stepBack(HOUR);
    clock.pass(30_000);
    expect(cache.peek('u1')).toBeUndefined();
    expect((await cache.get('u1'))?.role).toBe('user');
    expect(reads).toBe(2);
  });

  it('a cached OAuth client is re-read after its max age, not after the step plus its max age', async () => {
    const clock = steppableClock();
    let client: OAuthClient | undefined = { clientId: 'c1' } as Partial<OAuthClient> as OAuthClient;
    const clients: Pick<OAuthClients, 'find'> = { find: async () => client };
    const live = createLiveClients(clients, createMemoryEventBus(), { clock, maxAgeMs: 30_000 });
    expect(await live.get('c1')).toMatchObject({ clientId: 'c1' });
    client = undefined;
    clock.stepBack(HOUR);
    expect(live.peek('c1')).toBeUndefined();
    expect(await live.get('c1')).toBeNull();
  });

  describe('an external issuer rotating its keys', () => {
    let server: Server;
    let keys: object[] = [];
    let fetches = 0;
    let jwksUri: string;

    beforeAll(async () => {
      server = createServer((_request, response) => {
        fetches += 1;
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ keys }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
    });
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
    });

    it('is fetched again for an unknown kid after the cooldown, not after the step plus the cooldown', async () => {
      const jwk = async (kid: string) => ({
        ...(await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey)),
        kid,
        alg: 'ES256',
      });
      keys = [await jwk('old')];
      const clock = steppableClock();
      const keySet = createRemoteKeySet({
        issuer: 'http://127.0.0.1/',
        jwksUri,
        internal: true,
        timeoutMs: 2000,
        maxAgeMs: HOUR,
        cooldownMs: 30_000,
        maxStaleMs: HOUR,
        clockToleranceMs: 30_000,
        clock,
        warn: () => {},
      });
      const token = { payload: '', signature: '' };
      await keySet.resolve({ alg: 'ES256', kid: 'old' }, token);
      expect(fetches).toBe(1);
      keys = [await jwk('new')];
      clock.stepBack(HOUR);
      clock.pass(30_000);
      // Before the fix no fetch was allowed for another hour: every token signed with the new
      // key refused (JWKSNoMatchingKey) until the clock caught up.
      await expect(keySet.resolve({ alg: 'ES256', kid: 'new' }, token)).resolves.toBeDefined();
      expect(fetches).toBe(2);
    });
  });

  describe('revocation list', () => {
    const RETENTION = 15 * 60_000;
    const OVERLAP = 60_000;

    function rowsStore(
      rows: RevokedSessionRow[],
    ): Pick<SessionStore, 'listRevokedSince' | 'readRevocationCutoff'> {
      return {
        listRevokedSince: async (since, now) =>
          rows.filter((row) => row.revokedAt > since && row.expiresAt > now),
        readRevocationCutoff: async () => 0,
      };
    }

    async function revocationList(clock: () => number, rows: RevokedSessionRow[]) {
      return createRevocationList({
        store: rowsStore(rows),
        bus: createMemoryEventBus(),
        clock,
        retentionMs: RETENTION,
        // The test calls reload() itself, as the timer would.
        reloadIntervalMs: HOUR,
        overlapMs: OVERLAP,
      });
    }

    it('picks up revocations made after the step by other instances (no broadcast)', async () => {
      const clock = steppableClock();
      const rows: RevokedSessionRow[] = [];
      const list = await revocationList(clock, rows);
      clock.pass(5000);
      await list.reload();
      clock.stepBack(HOUR);
      // Another instance (same clock source, stepped too) revokes a session; Redis lost the
      // broadcast. Its revoked_at lies below the watermark the list reads from.
      rows.push({ id: 'after-step', revokedAt: clock(), expiresAt: clock() + 86_400_000 });
      clock.pass(5000);
      await list.reload();
      // Before the fix: false until the clock caught up an hour later.
      expect(list.isRevoked('after-step')).toBe(true);
      // And the watermark follows the new time: the next revocation is found by the next reload.
      rows.push({ id: 'later', revokedAt: clock(), expiresAt: clock() + 86_400_000 });
      clock.pass(5000);
      await list.reload();
      expect(list.isRevoked('later')).toBe(true);
    });

    it('guards again the revoked sessions whose tokens live again after the step', async () => {
      const clock = steppableClock();
      // Revoked when its last access token (15 min) was just minted.
      const revoked = { id: 'revoked', revokedAt: clock(), expiresAt: clock() + 86_400_000 };
      const list = await revocationList(clock, [revoked]);
      expect(list.isRevoked('revoked')).toBe(true);
      clock.pass(RETENTION + OVERLAP + 1);
      await list.reload();
      // Swept: its tokens have all expired.
      expect(list.isRevoked('revoked')).toBe(false);
      // An hour back, the token's exp is 45 minutes ahead again: it must not pass.
      clock.stepBack(HOUR);
      await list.reload();
      expect(list.isRevoked('revoked')).toBe(true);
    });
  });
});

describe('a statement waiting for the SQLite write lock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-clock-sqlite-'));
  const path = join(dir, 'gatehouse.db');
  const database = openDatabase(`sqlite:${path}`, { statementTimeoutMs: 200 });
  const holder = new SQLite(path);
  afterAll(async () => {
    holder.close();
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives up after the statement timeout even when the wall clock steps back meanwhile', async () => {
    await sql`create table t (x integer)`.execute(database.db);
    holder.exec('begin immediate');
    const realNow = Date.now.bind(Date);
    let reads = 0;
    // The first reading is the deadline's start; every later one is an hour earlier.
    const stepped = vi.spyOn(Date, 'now').mockImplementation(() => realNow() - (reads++ > 0 ? HOUR : 0));
    try {
      const insert = sql`insert into t values (1)`.execute(database.db);
      // A hang bound, not a timing assertion: before the fix the insert waited out the hour.
      const outcome = await Promise.race([
        insert.then(
          () => 'inserted',
          (error: unknown) => (error as { code?: string }).code,
        ),
        new Promise((resolve) => setTimeout(() => resolve('still waiting after 10 s'), 10_000)),
      ]);
      expect(outcome).toBe('SQLITE_BUSY');
    } finally {
      stepped.mockRestore();
      holder.exec('rollback');
    }
  });
});

describe('Dicery presence across a step', () => {
  const HEARTBEAT_MS = 1000;

  async function presenceHearing() {
    const timers = createTestClock();
    let deliver: ((message: PresenceMessage) => void) | undefined;
    const presence = await createPresence({
      openChannel: async (options) => {
        deliver = options.deliver;
        return { publish: async () => true, close: () => {} };
      },
      scheduler: timers,
      heartbeatMs: HEARTBEAT_MS,
      onWarning: () => {},
    });
    // Another instance says its stream in ROOM01 is open, then crashes (no more heartbeats).
    deliver?.({ instance: 'other', full: true, rooms: [{ code: 'ROOM01', members: ['player:p1'] }] });
    return { presence, timers };
  }

  it("drops a crashed instance's members after the expiry heartbeats, whatever the wall clock did", async () => {
    const { presence, timers } = await presenceHearing();
    expect(presence.online('ROOM01').playerIds).toEqual(['p1']);
    // Silence is counted in heartbeats: before, it was `clock() - seenAt`, and a wall clock stepped
    // back an hour here kept p1 shown online for that hour.
    timers.advance((PRESENCE_EXPIRY_BEATS + 1) * HEARTBEAT_MS);
    expect(presence.online('ROOM01').playerIds).toEqual([]);
    presence.close();
  });
});

describe('clock stepped forward', () => {
  const IDLE_TTL = 3600;
  const timers = createTestClock();
  let offset = 0;
  // Timers run on the test clock (monotonic); the wall clock is the test clock plus steps.
  const wall = () => timers() + offset;
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await buildTestServer({ roomIdleTtl: IDLE_TTL }, { clock: wall, scheduler: timers });
  });
  afterAll(async () => app.close());

  it('deletes no session that is live once the clock is put right (hourly sweep)', async () => {
    const user = await createUser(app);
    const tokens = await login(app, user.email);
    // A wall clock set a year ahead (a typo in `date -s`, a wrong NTP server), for one sweep.
    offset += 365 * 24 * HOUR;
    timers.advance(HOUR);
    await new Promise((resolve) => setTimeout(resolve, 100));
    offset -= 365 * 24 * HOUR;
    // Before the fix the sweep had deleted every session "expired" a year ahead: refresh failed
    // with invalid_grant, every user logged out for good.
    const refreshed = await postToken(app, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
    });
    expect(refreshed.statusCode, refreshed.body).toBe(200);
  });

  it('does not close every live room at once (Dicery idle sweep)', async () => {
    const host = await signIn(app);
    const live = await createRoom(app, host);
    const bot = await joinAsBot(app, live.code, 'Robo');
    const quiet = await createRoom(app, await signIn(app));
    // One sweep interval (a quarter of the TTL) passes with both rooms active a moment ago.
    timers.advance((IDLE_TTL / 4) * 1000);
    // The clock was two hours late; NTP steps it.
    offset += 2 * HOUR;
    timers.advance((IDLE_TTL / 4) * 1000);
    // Before the fix this pass saw every room idle for two hours and closed both.
    const rolled = await app.inject({
      method: 'POST',
      url: `/rooms/${live.code}/rolls`,
      headers: bot.headers,
      payload: { notation: '1d4' },
    });
    expect(rolled.statusCode).toBe(201);
    // Let any sweep's database work finish before looking.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await app.dicery.roomStore.findRoom(live.code))?.state).toBe('open');
    // The quiet room is closed later, once the sweep has caught up with the stepped clock.
    for (let i = 0; i < 3; i += 1) timers.advance((IDLE_TTL / 4) * 1000);
    await expect.poll(async () => (await app.dicery.roomStore.findRoom(quiet.code))?.state).toBe('closed');
    expect((await app.dicery.roomStore.findRoom(live.code))?.state).toBe('open');
  });
});
