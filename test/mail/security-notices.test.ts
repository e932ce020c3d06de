import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadMailTemplates } from '../../src/mail/mail-templates.js';
import type { MailMessage, MailTransport } from '../../src/mail/mail-transport.js';
import { createMailer } from '../../src/mail/mailer.js';
import {
  createSecurityNotices,
  NOTICE_LEASE_MS,
  NOTICE_MAX_AGE_MS,
  NOTICE_MAX_PENDING_PER_ADDRESS,
  NOTICE_SWEEP_INTERVAL_MS,
  type SecurityNotices,
} from '../../src/mail/security-notices.js';
import { createNoticeStore } from '../../src/mail/storage/notice-store.js';
import type { Database } from '../../src/storage/open-database.js';
import { createTestClock, type TestClock } from '../../src/testing.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

const templates = loadMailTemplates(undefined);

/** A relay the test drives: `up` delivers (recorded), down rejects, `hang` never answers. */
function relay() {
  const sent: MailMessage[] = [];
  let state: 'up' | 'down' | 'hang' = 'up';
  let attempts = 0;
  const transport: MailTransport = {
    kind: 'smtp',
    async send(message) {
      attempts++;
      if (state === 'down') throw new Error('connection refused');
      if (state === 'hang') return new Promise<void>(() => {});
      sent.push(message);
    },
    check: async () => {},
    close() {},
  };
  return {
    transport,
    sent,
    attempts: () => attempts,
    set(next: 'up' | 'down' | 'hang') {
      state = next;
    },
  };
}

/** One instance: its own mailer, clock and notices over `database`. */
function instance(
  database: Database,
  clock: TestClock,
  transport: MailTransport,
  maxQueued = 100,
  wall: () => number = clock,
) {
  const warnings: string[] = [];
  const warn = (message: string) => void warnings.push(message);
  const mailer = createMailer({
    transport,
    templates,
    publicUrl: 'https://auth.example.com',
    maxQueued,
    scheduler: clock,
    warn,
  });
  const notices = createSecurityNotices({ database, mailer, maxQueued, clock: wall, scheduler: clock, warn });
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

describe.each(engines)('security notices on $name', ({ name }) => {
  let test: TestDatabase;
  let clock: TestClock;
  const opened: SecurityNotices[] = [];
  /** `own`: a scheduler of its own, never advanced: the instance "dies" (its timers never fire). */
  const open = (transport: MailTransport, maxQueued?: number, own?: TestClock) => {
    const made = instance(test.database, own ?? clock, transport, maxQueued);
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
    const crashed = open(dead.transport, undefined, createTestClock(clock()));
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
    const crashed = open(relay().transport, undefined, createTestClock(clock()));
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
      await commitNotices(test.database, first.notices, `r${round}@example.com`, 5);
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

  it(`keeps at most ${NOTICE_MAX_PENDING_PER_ADDRESS} pending per address (any spelling), and warns`, async () => {
    const mail = relay();
    mail.set('down');
    const { notices, warnings } = open(mail.transport);
    await commitNotices(test.database, notices, 'loud@example.com', NOTICE_MAX_PENDING_PER_ADDRESS);
    await commitNotices(test.database, notices, 'LOUD@example.com', 3);
    await commitNotices(test.database, notices, 'quiet@example.com');
    expect(await pending(test.database)).toBe(NOTICE_MAX_PENDING_PER_ADDRESS + 1);
    expect(warnings.filter((warning) => warning.includes('at their cap'))).toHaveLength(3);
  });

  it('deletes notices undelivered for three days, with a warning', async () => {
    const mail = relay();
    mail.set('down');
    // Written three days ago by an instance since gone; swept by one running now (a sweep clock
    // follows the wall clock two intervals a run, so it starts where its instance starts).
    const gone = open(mail.transport, undefined, createTestClock(clock()));
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
  });

  it('a wall clock stepped days ahead deletes nothing young (the sweep clock moves two intervals a run)', async () => {
    const mail = relay();
    mail.set('down');
    let step = 0;
    const made = instance(test.database, clock, mail.transport, 100, () => clock() + step);
    opened.push(made.notices);
    await commitNotices(test.database, made.notices, 'young@example.com');
    step = NOTICE_MAX_AGE_MS + 24 * 60 * 60_000;
    await made.notices.sweep();
    await made.notices.sweep();
    expect(await pending(test.database)).toBe(1);
    expect(made.warnings).not.toContain('security notices not delivered within three days; dropped');
  });

  it('drops a row it cannot render (an unknown kind, values that are not strings) instead of claiming it for ever', async () => {
    const mail = relay();
    const { notices, warnings } = open(mail.transport);
    const store = createNoticeStore(test.database.db, test.database.dialect);
    await store.add({ kind: 'no_such_kind', recipient: 'x@example.com', values: '{}' }, clock(), 10);
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
    await commitNotices(test.database, notices, 'fine@example.com');
    await notices.sweep();
    await notices.idle();
    expect(mail.sent.map((message) => message.to)).toEqual(['fine@example.com']);
    expect(warnings.filter((warning) => warning === 'unreadable security notice dropped')).toHaveLength(3);
    expect(await pending(test.database)).toBe(0);
  });

  it('leaves half of a full mail queue to link mails, and takes the rest as deliveries make room', async () => {
    const mail = relay();
    const { notices } = open(mail.transport, 10);
    await commitNotices(test.database, notices, 'many@example.com', 1);
    for (let i = 0; i < 11; i++) await commitNotices(test.database, notices, `m${i}@example.com`);
    await notices.sweep();
    await notices.idle();
    expect(mail.sent).toHaveLength(12);
    expect(await pending(test.database)).toBe(0);
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

/** Polls `check` until it holds (async work in the background: a claim, a delivery). */
async function waitUntil(check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('condition not reached');
}
