import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Type } from 'typebox';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { defineAppSettings } from '../src/config/app-settings.js';
import { integerSetting, secondsSetting } from '../src/config/setting.js';
import { ConfigError } from '../src/errors.js';
import { createGatehouse, createGatehouseCore, type Gatehouse } from '../src/gatehouse.js';
import { gatehouseCore } from '../src/gatehouse-core.js';
import type { GatehouseTransaction } from '../src/gatehouse-transaction.js';
import type { Gatehouse as PublicGatehouse } from '../src/index.js';
import { createTestClock, testConfig } from '../src/testing.js';
import { PASSWORD } from './support/accounts.js';
import { recipientsOf, type SmtpSink, startSmtpSink } from './support/smtp-sink.js';
import { tampered } from './support/tampered.js';
import { useTempDirs } from './support/temp-dirs.js';

const tempDir = useTempDirs();

const CLIENT = { userAgent: null, ip: null };

/** The internals issue 16 took off the public object: none may come back by accident. */
const INTERNALS = [
  'database',
  'sessionStore',
  'userCache',
  'keyring',
  'hasher',
  'bus',
  'revocations',
  'accounts',
  'tokenGrants',
  'selfService',
  'userAdmin',
  'throttle',
  'audit',
  'auditRetention',
  'redisStats',
  'checkRedis',
  'mfa',
  'stepUp',
  'reauthentication',
  'lifecycle',
  'mailer',
  'userImport',
  'oauthClients',
] as const;

describe('the Gatehouse facade (issue 16)', () => {
  let gatehouse: Gatehouse;
  let counter = 0;
  const email = () => `facade-${++counter}-${Math.random().toString(36).slice(2)}@example.com`;

  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig());
  });
  afterAll(async () => gatehouse?.close());

  it('has no database, store, cache or keyring in its type', () => {
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('database');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('sessionStore');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('userCache');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('keyring');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('auditRetention');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('bus');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('lifecycle');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('mailer');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('mfa');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('stepUp');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('oauthClients');
    expectTypeOf<PublicGatehouse>().not.toHaveProperty('userImport');
    expectTypeOf<PublicGatehouse['onAccountDeletionPreparing']>()
      .parameter(0)
      .parameter(0)
      .toEqualTypeOf<string>();
    expectTypeOf<PublicGatehouse['onAccountDeleting']>()
      .parameter(0)
      .parameter(0)
      .toEqualTypeOf<GatehouseTransaction>();
    expectTypeOf<PublicGatehouse['config']>().not.toHaveProperty('secretKey');
    expectTypeOf<PublicGatehouse['config']>().not.toHaveProperty('secretKeyPrevious');
    // The app-facing transaction is typed with the app's tables only: no handle on the core's.
    expectTypeOf<GatehouseTransaction>().not.toHaveProperty('db');
    expectTypeOf<Awaited<ReturnType<PublicGatehouse['users']['get']>>>().not.toHaveProperty('passwordHash');
  });

  it('carries none of them at run time, not even under a symbol, and is frozen', () => {
    const keys = Object.keys(gatehouse);
    for (const internal of INTERNALS) expect(keys).not.toContain(internal);
    expect(Object.getOwnPropertySymbols(gatehouse)).toEqual([]);
    expect(Object.isFrozen(gatehouse)).toBe(true);
    expect(Object.isFrozen(gatehouse.config)).toBe(true);
    expect(Object.keys(gatehouse.config)).not.toContain('secretKey');
    expect(Object.keys(gatehouse.config)).not.toContain('secretKeyPrevious');
  });

  it('leads to its core only through the module-private accessor, and only when made by createGatehouse', () => {
    expect(gatehouseCore(gatehouse).facade).toBe(gatehouse);
    expect(() => gatehouseCore({ ...gatehouse })).toThrow(TypeError);
    expect(() => gatehouseCore({ ...gatehouse })).toThrow(/createGatehouse/);
  });

  it('registers, gets and finds users, never with a hash', async () => {
    const address = email();
    const created = await gatehouse.users.register({ email: address.toUpperCase(), password: PASSWORD });
    expect(created).not.toHaveProperty('passwordHash');
    expect(created.role).toBe('user');
    const byId = await gatehouse.users.get(created.id);
    expect(byId).toMatchObject({ id: created.id, isActive: true });
    expect(byId).not.toHaveProperty('passwordHash');
    const byEmail = await gatehouse.users.findByEmail(address);
    expect(byEmail?.id).toBe(created.id);
    expect(byEmail).not.toHaveProperty('passwordHash');
    expect(await gatehouse.users.findByEmail('not an address')).toBeUndefined();
    expect(await gatehouse.users.findByEmail(email())).toBeUndefined();
    expect(await gatehouse.users.get('00000000-0000-4000-8000-000000000000')).toBeUndefined();
  });

  it('refuses a taken email and a weak password with stable codes', async () => {
    const address = email();
    await gatehouse.users.register({ email: address, password: PASSWORD });
    await expect(gatehouse.users.register({ email: address, password: PASSWORD })).rejects.toMatchObject({
      code: 'EMAIL_TAKEN',
    });
    await expect(gatehouse.users.register({ email: email(), password: 'short' })).rejects.toMatchObject({
      code: 'WEAK_PASSWORD',
    });
  });

  it('validates an access token as the bearer guard does, and ends every session of a user', async () => {
    const user = await gatehouse.users.register({ email: email(), password: PASSWORD });
    const core = gatehouseCore(gatehouse);
    const tokens = await core.sessions.startBearerSession(user.id, ['me'], CLIENT);
    const valid = await gatehouse.sessions.validate(tokens.accessToken);
    if (!valid.ok) throw new Error(`expected a valid session, got ${valid.reason}`);
    expect(valid.user.id).toBe(user.id);
    expect(valid.user).not.toHaveProperty('passwordHash');
    expect(valid.session.scopes).toEqual(['me']);
    expect(gatehouse.sessions.isRevoked(valid.session.sessionId)).toBe(false);
    expect(await gatehouse.sessions.check(valid.session.sessionId)).toMatchObject({ ok: true });

    expect(await gatehouse.sessions.revokeAll(user.id)).toBe(1);
    expect(gatehouse.sessions.isRevoked(valid.session.sessionId)).toBe(true);
    expect(await gatehouse.sessions.validate(tokens.accessToken)).toEqual({ ok: false, reason: 'revoked' });
    expect(await gatehouse.sessions.check(valid.session.sessionId)).toEqual({ ok: false, reason: 'revoked' });
    expect(await gatehouse.sessions.validate('not-a-token')).toMatchObject({ ok: false });
  });

  it('refuses the token of a disabled account', async () => {
    const user = await gatehouse.users.register({ email: email(), password: PASSWORD });
    const core = gatehouseCore(gatehouse);
    const tokens = await core.sessions.startBearerSession(user.id, ['me'], CLIENT);
    await core.accounts.applyUserChange(user.id, { isActive: false });
    expect(await gatehouse.sessions.validate(tokens.accessToken)).toEqual({ ok: false, reason: 'disabled' });
  });

  it('tells subscribers about account changes until they unsubscribe; apps cannot publish', async () => {
    const user = await gatehouse.users.register({ email: email(), password: PASSWORD });
    const seen: string[] = [];
    const unsubscribe = gatehouse.events.subscribe((event) => {
      if (event.type === 'user_changed' && event.userId === user.id) seen.push(event.type);
    });
    await gatehouseCore(gatehouse).accounts.applyUserChange(user.id, { fullName: 'Ada' });
    unsubscribe();
    await gatehouseCore(gatehouse).accounts.applyUserChange(user.id, { fullName: 'Grace' });
    expect(seen).toEqual(['user_changed']);
    expect(gatehouse.events).not.toHaveProperty('publish');
  });

  it("namespaces the app's counters: an app cannot reach or reset the core's login throttling", async () => {
    const core = gatehouseCore(gatehouse);
    // The key the core counts every failed login under (LOGIN_MAX_FAILURES_GLOBAL).
    const coreKey = 'login:global';
    const before = (await core.counters.peek(coreKey))?.count ?? 0;
    expect((await gatehouse.counters.increment(coreKey, 60_000)).count).toBe(1);
    expect((await gatehouse.counters.increment(coreKey, 60_000)).count).toBe(2);
    expect((await core.counters.peek(coreKey))?.count ?? 0).toBe(before);
    await core.counters.increment(coreKey, 60_000);
    await gatehouse.counters.reset(coreKey);
    expect((await core.counters.peek(coreKey))?.count).toBe(before + 1);
    expect((await core.counters.peek(`app:${coreKey}`))?.count).toBeUndefined();
  });

  it('runs onAccountDeleting hooks in the deletion’s transaction; a throwing hook aborts it; removed hooks stay out', async () => {
    const core = gatehouseCore(gatehouse);
    const caller = { client: { userAgent: null, ip: '127.0.0.1' }, onAuditLost: () => {} };
    const deleteOwn = async (userId: string) => {
      const tokens = await core.sessions.startBearerSession(userId, ['me'], CLIENT);
      const valid = await gatehouse.sessions.validate(tokens.accessToken);
      if (!valid.ok) throw new Error(`expected a valid session, got ${valid.reason}`);
      await core.lifecycle.deleteOwnAccount(
        userId,
        { currentPassword: PASSWORD },
        valid.session.sessionId,
        caller,
      );
    };

    const kept = await gatehouse.users.register({ email: email(), password: PASSWORD });
    const refuse = gatehouse.onAccountDeleting(async () => {
      throw new Error('app refuses');
    });
    await expect(deleteOwn(kept.id)).rejects.toThrow('app refuses');
    refuse();
    expect(await gatehouse.users.get(kept.id)).toMatchObject({ id: kept.id });

    const seen: string[] = [];
    const remove = gatehouse.onAccountDeleting(async (tx, userId) => {
      // The app-scoped transaction: its own tables and after-commit callbacks, no core handle.
      expect(tx).not.toHaveProperty('db');
      expect(typeof tx.appDatabase).toBe('function');
      seen.push(`deleting ${userId}`);
      tx.afterCommit(() => {
        seen.push(`committed ${userId}`);
      });
    });
    const gone = await gatehouse.users.register({ email: email(), password: PASSWORD });
    await deleteOwn(gone.id);
    expect(seen).toEqual([`deleting ${gone.id}`, `committed ${gone.id}`]);
    expect(await gatehouse.users.get(gone.id)).toBeUndefined();

    remove();
    const after = await gatehouse.users.register({ email: email(), password: PASSWORD });
    await deleteOwn(after.id);
    expect(seen).toHaveLength(2);
    await core.lifecycle.idle();
  });

  it('runs onAccountDeletionPreparing hooks before the deletion’s transaction, only for a deletion that is allowed', async () => {
    const core = gatehouseCore(gatehouse);
    const seen: string[] = [];
    const removePreparing = gatehouse.onAccountDeletionPreparing(async (userId) => {
      seen.push(`preparing ${userId}`);
      if (userId === refusedByApp.id) throw new Error('app refuses');
    });
    const removeDeleting = gatehouse.onAccountDeleting(
      async (_tx, userId) => void seen.push(`deleting ${userId}`),
    );
    const client = { userAgent: null, ip: '127.0.0.1' };
    const refusedByApp = await gatehouse.users.register({ email: email(), password: PASSWORD });
    const stranger = await gatehouse.users.register({ email: email(), password: PASSWORD });
    const target = await gatehouse.users.register({ email: email(), password: PASSWORD });
    try {
      // Not an administrator: refused before any app empties anything.
      await expect(
        core.accountDeletion.deleteAccount(target.id, { by: 'admin', actorId: stranger.id, client }),
      ).rejects.toMatchObject({ code: 'FORBIDDEN' });
      expect(seen).toEqual([]);
      // A throwing preparer aborts the deletion before its transaction.
      await expect(core.accountDeletion.deleteAccount(refusedByApp.id, { by: 'self' })).rejects.toThrow(
        'app refuses',
      );
      expect(seen).toEqual([`preparing ${refusedByApp.id}`]);
      expect(await gatehouse.users.get(refusedByApp.id)).toMatchObject({ id: refusedByApp.id });
      seen.length = 0;
      await core.accountDeletion.deleteAccount(target.id, { by: 'self' });
      expect(seen).toEqual([`preparing ${target.id}`, `deleting ${target.id}`]);
      expect(await gatehouse.users.get(target.id)).toBeUndefined();
    } finally {
      removePreparing();
      removeDeleting();
    }
    seen.length = 0;
    await core.accountDeletion.deleteAccount(stranger.id, { by: 'self' });
    expect(seen).toEqual([]);
    await core.lifecycle.idle();
  });

  it("seals an app's secrets under its own purpose, bound to a context, through a SECRET_KEY rotation", async () => {
    const sealer = gatehouse.appSealer('dicery-room-log');
    const sealed = sealer.seal('private key bytes', 'row-1');
    expect(sealed).not.toContain('private key bytes');
    expect(sealer.open(sealed, 'row-1')).toBe('private key bytes');
    // Another row, another purpose, or a tampered value: nothing opens.
    expect(sealer.open(sealed, 'row-2')).toBeUndefined();
    expect(gatehouse.appSealer('other-app').open(sealed, 'row-1')).toBeUndefined();
    expect(sealer.open(tampered(sealed), 'row-1')).toBeUndefined();
    expect(() => gatehouse.appSealer('Not A Purpose')).toThrow(TypeError);

    // After a rotation, the old SECRET_KEY as SECRET_KEY_PREVIOUS still opens; without it, nothing does.
    const old = testConfig();
    const before = await createGatehouse(old);
    const value = before.appSealer('dicery-room-log').seal('kept', 'row-1');
    await before.close();
    const rotated = await createGatehouse({ ...testConfig(), secretKeyPrevious: old.secretKey });
    const dropped = await createGatehouse(testConfig());
    try {
      expect(rotated.appSealer('dicery-room-log').open(value, 'row-1')).toBe('kept');
      expect(dropped.appSealer('dicery-room-log').open(value, 'row-1')).toBeUndefined();
    } finally {
      await rotated.close();
      await dropped.close();
    }
  });
});

describe('app settings registration (issue 16)', () => {
  /** An app with one limit, long-lived tokens and streams re-checked every `recheck` seconds. */
  const widgets = defineAppSettings({
    app: 'widgets',
    title: 'Widgets',
    schema: Type.Object({
      widgetsPerHour: integerSetting({
        env: 'WIDGETS_PER_HOUR',
        minimum: 1,
        maximum: 99,
        default: 7,
        description: 'widgets per hour',
      }),
      widgetRecheck: secondsSetting({
        env: 'WIDGET_RECHECK',
        maximum: 3600,
        default: 300,
        description: 'how often open widget streams are re-checked',
      }),
    }),
    tokenLifetime: () => 2 * 3600,
    revocationCheckInterval: (settings) => settings.widgetRecheck,
  });
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  it('hands an app its own settings, typed and defaulted, and only to the definition registered', async () => {
    const gatehouse = await createGatehouse({ ...testConfig(), widgetsPerHour: 12 }, { settings: [widgets] });
    closers.push(() => gatehouse.close());
    const settings = gatehouse.appSettings(widgets);
    expectTypeOf(settings.widgetsPerHour).toEqualTypeOf<number>();
    expect(settings).toEqual({ widgetsPerHour: 12, widgetRecheck: 300 });
    expect(Object.isFrozen(settings)).toBe(true);
    expect(gatehouse.config).not.toHaveProperty('widgetsPerHour');
    // A look-alike definition (same name, another object) is not the registered one.
    expect(() => gatehouse.appSettings(defineAppSettings({ ...widgets }))).toThrow(TypeError);
    expect(() => gatehouse.appSettings(defineAppSettings({ ...widgets, app: 'gadgets' }))).toThrow(
      /settings of "gadgets" were not registered/,
    );
  });

  it('refuses, before it opens anything, an app value out of bounds, an unknown one and a clash', async () => {
    await expect(
      createGatehouse({ ...testConfig(), widgetsPerHour: 0 }, { settings: [widgets] }),
    ).rejects.toThrow('widgetsPerHour: got 0; expected an integer from 1 to 99 (env WIDGETS_PER_HOUR)');
    await expect(createGatehouse({ ...testConfig(), widgetsPerHour: 3 })).rejects.toThrow(
      'widgetsPerHour: not a Gatehouse setting',
    );
    await expect(createGatehouse(testConfig(), { settings: [widgets, widgets] })).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it("keeps a revocation in memory for two of the longest app re-check interval, not just the token's life", async () => {
    const clock = createTestClock();
    // Access tokens live 60 s; the app re-checks its open streams every 300 s.
    const config = {
      ...testConfig({ accessTokenTtl: 60, databaseStatementTimeoutMs: 1000, revocationReloadOverlap: 10 }),
    };
    const withApp = await createGatehouse(config, { clock, scheduler: clock, settings: [widgets] });
    closers.push(() => withApp.close());
    const without = await createGatehouse(
      testConfig({ accessTokenTtl: 60, databaseStatementTimeoutMs: 1000, revocationReloadOverlap: 10 }),
      { clock, scheduler: clock },
    );
    closers.push(() => without.close());
    const revoked: string[] = [];
    for (const gatehouse of [withApp, without]) {
      const user = await gatehouse.users.register({
        email: `recheck-${revoked.length}@example.com`,
        password: PASSWORD,
      });
      const tokens = await gatehouseCore(gatehouse).sessions.startBearerSession(user.id, ['me'], CLIENT);
      const valid = await gatehouse.sessions.validate(tokens.accessToken);
      if (!valid.ok) throw new Error(valid.reason);
      await gatehouse.sessions.revokeAll(user.id);
      revoked.push(valid.session.sessionId);
    }
    const [appSession = '', bareSession = ''] = revoked;
    // The scheduled reload may be in flight with the time it started at; the second one reads now.
    const reloadNow = async (gatehouse: Gatehouse) => {
      await gatehouseCore(gatehouse).revocations.reload();
      await gatehouseCore(gatehouse).revocations.reload();
    };
    // Past the access token's life (60 s + 10 s overlap), before two re-checks (600 s).
    clock.advance(120_000);
    await reloadNow(withApp);
    await reloadNow(without);
    expect(withApp.sessions.isRevoked(appSession)).toBe(true);
    expect(without.sessions.isRevoked(bareSession)).toBe(false);
    // And the app's entry goes too once two re-checks have passed: the list stays bounded.
    clock.advance(600_000);
    await reloadNow(withApp);
    expect(withApp.sessions.isRevoked(appSession)).toBe(false);
  });
});

describe('the hourly sweep', () => {
  // Red-team 2026-12g O4: a revoked session (a sign-in displaced by a cap, an app's session ended)
  // stayed with its tokens until its own expiry, up to SESSION_ABSOLUTE_TTL.
  it('O4: deletes a session a day after its revocation, or after the revocation list needs it if longer', async () => {
    const rowAfter = async (accessTokenTtl: number, hours: number) => {
      const clock = createTestClock();
      const gatehouse = await createGatehouse(testConfig({ accessTokenTtl, revocationReloadOverlap: 3600 }), {
        clock,
        scheduler: clock,
      });
      try {
        const core = gatehouseCore(gatehouse);
        const user = await gatehouse.users.register({
          email: `sweep-${accessTokenTtl}@example.com`,
          password: PASSWORD,
        });
        const sessionId = (await core.sessions.startBearerSession(user.id, ['me'], CLIENT)).session.id;
        // A control revoked long before: once it is gone, the last hour's sweep has run.
        const control = (await core.sessions.startBearerSession(user.id, ['me'], CLIENT)).session.id;
        await core.sessionStore.revokeSessions([control], clock() - 30 * 86_400_000);
        await gatehouse.sessions.revokeAll(user.id);
        const live = await core.sessionStore.findSession(sessionId);
        expect(live?.revokedAt).not.toBeNull();
        for (let hour = 0; hour < hours; hour++) clock.advance(3600_000);
        await vi.waitFor(async () => expect(await core.sessionStore.findSession(control)).toBeUndefined());
        await new Promise((resolve) => setImmediate(resolve));
        return (await core.sessionStore.findSession(sessionId)) !== undefined;
      } finally {
        await gatehouse.close();
      }
    };
    expect(await rowAfter(900, 23)).toBe(true);
    expect(await rowAfter(900, 24)).toBe(false);
    // Access tokens of a day and an hour's overlap: the revocation list's first load still needs it.
    expect(await rowAfter(86_400, 24)).toBe(true);
    expect(await rowAfter(86_400, 26)).toBe(false);
  });

  // Race review 2026-12-06 P3: a request in flight when an account was deleted (a logout on another
  // device) wrote its audit row, with its IP and user agent, after the deletion had stripped them.
  it('P3: strips the IP a request in flight wrote after an account was deleted', async () => {
    const clock = createTestClock();
    const gatehouse = await createGatehouse(testConfig(), { clock, scheduler: clock });
    try {
      const core = gatehouseCore(gatehouse);
      const user = await gatehouse.users.register({ email: 'straggler@example.com', password: PASSWORD });
      await core.accountDeletion.deleteAccount(user.id, { by: 'self' });
      // The straggler: written after the deletion's own pass.
      await core.audit.record({ event: 'logout', actorId: user.id, targetId: user.id, ip: '198.51.100.9' });
      const ipsOf = async () =>
        (await core.audit.list({ limit: 10, offset: 0, actorId: user.id })).items.map((item) => item.ip);
      expect(await ipsOf()).toContain('198.51.100.9');
      clock.advance(3600_000);
      await vi.waitFor(async () => expect(await ipsOf()).not.toContain('198.51.100.9'));
    } finally {
      await gatehouse.close();
    }
  });
});

describe('a failed start-up', () => {
  it('leaves no timer, subscription or connection of its own behind', async () => {
    // Operator red-team 2026-12h F1: a step after the revocation list (the SECRET_KEY_PREVIOUS
    // reseal, say, timing out) failed start-up, whose cleanup closed only the mailer, keyring,
    // Redis and database: the list's reload timer kept firing against the closed database, and the
    // server's retries each left one more ("revocation list reload failed", every 5 s, forever).
    const databaseUrl = `sqlite:${join(tempDir('gh-failed-start-'), 'gatehouse.db')}`;
    const config = testConfig({ databaseUrl });
    await (await createGatehouse(config)).close();
    // The reseal's table gone: the migrations count as done, so start-up fails at the reseal.
    const sqlite = new SQLite(databaseUrl.slice('sqlite:'.length));
    sqlite.exec('DROP TABLE mfa_totp');
    sqlite.close();
    const clock = createTestClock();
    const live = new Set<object>();
    const scheduler = {
      setTimeout: (run: () => void, ms: number) => track(clock.setTimeout(run, ms)),
      setInterval: (run: () => void, ms: number) => track(clock.setInterval(run, ms)),
    };
    function track(timer: { cancel(): void }) {
      const handle = {
        cancel: () => {
          live.delete(handle);
          timer.cancel();
        },
      };
      live.add(handle);
      return handle;
    }
    await expect(
      createGatehouse(
        { ...config, secretKeyPrevious: new Uint8Array(randomBytes(32)) },
        { clock, scheduler },
      ),
    ).rejects.toThrow(/mfa_totp/);
    expect(live.size).toBe(0);
  });
});

describe('closing with mail still to send (a graceful shutdown, a rolling deploy)', () => {
  let sink: SmtpSink;
  beforeAll(async () => {
    sink = await startSmtpSink();
  });
  afterAll(async () => {
    await sink.close();
  });

  it('runs the forgot-password look-ups already answered and sends their mail, a retry included, before it closes', async () => {
    const warnings: string[] = [];
    const core = await createGatehouseCore(
      testConfig({ smtpUrl: sink.url, mailFrom: 'gh@example.com', shutdownGracePeriodMs: 10_000 }),
      { onWarning: (message) => void warnings.push(message) },
    );
    await core.accounts.register({ email: 'leaving@example.com', password: PASSWORD });
    await core.accounts.register({ email: 'retried@example.com', password: PASSWORD });
    const caller = { client: { ip: '127.0.0.1', userAgent: 'test' }, onAuditLost: () => {} };
    // The first attempt of this one fails (451): its retry would wait 2 s on the core's clock.
    sink.failNext(1);
    core.lifecycle.requestPasswordReset('retried@example.com', caller);
    // Its first attempt has failed and its retry waits (the mailer says so when it schedules it).
    await vi.waitFor(() => expect(warnings).toContain('mail delivery failed; retrying'), { timeout: 5_000 });
    expect(core.mailer.pending()).toBe(1);
    // Answered 202 a moment before the shutdown: its look-up has not even run yet.
    core.lifecycle.requestPasswordReset('leaving@example.com', caller);
    await core.close();
    const recipients = sink.messages.flatMap((mail) => recipientsOf(mail));
    expect(recipients.sort()).toEqual(['leaving@example.com', 'retried@example.com']);
  });
});
