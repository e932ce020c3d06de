import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { expect } from 'vitest';

/** A real SMTP server on a free port that keeps every message it receives, parsed. */
export interface SmtpSink {
  /** `smtp://<host>:<port>` */
  url: string;
  messages: ParsedMail[];
  /**
   * Resolves with the first message (in arrival order) addressed to `to`, and titled `subject` when
   * given, once it has arrived. Keyed on the recipient, not on a count, because mail is sent after
   * the response: a message an earlier test caused can arrive during the next one.
   */
  waitForMail(to: string, subject?: string): Promise<ParsedMail>;
  /** Refuse the next `n` messages with a 451 (temporary failure). */
  failNext(n: number): void;
  /**
   * Refuse `address` at `RCPT TO` with `code` and `text` (by default 550 5.1.1, no such mailbox:
   * permanent for that address).
   */
  refuseRecipient(address: string, code?: number, text?: string): void;
  /** Answer `AUTH` with a 535 (credentials refused: the relay's, not the recipient's). */
  refuseAuth(): void;
  /**
   * Holds every message's end-of-data answer until the returned release is called (a slow relay):
   * the sender's queue backs up meanwhile. Release well within the sender's socket timeout.
   */
  hold(): () => void;
  close(): Promise<void>;
}

/**
 * Starts an {@link SmtpSink} (plain SMTP, no STARTTLS, any or no credentials), on `host`
 * (127.0.0.1 by default; another of the machine's addresses to be reached off loopback).
 */
export async function startSmtpSink(host = '127.0.0.1'): Promise<SmtpSink> {
  const messages: ParsedMail[] = [];
  const waiters: { matches: (mail: ParsedMail) => boolean; resolve: (mail: ParsedMail) => void }[] = [];
  let failures = 0;
  let held: Promise<void> | undefined;
  const refused = new Map<string, { code: number; text: string }>();
  let authRefused = false;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address, _session, callback) {
      const reply = refused.get(address.address.toLowerCase());
      if (reply === undefined) return callback();
      callback(Object.assign(new Error(reply.text), { responseCode: reply.code }));
    },
    onAuth(auth, _session, callback) {
      if (authRefused)
        return callback(Object.assign(new Error('credentials refused'), { responseCode: 535 }));
      callback(null, { user: auth.username ?? 'anyone' });
    },
    onData(stream, _session, callback) {
      if (failures > 0) {
        failures -= 1;
        stream.resume();
        stream.on('end', () => {
          const error = Object.assign(new Error('try again later'), { responseCode: 451 });
          callback(error);
        });
        return;
      }
      simpleParser(stream)
        .then(async (mail) => {
          await held;
          messages.push(mail);
          for (const waiter of waiters.filter((w) => w.matches(mail))) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(mail);
          }
          callback();
        })
        .catch((error: Error) => callback(error));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://${host}:${port}`,
    messages,
    waitForMail(to, subject) {
      const matches = (mail: ParsedMail) =>
        recipientsOf(mail).includes(to.toLowerCase()) && (subject === undefined || mail.subject === subject);
      const ready = messages.find(matches);
      if (ready !== undefined) return Promise.resolve(ready);
      return new Promise((resolve) => waiters.push({ matches, resolve }));
    },
    failNext(n) {
      failures = n;
    },
    refuseRecipient(address, code = 550, text = '5.1.1 no such mailbox') {
      refused.set(address.toLowerCase(), { code, text });
    },
    refuseAuth() {
      authRefused = true;
    },
    hold() {
      let release = () => {};
      held = new Promise<void>((resolve) => {
        release = () => {
          held = undefined;
          resolve();
        };
      });
      return release;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The lower-cased addresses a message was sent to. */
export function recipientsOf(mail: ParsedMail): string[] {
  const to = mail.to === undefined ? [] : Array.isArray(mail.to) ? mail.to : [mail.to];
  return to.flatMap((list) => list.value.map((entry) => (entry.address ?? '').toLowerCase()));
}

/** The token of the first Gatehouse link (`#/page?token=…`) in `text`. */
export function linkToken(text: string | undefined): string {
  const match = /[#]\/[a-z-]+\?token=([A-Za-z0-9_-]+)/.exec(text ?? '');
  if (match?.[1] === undefined) throw new Error(`no link token in: ${text}`);
  return match[1];
}

/**
 * One of this machine's own IPv4 addresses that is not loopback: where a sink is reached as a relay
 * on the network is (STARTTLS is required there by default). Fails the test on a machine without one.
 */
export function nonLoopbackIPv4(): string {
  const address = Object.values(networkInterfaces())
    .flat()
    .find((entry) => entry !== undefined && entry.family === 'IPv4' && !entry.internal)?.address;
  expect(address, 'the machine has a non-loopback IPv4 address').toBeDefined();
  return String(address);
}
