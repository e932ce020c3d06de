import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadMailTemplates } from '../../src/mail/mail-templates.js';
import type { MailMessage, MailTransport } from '../../src/mail/mail-transport.js';
import { createMailer } from '../../src/mail/mailer.js';
import {
  createSecurityNotices,
  NOTICE_KINDS,
  NOTICE_LEASE_MS,
  NOTICE_MAX_AGE_MS,
  NOTICE_MAX_PENDING_PER_KIND,
  NOTICE_SWEEP_INTERVAL_MS,
  type SecurityNotices,
} from '../../src/mail/security-notices.js';
import { createNoticeStore } from '../../src/mail/storage/notice-store.js';
import type { Database } from '../../src/storage/open-database.js';
import { createTestClock, type TestClock } from '../../src/testing.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

const templates = loadMailTemplates(undefined);

/**
 * A relay the test drives: `up` delivers (recorded), `down` fails, `refuse` answers 550 to the
 * recipient (as nodemailer reports it), `hang` answers only once `release` is called.
 */
function relay() {
  const sent: MailMessage[] = [];
  let state: 'up' | 'down' | 'hang' | 'refuse' = 'up';
  let attempts = 0;
  const hung: (() => void)[] = [];
  const transport: MailTransport = {
    kind: 'smtp',
    async send(message) {
      attempts++;
      if (state === 'down') throw new Error('connection refused');
      if (state === 'refuse') {
        throw Object.assign(new Error("Can't send mail - all recipients were rejected"), {
          code: 'EENVELOPE',
          command: 'RCPT TO',
          responseCode: 550,
          response: '550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown',
        });
      }
      if (state === 'hang') await new Promise<void>((resolve) => hung.push(resolve));
      sent.push(message);
    },
    check: async () => {},
    close() {},
  };
  return {
    transport,
    sent,
    attempts: () => attempts,
    set(next: 'up' | 'down' | 'hang' | 'refuse') {
      state = next;
    },
    /** Lets the sends waiting on a `hang` answer (delivered). */
    release() {
      state = 'up';
      for (const resolve of hung.splice(0)) resolve();
    },
  };
}

/** How an {@link instance} differs from the default one. */
interface InstanceOptions {
  /** `MAIL_QUEUE_MAX`. @default 100 */
  maxQueued?: number;
  /** The wall clock its notices read. @default the scheduler's clock */
  wall?: () => number;
  /** The mailer's retries. @default MAIL_RETRY_DELAYS_MS */
  retryDelaysMs?: readonly number[];
  /** @default true */
  deliver?: boolean;
}

/** One instance: its own mailer, clock and notices over `database`. */
function instance(
  database: Database,
  clock: TestClock,
  transport: MailTransport,
  options: InstanceOptions = {},
) {
  const { maxQueued = 100, wall = clock, retryDelaysMs, deliver } = options;
  const warnings: string[] = [];
  const warn = (message: string) => void warnings.push(message);
  const mailer = createMailer({
    transport,
    templates,
    publicUrl: 'https://auth.example.com',
    maxQueued,
    scheduler: clock,
    warn,
    ...(retryDelaysMs === undefined ? {} : { retryDelaysMs }),
  });
  const notices = createSecurityNotices({
    database,
    mailer,
    maxQueued,
    clock: wall,
    scheduler: clock,
    warn,
    ...(deliver === undefined ? {} : { deliver }),
  });
  return { mailer, notices, warnings };
}

/** Writes `count` password notices to `to` in one committed transaction, as a change would. */
async function commitNotices(database: Database, notices: SecurityNotices, to: string, count = 1) {
  await database.transaction(async (trx) => {
    const writer = notices.writer(trx);
    for (let i = 0; i < count; i++) await writer.add('password_changed', to, { when: `t${i}` });
  });
}

const pending = (database: Database) => createNoticeStore(database.db, database.dialect).count();

/** Each stored notice's next take and failures, oldest first. */
const rowState = async (database: Database) =>
  (
    await database.db
      .selectFrom('pending_notices')
      .select(['claimed_until', 'failures'])
      .orderBy('created_at')
      .execute()
  ).map((row) => ({ claimed_until: Number(row.claimed_until), failures: Number(row.failures) }));

describe.each(engines)('security notices on $name', ({ name }) => {
  let test: TestDatabase;
  let clock: TestClock;
  const opened: SecurityNotices[] = [];
  /** `own`: a scheduler of its own, never advanced: the instance "dies" (its timers never fire). */
  const open = (transport: MailTransport, options: InstanceOptions & { own?: TestClock } = {}) => {
    const made = instance(test.database, options.own ?? clock, transport, options);
    opened.push(made.notices);
    return made;
  };
  beforeEach(async () => {
    test = await createTestDatabase(name);
    clock = createTestClock();
  });
  afterEach(async () => {
    for (const notices of opened.splice(0)) await notices.close();
    await test.dispose();
  });

  it('writes nothing when the change rolls back, and mails and deletes a committed notice', async () => {
    const mail = relay();
    const { notices } = open(mail.transport);
    await expect(
      test.database.transaction(async (trx) => {
        await notices.writer(trx).add('password_changed', 'gone@example.com', { when: 'never' });
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    notices.flush();
    await notices.idle();
    expect(mail.sent).toEqual([]);
    expect(await pending(test.database)).toBe(0);

    await commitNotices(test.database, notices, 'Owner@Example.com');
    expect(await pending(test.database)).toBe(1);
    notices.flush();
    await notices.idle();
    expect(mail.sent.map((message) => [message.to, message.subject])).toEqual([
      ['Owner@Example.com', 'Your password was changed'],
    ]);
    expect(mail.sent[0]?.text).toContain('changed at t0');
    expect(await pending(test.database)).toBe(0);
  });

  it('a process that dies after the commit: another instance sends the notice once the lease ends', async () => {
    const dead = relay();
    dead.set('hang');
    const crashed = open(dead.transport, { own: createTestClock(clock()) });
    await commitNotices(test.database, crashed.notices, 'victim@example.com');
    crashed.notices.flush();
    // The first instance took it and is stuck in its delivery (then "dies": never closed).
    await waitUntil(async () => (await claimedCount(test.database, clock())) === 1);

    const live = relay();
    const other = open(live.transport);
    await other.notices.sweep();
    await other.notices.idle();
    expect(live.sent).toEqual([]);

    clock.advance(NOTICE_LEASE_MS);
    await other.notices.sweep();
    await other.notices.idle();
    expect(live.sent.map((message) => message.to)).toEqual(['victim@example.com']);
    expect(await pending(test.database)).toBe(0);
  });

  it('a notice written but never claimed (a crash right after the commit) is sent by the next start at once', async () => {
    const crashed = open(relay().transport, { own: createTestClock(clock()) });
    await commitNotices(test.database, crashed.notices, 'restart@example.com');
    // No flush: the process died between the commit and the claim.
    const live = relay();
    const restarted = open(live.transport);
    // Its first sweep runs on the first tick of its scheduler.
    clock.advance(1);
    await waitUntil(() => live.sent.length === 1);
    await restarted.notices.idle();
    expect(live.sent[0]?.to).toBe('restart@example.com');
    expect(await pending(test.database)).toBe(0);
  });

  it('a closing instance gives back what it took, and another sends it without waiting for the lease', async () => {
    const stuck = relay();
    stuck.set('hang');
    const closing = open(stuck.transport);
    await commitNotices(test.database, closing.notices, 'deploy@example.com');
    closing.notices.flush();
    await waitUntil(async () => (await claimedCount(test.database, clock())) === 1);
    await closing.notices.close();
    expect(await claimedCount(test.database, clock())).toBe(0);

    const live = relay();
    const next = open(live.transport);
    await next.notices.sweep();
    await next.notices.idle();
    expect(live.sent.map((message) => message.to)).toEqual(['deploy@example.com']);
  });

  it('a closing instance withdraws what is still in its mail queue: only the notice with the relay may go out twice', async () => {
    const stuck = relay();
    stuck.set('hang');
    const closing = open(stuck.transport);
    for (const to of ['one@example.com', 'two@example.com', 'three@example.com']) {
      await commitNotices(test.database, closing.notices, to);
    }
    closing.notices.flush();
    await waitUntil(async () => (await claimedCount(test.database, clock())) === 3);
    await waitUntil(() => stuck.attempts() === 1);
    await closing.notices.close();
    // Given back, all three: another instance sends them now.
    expect(await claimedCount(test.database, clock())).toBe(0);
    // The two still queued are out of this mailer's queue; the relay's one goes on.
    expect(closing.mailer.pending()).toBe(1);
    stuck.release();
    await closing.mailer.idle();
    expect(stuck.sent).toHaveLength(1);
  });

  it('a relay down longer than the mailer retries: the notice stays stored and goes out when it is back', async () => {
    const mail = relay();
    mail.set('down');
    const { notices, mailer } = open(mail.transport);
    await commitNotices(test.database, notices, 'patient@example.com');
    notices.flush();
    await waitUntil(() => mailer.pending() === 1);
    // Every retry of the mailer fails (about five minutes), then it drops its copy.
    for (let i = 0; i < 100 && mailer.pending() > 0; i++) {
      clock.advance(10_000);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(mailer.pending()).toBe(0);
    expect(mail.attempts()).toBe(5);
    expect(await pending(test.database)).toBe(1);
    await notices.idle();
    expect(notices.stats()).toEqual({ held: 0, delivered: 0, failedTakes: 1, expired: 0 });
    mail.set('up');
    clock.advance(NOTICE_LEASE_MS + NOTICE_SWEEP_INTERVAL_MS);
    await waitUntil(() => mail.sent.length === 1);
    await notices.idle();
    expect(await pending(test.database)).toBe(0);
  });

  it('two instances sweeping at once send each notice once', async () => {
    const a = relay();
    const b = relay();
    const first = open(a.transport);
    const second = open(b.transport);
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 5; i++)
        await commitNotices(test.database, first.notices, `r${round}.${i}@example.com`);
    }
    await Promise.all([
      first.notices.sweep(),
      second.notices.sweep(),
      first.notices.sweep(),
      second.notices.sweep(),
    ]);
    await Promise.all([first.notices.idle(), second.notices.idle()]);
    // Deliveries made room for the rest: whatever is left goes in later sweeps, still once each.
    for (let i = 0; i < 3; i++) {
      await Promise.all([first.notices.sweep(), second.notices.sweep()]);
      await Promise.all([first.notices.idle(), second.notices.idle()]);
    }
    const sent = [...a.sent, ...b.sent].map((message) => `${message.to} ${message.text}`);
    expect(sent).toHaveLength(30);
    expect(new Set(sent).size).toBe(30);
    expect(await pending(test.database)).toBe(0);
  });

  it(`keeps at most ${NOTICE_MAX_PENDING_PER_KIND} of a kind pending per address (any spelling); other kinds still go in`, async () => {
    const mail = relay();
    mail.set('down');
    const { notices, warnings } = open(mail.transport);
    await commitNotices(test.database, notices, 'loud@example.com', NOTICE_MAX_PENDING_PER_KIND);
    await commitNotices(test.database, notices, 'LOUD@example.com', 3);
    await commitNotices(test.database, notices, 'quiet@example.com');
    expect(await pending(test.database)).toBe(NOTICE_MAX_PENDING_PER_KIND + 1);
    expect(warnings.filter((warning) => warning.includes('at their cap'))).toHaveLength(3);
    // A burst of one kind (an intruder's email change requests) does not keep the change itself out.
    await test.database.transaction(async (trx) => {
      await notices
        .writer(trx)
        .add('email_changed', 'Loud@example.com', { new_email: 'x', account_email: 'y' });
    });
    expect(await pending(test.database)).toBe(NOTICE_MAX_PENDING_PER_KIND + 2);
  });

  it('deletes notices undelivered for three days, with a warning', async () => {
    const mail = relay();
    mail.set('down');
    // Written three days ago by an instance since gone; swept by one running now (a sweep clock
    // follows the wall clock two intervals a run, so it starts where its instance starts).
    const gone = open(mail.transport, { own: createTestClock(clock()) });
    await commitNotices(test.database, gone.notices, 'old@example.com', 2);
    clock.advance(NOTICE_MAX_AGE_MS - 1);
    const { notices, warnings } = open(mail.transport);
    await notices.sweep();
    expect(await pending(test.database)).toBe(2);
    clock.advance(2);
    await notices.sweep();
    await notices.sweep();
    expect(await pending(test.database)).toBe(0);
    expect(warnings).toContain('security notices not delivered within three days; dropped');
    expect(notices.stats().expired).toBe(2);
  });

  it('a wall clock stepped days ahead deletes nothing young (the sweep clock moves two intervals a run)', async () => {
    const mail = relay();
    mail.set('down');
    let step = 0;
    const made = open(mail.transport, { wall: () => clock() + step });
    await commitNotices(test.database, made.notices, 'young@example.com');
    step = NOTICE_MAX_AGE_MS + 24 * 60 * 60_000;
    await made.notices.sweep();
    await made.notices.sweep();
    expect(await pending(test.database)).toBe(1);
    expect(made.warnings).not.toContain('security notices not delivered within three days; dropped');
  });

  it('drops a row of a known kind it cannot render; leaves a kind it does not know for a newer instance', async () => {
    const mail = relay();
    const { notices, warnings } = open(mail.transport);
    const store = createNoticeStore(test.database.db, test.database.dialect);
    await store.add(
      { kind: 'password_changed', recipient: 'y@example.com', values: '{"when":1}' },
      clock(),
      10,
    );
    await store.add(
      { kind: 'password_changed', recipient: 'z@example.com', values: 'not json' },
      clock(),
      10,
    );
    await store.add({ kind: 'from_a_newer_version', recipient: 'x@example.com', values: '{}' }, clock(), 10);
    await store.add({ kind: 'from_a_newer_version', recipient: 'w@example.com', values: '{}' }, clock(), 10);
    await commitNotices(test.database, notices, 'fine@example.com');
    await notices.sweep();
    await notices.idle();
    expect(mail.sent.map((message) => message.to)).toEqual(['fine@example.com']);
    expect(warnings.filter((warning) => warning === 'unreadable security notice dropped')).toHaveLength(2);
    // A newer version's kinds are not even taken (an older instance would only delay them).
    expect(
      await test.database.db
        .selectFrom('pending_notices')
        .select('claimed_until')
        .where('kind', '=', 'from_a_newer_version')
        .execute(),
    ).toEqual([{ claimed_until: 0 }, { claimed_until: 0 }]);
    const left = await test.database.db.selectFrom('pending_notices').select('recipient').execute();
    expect(left.map((row) => row.recipient).sort()).toEqual(['w@example.com', 'x@example.com']);
  });

  it('takes the oldest due notice first, a postponed one included', async () => {
    const store = createNoticeStore(test.database.db, test.database.dialect);
    await store.add({ kind: 'password_changed', recipient: 'old@example.com', values: '{}' }, clock(), 10);
    const [old] = await store.claim(clock(), clock() + 1000, 1, NOTICE_KINDS);
    await store.postpone(old?.id ?? '', clock() + 1000, clock() + 5000, true);
    for (let i = 0; i < 3; i++) {
      await store.add(
        { kind: 'password_changed', recipient: `new${i}@example.com`, values: '{}' },
        clock() + 1 + i,
        10,
      );
    }
    const taken = await store.claim(clock() + 5000, clock() + 9000, 1, NOTICE_KINDS);
    expect(taken.map((row) => [row.recipient, row.failures])).toEqual([['old@example.com', 1]]);
  });

  it('takes half of what the mail queue has free, and one even when it is full (fair eviction makes room)', async () => {
    const mail = relay();
    mail.set('hang');
    const { notices, mailer } = open(mail.transport, { maxQueued: 10 });
    // Link mails of one flood (one source): one in flight at the relay, five waiting.
    const link = (i: number) =>
      mailer.send(
        'reset_password',
        `flood${i}@example.com`,
        { link: 'l', minutes: '1' },
        { source: 'ip:flood' },
      );
    for (let i = 0; i < 6; i++) expect(link(i)).toBe(true);
    for (let i = 0; i < 12; i++) await commitNotices(test.database, notices, `m${i}@example.com`);
    notices.flush();
    await waitUntil(() => mailer.pending() === 8);
    expect(await claimedCount(test.database, clock())).toBe(2);
    // Full: the flood's oldest waiting mail gives way to one notice per claim.
    for (let i = 6; i < 8; i++) expect(link(i)).toBe(true);
    expect(mailer.pending()).toBe(10);
    notices.flush();
    await waitUntil(async () => (await claimedCount(test.database, clock())) === 3);
    expect(mailer.pending()).toBe(10);
    // Once the relay answers, every notice goes out as deliveries make room.
    mail.release();
    await waitUntil(
      () => mail.sent.filter((message) => message.subject.includes('password was changed')).length === 12,
    );
    await notices.idle();
    expect(await pending(test.database)).toBe(0);
  });

  it('with MAIL_QUEUE_MAX=1 notices still go out', async () => {
    const mail = relay();
    const { notices } = open(mail.transport, { maxQueued: 1 });
    await commitNotices(test.database, notices, 'tiny@example.com', 2);
    notices.flush();
    await waitUntil(() => mail.sent.length === 2);
    await notices.idle();
    expect(await pending(test.database)).toBe(0);
  });

  it('a notice queued longer than its lease keeps it: sent once, never taken by another instance', async () => {
    const mail = relay();
    mail.set('hang');
    const { notices, mailer } = open(mail.transport);
    expect(mailer.send('reset_password', 'ahead@example.com', { link: 'l', minutes: '1' })).toBe(true);
    await commitNotices(test.database, notices, 'patient@example.com');
    notices.flush();
    await waitUntil(() => mailer.pending() === 2);
    const otherRelay = relay();
    const other = open(otherRelay.transport, { own: createTestClock(clock()) });
    for (let i = 0; i < 3; i++) {
      // The sweeps every minute renew the lease while the mailer holds the notice.
      for (let minute = 0; minute < 10; minute++) {
        clock.advance(NOTICE_SWEEP_INTERVAL_MS);
        await notices.sweep();
      }
      await other.notices.sweep();
      expect(mailer.pending()).toBe(2);
    }
    expect(otherRelay.sent).toEqual([]);
    mail.release();
    await notices.idle();
    expect(mail.sent.map((message) => message.to)).toEqual(['ahead@example.com', 'patient@example.com']);
    expect(await pending(test.database)).toBe(0);
  });

  it('a recipient the relay refuses (550 5.1.1) costs one attempt per take, and the notice waits its backoff', async () => {
    const mail = relay();
    mail.set('refuse');
    const { notices, warnings } = open(mail.transport);
    await commitNotices(test.database, notices, 'nobody@example.com');
    notices.flush();
    await notices.idle();
    expect(mail.attempts()).toBe(1);
    // Not deleted: a relay that refuses everyone at RCPT TO (relaying denied) must not empty the table.
    expect(await rowState(test.database)).toEqual([{ claimed_until: clock() + 10 * 60_000, failures: 1 }]);
    expect(warnings.filter((warning) => warning.includes('refused'))).toEqual([
      'mail refused by the relay for its recipient; dropped',
      'security notice refused by the relay for its recipient; retried later',
    ]);
  });

  it('a notice a flood evicts from the full queue is offered again at the next sweep, no failure counted', async () => {
    const mail = relay();
    mail.set('hang');
    const { notices, mailer } = open(mail.transport, { maxQueued: 3 });
    const link = (i: number) =>
      mailer.send(
        'reset_password',
        `flood${i}@example.com`,
        { link: 'l', minutes: '1' },
        { source: `ip:${i}` },
      );
    expect(link(0)).toBe(true);
    // In flight before the notice comes: a message in flight counts for no source. Were it still
    // waiting when the queue fills, its source (the first of three holding one each) would be the
    // one to give way, not the notice's; whether the mailer's pump (a setImmediate) had started by
    // then depended on the order of timers under load, and the test failed once in CI so.
    await waitUntil(() => mail.attempts() === 1);
    await commitNotices(test.database, notices, 'victim@example.com');
    notices.flush();
    await waitUntil(() => mailer.pending() === 2);
    expect(link(1)).toBe(true);
    // Full: each source holds one; the oldest (the notice's) gives way.
    expect(link(2)).toBe(true);
    await waitUntil(
      async () => (await rowState(test.database))[0]?.claimed_until === clock() + NOTICE_SWEEP_INTERVAL_MS,
    );
    expect(await rowState(test.database)).toEqual([
      { claimed_until: clock() + NOTICE_SWEEP_INTERVAL_MS, failures: 0 },
    ]);
    mail.release();
  });

  it('a notice still in its mailer when its lease lapsed (renewals failed) is not queued a second time', async () => {
    const mail = relay();
    mail.set('hang');
    const { notices, mailer } = open(mail.transport);
    expect(mailer.send('reset_password', 'ahead@example.com', { link: 'l', minutes: '1' })).toBe(true);
    await commitNotices(test.database, notices, 'once@example.com');
    notices.flush();
    await waitUntil(() => mailer.pending() === 2);
    // As if no renewal reached the database for a whole lease.
    await test.database.db.updateTable('pending_notices').set({ claimed_until: 0 }).execute();
    notices.flush();
    await waitUntil(async () => (await rowState(test.database))[0]?.claimed_until !== 0);
    expect(mailer.pending()).toBe(2);
    mail.release();
    await notices.idle();
    expect(mail.sent.map((message) => message.to)).toEqual(['ahead@example.com', 'once@example.com']);
    expect(await pending(test.database)).toBe(0);
  });

  it('waits longer after each failed take: 10, then 20 minutes', async () => {
    const mail = relay();
    mail.set('down');
    // One attempt per take, so each take fails at once.
    const { notices } = open(mail.transport, { maxQueued: 10, retryDelaysMs: [] });
    await commitNotices(test.database, notices, 'backoff@example.com');
    const nextTake = async () =>
      Number(
        (
          await test.database.db
            .selectFrom('pending_notices')
            .select('claimed_until')
            .executeTakeFirstOrThrow()
        ).claimed_until,
      );
    notices.flush();
    await waitUntil(async () => mail.attempts() === 1 && (await nextTake()) === clock() + 10 * 60_000);
    await notices.idle();
    clock.advance(10 * 60_000 - NOTICE_SWEEP_INTERVAL_MS);
    await notices.idle();
    expect(mail.attempts()).toBe(1);
    clock.advance(NOTICE_SWEEP_INTERVAL_MS);
    await waitUntil(async () => mail.attempts() === 2 && (await nextTake()) === clock() + 20 * 60_000);
    await notices.idle();
  });

  it('an instance that only writes (the CLI) takes nothing', async () => {
    const mail = relay();
    const { notices: writeOnly } = open(mail.transport, { maxQueued: 10, deliver: false });
    await commitNotices(test.database, writeOnly, 'later@example.com');
    writeOnly.flush();
    await writeOnly.sweep();
    clock.advance(NOTICE_SWEEP_INTERVAL_MS * 3);
    await writeOnly.idle();
    expect(mail.sent).toEqual([]);
    expect(await claimedCount(test.database, 0)).toBe(0);
    expect(await pending(test.database)).toBe(1);
  });
});

describe('security notices when the database fails', () => {
  it('a claim that fails warns and never throws; the next sweep after recovery sends', async () => {
    const test = await createTestDatabase('sqlite');
    const clock = createTestClock();
    const mail = relay();
    const { notices, warnings } = instance(test.database, clock, mail.transport);
    await commitNotices(test.database, notices, 'later@example.com');
    const broken = instance(
      { ...test.database, db: test.database.db.withPlugin(failingPlugin()) } as Database,
      clock,
      mail.transport,
    );
    await broken.notices.sweep();
    await broken.notices.idle();
    expect(broken.warnings).toEqual([
      'old security notices not swept',
      'security notices not claimed; retrying on the next sweep',
    ]);
    expect(mail.sent).toEqual([]);
    await notices.sweep();
    await notices.idle();
    expect(mail.sent.map((message) => message.to)).toEqual(['later@example.com']);
    expect(warnings).toEqual([]);
    await broken.notices.close();
    await notices.close();
    await test.dispose();
  });
});

/** A Kysely plugin whose every query fails, as a database that went away would. */
function failingPlugin() {
  return {
    transformQuery(): never {
      throw new Error('database unavailable');
    },
    transformResult: async <T>(args: { result: T }) => args.result,
  };
}

/** Rows leased beyond `now` (taken by an instance that has not delivered them). */
async function claimedCount(database: Database, now: number): Promise<number> {
  const rows = await database.db
    .selectFrom('pending_notices')
    .select('id')
    .where('claimed_until', '>', now)
    .execute();
  return rows.length;
}

/**
 * Polls `check` until it holds (async work in the background: a claim, a delivery), for up to 15 s
 * of wall time: a count of 500 polls (≈ 2.5 s) ran out once in CI on two busy cores.
 */
async function waitUntil(check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('condition not reached');
}
