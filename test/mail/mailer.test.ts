import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { loadMailTemplates } from '../../src/mail/mail-templates.js';
import {
  createSmtpTransport,
  type MailMessage,
  type MailTransport,
  requiresStartTls,
} from '../../src/mail/mail-transport.js';
import { createMailer, MAIL_MAX_QUEUED_PER_ADDRESS } from '../../src/mail/mailer.js';
import { createOutboxTransport, readOutbox } from '../../src/mail/outbox.js';
import { createTestClock } from '../../src/testing.js';
import { nonLoopbackIPv4, type SmtpSink, startSmtpSink } from '../support/smtp-sink.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();
const templates = loadMailTemplates(undefined);

/** A relay that takes every message and never answers: what it is given stays in flight. */
const NEVER_ANSWERS: MailTransport = {
  kind: 'outbox',
  check: async () => {},
  send: () => new Promise(() => {}),
  close() {},
};

/**
 * `send` for the fairness tests: a reset to `to` from `source`, labelled so its outcome lands in
 * `outcomes` as "<label> <outcome>".
 */
function labelledSender(mailer: ReturnType<typeof createMailer>, outcomes: string[]) {
  return (label: string, to: string, source: string, fromStranger: boolean) =>
    mailer.send(
      'reset_password',
      to,
      { link: mailer.link('reset-password', label), minutes: '30' },
      { source, fromStranger, onSettled: (outcome) => outcomes.push(`${label} ${outcome}`) },
    );
}

function mailerOver(transport: MailTransport, overrides: { maxQueued?: number; warnings?: string[] } = {}) {
  const clock = createTestClock();
  const warnings = overrides.warnings ?? [];
  const mailer = createMailer({
    transport,
    templates,
    publicUrl: 'https://auth.example.com',
    maxQueued: overrides.maxQueued ?? 10,
    scheduler: clock,
    warn: (message, detail) => void warnings.push(`${message} ${JSON.stringify(detail ?? {})}`),
  });
  return { mailer, clock, warnings };
}

describe('SMTP delivery (a real SMTP server)', () => {
  let sink: SmtpSink;
  beforeAll(async () => {
    sink = await startSmtpSink();
  });
  afterAll(async () => sink.close());

  it('sends plain-text and HTML bodies with the link from PUBLIC_URL', async () => {
    const transport = createSmtpTransport({
      url: sink.url,
      from: 'Gatehouse <gh@example.com>',
      timeoutMs: 5000,
    });
    const { mailer } = mailerOver(transport);
    const link = mailer.link('reset-password', 'tok_123-abc');
    expect(link).toBe('https://auth.example.com/#/reset-password?token=tok_123-abc');
    expect(mailer.send('reset_password', 'ada@example.com', { link, minutes: '30' })).toBe(true);
    const mail = await sink.waitForMail('ada@example.com', 'Reset your password');
    expect(mail.from?.text).toContain('gh@example.com');
    expect(mail.text).toContain(link);
    expect(mail.html).toContain(`href="${link}"`);
    await mailer.idle();
    mailer.close();
  });

  it('retries a refused delivery with backoff, without logging the link', async () => {
    const transport = createSmtpTransport({ url: sink.url, from: 'gh@example.com', timeoutMs: 5000 });
    const { mailer, clock, warnings } = mailerOver(transport);
    sink.failNext(1);
    mailer.send('verify_email', 'bob@example.com', {
      link: mailer.link('verify-email', 'SECRETTOKEN123456789'),
      hours: '24',
    });
    // The first attempt fails and a retry waits on the (test) clock.
    while (warnings.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(warnings[0]).toMatch(/retrying/);
    expect(warnings.join('\n')).not.toContain('SECRETTOKEN');
    expect(mailer.pending()).toBe(1);
    clock.advance(2_000);
    const mail = await sink.waitForMail('bob@example.com');
    expect(mail.text).toContain('SECRETTOKEN123456789');
    await mailer.idle();
    mailer.close();
  });

  it('drops at once a message whose recipient the relay refuses for good (550 at RCPT TO)', async () => {
    const transport = createSmtpTransport({ url: sink.url, from: 'gh@example.com', timeoutMs: 5000 });
    const { mailer, warnings } = mailerOver(transport);
    // Postfix's wording, which repeats the address: warnings must not (red-team 2026-12k P3).
    sink.refuseRecipient(
      'gone@example.com',
      550,
      '5.1.1 <gone@example.com>: Recipient address rejected: User unknown',
    );
    const outcomes: string[] = [];
    expect(
      mailer.send(
        'password_changed',
        'gone@example.com',
        { when: 'now' },
        { onSettled: (o) => outcomes.push(o) },
      ),
    ).toBe(true);
    await mailer.idle();
    expect(outcomes).toEqual(['rejected']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^mail refused by the relay for its recipient; dropped/);
    expect(warnings[0]).toContain('5.1.1 <address>');
    expect(warnings.join('\n')).not.toContain('gone@example.com');
    mailer.close();
  });

  it('retries a 5xx at RCPT TO that is the relay’s (554 5.7.1 relay access denied), and a bare 550', async () => {
    const transport = createSmtpTransport({ url: sink.url, from: 'gh@example.com', timeoutMs: 5000 });
    const { mailer, warnings } = mailerOver(transport);
    sink.refuseRecipient('relay-denied@example.com', 554, '5.7.1 Relay access denied');
    sink.refuseRecipient('bare@example.com', 550, 'Mailbox unavailable');
    const outcomes: string[] = [];
    for (const to of ['relay-denied@example.com', 'bare@example.com']) {
      mailer.send('password_changed', to, { when: 'now' }, { onSettled: (o) => outcomes.push(o) });
    }
    while (warnings.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(warnings.every((warning) => /retrying/.test(warning))).toBe(true);
    expect(mailer.pending()).toBe(2);
    mailer.close();
    expect(outcomes).toEqual(['dropped', 'dropped']);
  });

  it('retries a 5xx that is not the recipient’s (the relay refused our credentials)', async () => {
    const refusing = await startSmtpSink();
    refusing.refuseAuth();
    try {
      const transport = createSmtpTransport({
        url: refusing.url.replace('smtp://', 'smtp://user:wrong@'),
        from: 'gh@example.com',
        timeoutMs: 5000,
      });
      const { mailer, warnings } = mailerOver(transport);
      const outcomes: string[] = [];
      mailer.send(
        'password_changed',
        'kept@example.com',
        { when: 'now' },
        { onSettled: (o) => outcomes.push(o) },
      );
      while (warnings.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(warnings[0]).toMatch(/retrying/);
      expect(mailer.pending()).toBe(1);
      mailer.close();
      expect(outcomes).toEqual(['dropped']);
    } finally {
      await refusing.close();
    }
  });

  it('gives up on an unreachable server after the retries, never blocking the sender', async () => {
    // A port nobody listens on: connection refused at once.
    const transport = createSmtpTransport({
      url: 'smtp://127.0.0.1:1',
      from: 'gh@example.com',
      timeoutMs: 500,
    });
    const { mailer, clock, warnings } = mailerOver(transport);
    expect(mailer.send('password_changed', 'c@example.com', { when: 'now' })).toBe(true);
    for (let attempt = 0; attempt < 5; attempt += 1) {
      while (warnings.length <= attempt) await new Promise((resolve) => setTimeout(resolve, 5));
      clock.advance(300_000);
    }
    await mailer.idle();
    expect(warnings.at(-1)).toMatch(/dropped/);
    expect(mailer.pending()).toBe(0);
    mailer.close();
  });
});

describe('STARTTLS on a network path (RFC 3207 §6, RFC 8314 §3)', () => {
  it('is required by default for smtp:// off loopback; the URL can say otherwise', () => {
    expect(requiresStartTls('smtp://user:pass@mail.example.com:587')).toBe(true);
    expect(requiresStartTls('smtp://MAIL.example.com')).toBe(true);
    expect(requiresStartTls('smtp://192.0.2.25:25')).toBe(true);
    expect(requiresStartTls('smtp://[2001:db8::25]:25')).toBe(true);
    // A relay on this machine, and implicit TLS, need no upgrade.
    for (const local of [
      'smtp://localhost:25',
      'smtp://127.0.0.1:2525',
      'smtp://[::1]:25',
      'smtp://mta.localhost',
    ]) {
      expect(requiresStartTls(local)).toBe(false);
    }
    expect(requiresStartTls('smtps://mail.example.com:465')).toBe(false);
    // The operator's explicit choice is followed as given.
    expect(requiresStartTls('smtp://mail.example.com:25?requireTLS=false')).toBe(false);
    expect(requiresStartTls('smtp://mail.example.com:25?ignoreTLS=true')).toBe(false);
    expect(requiresStartTls('smtp://mail.example.com:25?opportunisticTLS=true')).toBe(false);
    // Turning a plaintext option off asks for nothing less than the default.
    expect(requiresStartTls('smtp://mail.example.com:25?ignoreTLS=false')).toBe(true);
    expect(requiresStartTls('smtp://mail.example.com:25?opportunisticTLS=false')).toBe(true);
    // A look-alike of a loopback name is not one.
    expect(requiresStartTls('smtp://localhost.example.com')).toBe(true);
    expect(requiresStartTls('smtp://127.0.0.1.example.com')).toBe(true);
  });

  it('sends nothing to a server off loopback that offers no STARTTLS (a downgrade), unless the URL allows it', async () => {
    // One of this machine's own addresses that is not loopback: the path a relay on the network takes.
    const sink = await startSmtpSink(nonLoopbackIPv4());
    try {
      const message = {
        to: 'ada@example.com',
        subject: 'Reset your password',
        text: 'SECRET-LINK',
        html: '',
      };
      const strict = createSmtpTransport({ url: `${sink.url}`, from: 'gh@example.com', timeoutMs: 5000 });
      // The error says what to change, at start-up's check and on every refused message.
      await expect(strict.check()).rejects.toThrow(/STARTTLS.*\?requireTLS=false to SMTP_URL/i);
      await expect(strict.send(message)).rejects.toThrow(/STARTTLS.*\?requireTLS=false to SMTP_URL/i);
      strict.close();
      expect(sink.messages).toHaveLength(0);
      const plaintext = createSmtpTransport({
        url: `${sink.url}?requireTLS=false`,
        from: 'gh@example.com',
        timeoutMs: 5000,
      });
      await plaintext.check();
      await plaintext.send(message);
      plaintext.close();
      expect((await sink.waitForMail('ada@example.com')).text).toContain('SECRET-LINK');
    } finally {
      await sink.close();
    }
  });
});

describe('the file outbox', () => {
  it('writes each message as a 0600 file in a 0700 folder', async () => {
    const dir = join(tempDir('gh-outbox-'), 'outbox');
    const clock = createTestClock();
    const transport = createOutboxTransport({ dir, from: 'gh@example.com', clock });
    const message: MailMessage = { to: 'd@example.com', subject: 'Hi', text: 'text', html: '<p>html</p>' };
    await transport.send(message);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, files[0] as string)).mode & 0o777).toBe(0o600);
    const [stored] = await readOutbox(dir, 10);
    expect(stored).toMatchObject({ ...message, from: 'gh@example.com' });
  });

  it('keeps at most maxMessages files, dropping the oldest', async () => {
    const dir = join(tempDir('gh-outbox-'), 'outbox');
    const clock = createTestClock();
    const transport = createOutboxTransport({ dir, from: 'gh@example.com', clock, maxMessages: 3 });
    for (let i = 0; i < 5; i += 1) {
      clock.advance(1);
      await transport.send({ to: 'e@example.com', subject: `n${i}`, text: '', html: '' });
    }
    expect(readdirSync(dir)).toHaveLength(3);
    expect((await readOutbox(dir, 10)).map((m) => m.subject)).toEqual(['n4', 'n3', 'n2']);
  });

  it('deletes messages older than maxAgeMs at start-up and at each write (red-team 2026-12k P6)', async () => {
    const dir = join(tempDir('gh-outbox-'), 'outbox');
    const clock = createTestClock();
    const hour = 3_600_000;
    const write = (options: { maxAgeMs?: number } = {}) =>
      createOutboxTransport({ dir, from: 'gh@example.com', clock, ...options });
    const first = write();
    for (const subject of ['old', 'newer']) {
      await first.send({ to: 'gone@example.com', subject, text: '', html: '' });
      clock.advance(hour);
    }
    writeFileSync(join(dir, 'notes.json'), '{}');
    // A restart a day later: the check that opens the outbox deletes the day-old message.
    clock.advance(22 * hour);
    const later = write({ maxAgeMs: 24 * hour - 1 });
    await later.check();
    expect((await readOutbox(dir, 10)).map((m) => m.subject)).toEqual(['newer']);
    clock.advance(hour);
    await later.send({ to: 'f@example.com', subject: 'today', text: '', html: '' });
    expect((await readOutbox(dir, 10)).map((m) => m.subject)).toEqual(['today']);
    // A file the outbox did not write is left alone.
    expect(readdirSync(dir).sort()).toHaveLength(2);
    expect(readdirSync(dir)).toContain('notes.json');
  });

  it('reads nothing from a missing folder and skips files that are not messages', async () => {
    const dir = tempDir('gh-outbox-');
    expect(await readOutbox(join(dir, 'none'), 10)).toEqual([]);
    writeFileSync(join(dir, 'junk.json'), '{"not":"a message"}');
    expect(await readOutbox(dir, 10)).toEqual([]);
  });
});

describe('the queue', () => {
  it('settles a message that fails while the mailer closes as dropped, with no retry left waiting', async () => {
    let fail: (error: Error) => void = () => {};
    const transport: MailTransport = {
      kind: 'smtp',
      send: () =>
        new Promise<void>((_resolve, reject) => {
          fail = reject;
        }),
      check: async () => {},
      close() {},
    };
    const { mailer } = mailerOver(transport);
    const outcomes: string[] = [];
    mailer.send(
      'password_changed',
      'closing@example.com',
      { when: 'x' },
      { onSettled: (o) => outcomes.push(o) },
    );
    await new Promise((resolve) => setImmediate(resolve));
    mailer.close();
    fail(new Error('connection reset'));
    await mailer.idle();
    expect(outcomes).toEqual(['dropped']);
    expect(mailer.pending()).toBe(0);
  });

  // A graceful shutdown (rolling deploy) must not lose the reset or verification mail a user asked
  // for a moment before: what is queued is sent first, for a bounded time.
  it('drain() sends what is queued, retries included (one last attempt, no new retry), before close', async () => {
    const sent: string[] = [];
    let refuse = true;
    const transport: MailTransport = {
      kind: 'smtp',
      send: async (message) => {
        if (refuse && message.to === 'retrying@example.com') throw new Error('421 try again later');
        sent.push(message.to);
      },
      check: async () => {},
      close() {},
    };
    const { mailer, warnings } = mailerOver(transport);
    const outcomes: string[] = [];
    const track = { onSettled: (o: string) => void outcomes.push(o) };
    mailer.send('password_changed', 'retrying@example.com', { when: 'x' }, track);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(warnings.some((warning) => warning.startsWith('mail delivery failed; retrying'))).toBe(true);
    expect(mailer.pending()).toBe(1); // waiting for its retry, 2 s away on a clock nobody advances
    refuse = false;
    mailer.send('password_changed', 'queued@example.com', { when: 'x' }, track);
    expect(await mailer.drain(5_000)).toBe(0);
    expect(sent.sort()).toEqual(['queued@example.com', 'retrying@example.com']);
    expect(outcomes).toEqual(['delivered', 'delivered']);

    // A last attempt that fails again is dropped at once, not left waiting for a retry.
    refuse = true;
    mailer.send('password_changed', 'retrying@example.com', { when: 'x' }, track);
    expect(await mailer.drain(5_000)).toBe(0);
    expect(outcomes.at(-1)).toBe('dropped');
    // A recipient the relay refuses for good is still told apart (security notices keep the row).
    const unknown = 'gone@example.com';
    transport.send = async (message) => {
      if (message.to === unknown) {
        throw Object.assign(new Error('550 5.1.1 no such user'), {
          code: 'EENVELOPE',
          command: 'RCPT TO',
          response: '550 5.1.1 <gone@example.com>: no such user',
        });
      }
    };
    mailer.send('password_changed', unknown, { when: 'x' }, track);
    expect(await mailer.drain(5_000)).toBe(0);
    expect(outcomes.at(-1)).toBe('rejected');
    mailer.close();
    expect(warnings.filter((warning) => warning.startsWith('mail dropped at shutdown'))).toEqual([]);
  });

  it('drain() gives up after its time on a relay that hangs; close() drops the rest with one warning', async () => {
    const transport: MailTransport = {
      kind: 'smtp',
      send: () => new Promise<void>(() => {}),
      check: async () => {},
      close() {},
    };
    const { mailer, warnings } = mailerOver(transport);
    const outcomes: string[] = [];
    for (const to of ['a@example.com', 'b@example.com', 'c@example.com']) {
      mailer.send('password_changed', to, { when: 'x' }, { onSettled: (o) => outcomes.push(o) });
    }
    const started = Date.now();
    expect(await mailer.drain(50)).toBe(3);
    expect(Date.now() - started).toBeLessThan(2_000);
    mailer.close();
    expect(outcomes).toEqual(['dropped', 'dropped']); // the two waiting; the hung send never settles
    expect(warnings.filter((warning) => warning.startsWith('mail dropped at shutdown'))).toEqual([
      'mail dropped at shutdown {"messages":3,"kinds":["password_changed"]}',
    ]);
    // Asked for after close (background work that outlived the drain): refused, and said.
    expect(mailer.send('password_changed', 'late@example.com', { when: 'x' })).toBe(false);
    expect(warnings.at(-1)).toBe('mail dropped at shutdown {"messages":1,"kinds":["password_changed"]}');
  });

  it('does not take a delivered message’s callback throwing for a failed delivery', async () => {
    const sent: string[] = [];
    const transport: MailTransport = {
      kind: 'smtp',
      send: async (message) => void sent.push(message.to),
      check: async () => {},
      close() {},
    };
    const { mailer, warnings } = mailerOver(transport);
    mailer.send(
      'password_changed',
      'once@example.com',
      { when: 'x' },
      {
        onSettled: () => {
          throw new Error('the caller’s bug');
        },
      },
    );
    await mailer.idle().catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sent).toEqual(['once@example.com']);
    expect(warnings.filter((warning) => /retrying/.test(warning))).toEqual([]);
    expect(warnings.some((warning) => warning.startsWith('a mail settlement callback threw'))).toBe(true);
    mailer.close();
  });

  it('is bounded: beyond MAIL_QUEUE_MAX a message is dropped with a warning', async () => {
    const { mailer, warnings } = mailerOver(NEVER_ANSWERS, { maxQueued: 2 });
    expect(mailer.send('password_changed', 'f@example.com', { when: 'x' })).toBe(true);
    expect(mailer.send('password_changed', 'f@example.com', { when: 'x' })).toBe(true);
    expect(mailer.send('password_changed', 'f@example.com', { when: 'x' })).toBe(false);
    expect(warnings.join()).toMatch(/queue full/);
    mailer.close();
  });

  it('holds at most MAIL_MAX_QUEUED_PER_ADDRESS messages for one address', () => {
    const { mailer, warnings } = mailerOver(NEVER_ANSWERS, { maxQueued: 100 });
    const sent = Array.from({ length: MAIL_MAX_QUEUED_PER_ADDRESS + 2 }, (_, i) =>
      // Case does not make a second address.
      mailer.send('password_changed', i % 2 === 0 ? 'k@example.com' : 'K@Example.com', { when: 'x' }),
    );
    expect(sent.filter(Boolean)).toHaveLength(MAIL_MAX_QUEUED_PER_ADDRESS);
    expect(mailer.send('password_changed', 'other@example.com', { when: 'x' })).toBe(true);
    expect(warnings.join()).toMatch(/enough for this address/);
    mailer.close();
  });

  it("at an address's bound, a stranger's message never pushes out one that is not; the reverse does", async () => {
    const { mailer } = mailerOver(NEVER_ANSWERS, { maxQueued: 100 });
    const outcomes: string[] = [];
    const toOwner = labelledSender(mailer, outcomes);
    const send = (label: string, source: string, fromStranger: boolean) =>
      toOwner(label, 'owner@example.com', source, fromStranger);
    // One in flight (never dropped) and four waiting, all a flooding stranger's.
    expect(send('flood0', 'ip:a', true)).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 1; i < MAIL_MAX_QUEUED_PER_ADDRESS; i += 1)
      expect(send(`flood${i}`, 'ip:a', true)).toBe(true);
    // The same source again, at the bound: its own newcomer is the one dropped.
    expect(send('flood-more', 'ip:a', true)).toBe(false);
    // The owner's takes the oldest waiting stranger's place (flood0 is in flight).
    expect(send('owner', 'ip:owner', false)).toBe(true);
    expect(outcomes).toEqual(['flood1 evicted']);
    // Another stranger's source, holding none, takes the heaviest stranger source's oldest place.
    expect(send('other', 'ip:b', true)).toBe(true);
    expect(outcomes).toEqual(['flood1 evicted', 'flood2 evicted']);
    // ip:a still holds the most waiting strangers' messages: its newcomer is dropped; a source
    // holding at least two fewer takes the place of the heaviest's oldest.
    expect(send('flood-again', 'ip:a', true)).toBe(false);
    expect(send('third', 'ip:c', true)).toBe(true);
    expect(outcomes).toEqual(['flood1 evicted', 'flood2 evicted', 'flood3 evicted']);
    // Every stranger source holds one now (one of them may be the owner on a new device, which
    // the strangers' lane cannot tell apart): a fresh source pushes none of them out.
    expect(send('fourth', 'ip:d', true)).toBe(false);
    expect(mailer.pending()).toBe(MAIL_MAX_QUEUED_PER_ADDRESS);
    // Each further message of the owner's takes a stranger's place, oldest first.
    for (let i = 0; i < 3; i += 1) expect(send(`owner${i}`, 'ip:owner', false)).toBe(true);
    expect(outcomes.slice(3)).toEqual(['flood4 evicted', 'other evicted', 'third evicted']);
    // Only the owner's wait now (and the stranger's in flight): a stranger's newcomer is refused,
    // and so is the owner's own sixth, which pushes out nothing of its own.
    expect(send('stranger', 'ip:e', true)).toBe(false);
    expect(send('owner3', 'ip:owner', false)).toBe(false);
    expect(outcomes.filter((outcome) => outcome.startsWith('owner'))).toEqual([]);
    expect(mailer.pending()).toBe(MAIL_MAX_QUEUED_PER_ADDRESS);
    mailer.close();
  });

  it("at MAIL_QUEUE_MAX too, a stranger's message never pushes out one that is not", async () => {
    const { mailer } = mailerOver(NEVER_ANSWERS, { maxQueued: 4 });
    const outcomes: string[] = [];
    const send = labelledSender(mailer, outcomes);
    expect(send('busy', 'someone@example.com', 'ip:x', true)).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    // The queue full of one-message sources, the owner's the oldest waiting.
    expect(send('owner', 'owner@example.com', 'ip:owner', false)).toBe(true);
    expect(send('s1', 'a@example.com', 'ip:s1', true)).toBe(true);
    expect(send('s2', 'b@example.com', 'ip:s2', true)).toBe(true);
    // A stranger from a fresh network takes a stranger's place, not the owner's.
    expect(send('s3', 'owner@example.com', 'ip:s3', true)).toBe(true);
    expect(outcomes).toEqual(['s1 evicted']);
    mailer.close();
  });

  it('when full, drops the oldest message of the flooding source, and the victim’s mail goes out', async () => {
    const delivered: string[] = [];
    const gates: (() => void)[] = [];
    const gated: MailTransport = {
      kind: 'outbox',
      check: async () => {},
      send: (message) =>
        new Promise<void>((resolve) => {
          gates.push(() => {
            delivered.push(message.to);
            resolve();
          });
        }),
      close() {},
    };
    const { mailer, warnings } = mailerOver(gated, { maxQueued: 4 });
    const flood = (i: number) =>
      mailer.send(
        'reset_password',
        `target${i}@example.com`,
        { link: 'L', minutes: '30' },
        { source: 'ip:203.0.113.9' },
      );
    for (let i = 0; i < 4; i += 1) expect(flood(i)).toBe(true);
    // The flooder cannot push out its own: its newest is dropped.
    expect(flood(4)).toBe(false);
    // The first message is in flight (undroppable); the victim's takes the flooder's oldest waiting slot.
    await new Promise((resolve) => setImmediate(resolve));
    expect(
      mailer.send(
        'reset_password',
        'victim@example.com',
        { link: 'V', minutes: '30' },
        { source: 'ip:198.51.100.7' },
      ),
    ).toBe(true);
    expect(mailer.pending()).toBe(4);
    // …and a later flood message cannot push the victim's out.
    expect(flood(5)).toBe(false);
    while (delivered.length < 4) {
      await new Promise((resolve) => setImmediate(resolve));
      for (const open of gates.splice(0)) open();
    }
    await mailer.idle();
    expect(delivered).toEqual([
      'target0@example.com',
      'target2@example.com',
      'target3@example.com',
      'victim@example.com',
    ]);
    expect(warnings.join('\n')).toMatch(/oldest message of the source holding the most dropped/);
    mailer.close();
  });
});

describe('mail queue fairness under a flood from many addresses', () => {
  it('admits a newcomer’s mail while one is in flight and every source holds one', async () => {
    const delivered: string[] = [];
    const gates: (() => void)[] = [];
    const gated: MailTransport = {
      kind: 'outbox',
      check: async () => {},
      send: (message) =>
        new Promise<void>((resolve) => {
          gates.push(() => {
            delivered.push(message.to);
            resolve();
          });
        }),
      close() {},
    };
    const { mailer } = mailerOver(gated, { maxQueued: 4 });
    const from = (source: string, to: string) =>
      mailer.send('reset_password', to, { link: 'L', minutes: '30' }, { source });
    for (let i = 0; i < 4; i += 1) expect(from(`ip:203.0.113.${i}`, `target${i}@example.com`)).toBe(true);
    // The first message is in flight: its source holds nothing droppable.
    await new Promise((resolve) => setImmediate(resolve));
    expect(from('ip:198.51.100.7', 'victim@example.com')).toBe(true);
    expect(mailer.pending()).toBe(4);
    while (gates.length > 0 || mailer.pending() > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      for (const open of gates.splice(0)) open();
    }
    await mailer.idle();
    expect(delivered).toContain('victim@example.com');
    mailer.close();
  });
});

describe('templates', () => {
  it('escapes values in HTML and keeps line breaks out of the subject', () => {
    const message = templates.render('email_changed', 'g@example.com', {
      new_email: '<b>x</b>@example.com',
      account_email: 'g&"h"@example.com',
    });
    expect(message.html).toContain('&#60;b&#62;x&#60;/b&#62;@example.com');
    expect(message.html).toContain('g&#38;&#34;h&#34;@example.com');
    expect(message.text).toContain('<b>x</b>@example.com');
  });

  it('takes an operator override file by file, and refuses an unknown placeholder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-templates-'));
    writeFileSync(join(dir, 'reset_password.subject.txt'), 'Nouveau mot de passe\n');
    writeFileSync(join(dir, 'reset_password.txt'), 'Lien : {{link}} ({{minutes}} min)');
    const custom = loadMailTemplates(dir).render('reset_password', 'h@example.com', {
      link: 'L',
      minutes: '30',
    });
    expect(custom).toMatchObject({ subject: 'Nouveau mot de passe', text: 'Lien : L (30 min)' });
    expect(custom.html).toContain('Reset my password'); // no .html override: the built-in one
    writeFileSync(join(dir, 'verify_email.txt'), 'Hello {{name}}');
    expect(() => loadMailTemplates(dir)).toThrow(ConfigError);
    expect(() => loadMailTemplates(join(dir, 'missing'))).toThrow(/MAIL_TEMPLATES_DIR/);
  });
});
