import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { loadMailTemplates } from '../../src/mail/mail-templates.js';
import { createSmtpTransport } from '../../src/mail/mail-transport.js';
import { createMailer, MAIL_RETRY_DELAYS_MS } from '../../src/mail/mailer.js';
import { buildTestServer, createTestClock } from '../../src/testing.js';
import { bearer, createUser, login, PASSWORD } from '../support/accounts.js';

/**
 * A TCP server that accepts SMTP connections and then never answers (`silent`: not even the
 * greeting; `greet`: the 220 greeting, then nothing; `data`: a whole conversation up to the end of
 * the message body, then no answer to it), as a wedged or tar-pitting mail relay does.
 */
interface HangingSmtp {
  url: string;
  /** Connections accepted so far. */
  accepted: number;
  /** Message bodies received in full (`data` mode) and never answered. */
  bodies: number;
  /** Connections still open (the client has not given up on them yet). */
  open(): number;
  close(): Promise<void>;
}

type HangMode = 'silent' | 'greet' | 'data';

/** Answers SMTP commands (RFC 5321 §4.1) until the body's final "." — then says nothing more. */
function answerUntilBodyEnds(socket: Socket, onBody: () => void): void {
  let buffered = '';
  let inBody = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\r\n'); end !== -1; end = buffered.indexOf('\r\n')) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (inBody) {
        // The end of the body: the relay goes silent exactly when the client waits for "250".
        if (line === '.') {
          inBody = false;
          onBody();
        }
        continue;
      }
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO' || verb === 'HELO') socket.write('250 hang.example\r\n');
      else if (verb === 'MAIL' || verb === 'RCPT') socket.write('250 OK\r\n');
      else if (verb === 'DATA') {
        inBody = true;
        socket.write('354 End data with <CR><LF>.<CR><LF>\r\n');
      }
    }
  });
}

async function startHangingSmtp(mode: HangMode): Promise<HangingSmtp> {
  const sockets = new Set<Socket>();
  const state = { accepted: 0, bodies: 0 };
  const server: Server = createServer((socket) => {
    state.accepted += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => sockets.delete(socket));
    if (mode !== 'silent') socket.write('220 hang.example ESMTP\r\n');
    if (mode === 'data') answerUntilBodyEnds(socket, () => (state.bodies += 1));
    // Read and ignore whatever the client says (EHLO, …): it never gets an answer.
    else socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    get accepted() {
      return state.accepted;
    },
    get bodies() {
      return state.bodies;
    },
    open: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const until = async (check: () => boolean) => {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 10));
};

describe.each(['silent', 'greet', 'data'] as const)(
  'an SMTP server that accepts and then hangs (%s)',
  (mode) => {
    let smtp: HangingSmtp;
    beforeAll(async () => {
      smtp = await startHangingSmtp(mode);
    });
    afterAll(async () => smtp.close());

    it('each attempt times out, is retried with backoff, the queue stays bounded, then the message is dropped', async () => {
      const clock = createTestClock();
      const warnings: string[] = [];
      const mailer = createMailer({
        transport: createSmtpTransport({ url: smtp.url, from: 'gh@example.com', timeoutMs: 200 }),
        templates: loadMailTemplates(undefined),
        publicUrl: 'https://auth.example.com',
        maxQueued: 3,
        scheduler: clock,
        warn: (message, detail) => void warnings.push(`${message} ${JSON.stringify(detail ?? {})}`),
      });
      // The other test may have run first on this server (the run shuffles): count from here.
      const acceptedBefore = smtp.accepted;
      const bodiesBefore = smtp.bodies;
      // Queuing is synchronous and touches no socket: the caller never waits for SMTP.
      expect(mailer.send('password_changed', 'a@example.com', { when: 'now' })).toBe(true);
      expect(smtp.accepted).toBe(acceptedBefore);
      await until(() => warnings.length === 1);
      expect(warnings[0]).toMatch(/retrying .*"attempt":1/);
      expect(warnings[0]).toMatch(/[Tt]ime|[Gg]reeting/);
      // In `data` mode the attempt got as far as the whole message: the last phase has its timeout too.
      expect(smtp.bodies - bodiesBefore).toBe(mode === 'data' ? 1 : 0);
      // The timed-out connection was closed by the client, not left to pile up.
      await until(() => smtp.open() === 0);
      expect(smtp.accepted).toBe(acceptedBefore + 1);
      // Bounded while the relay hangs: the retrying message counts, two more fit; a fourth
      // recipient (a source holding nothing) takes the retrying message's slot, and a fifth message
      // from a source already holding as much as any other is dropped.
      expect(mailer.send('password_changed', 'b@example.com', { when: 'now' })).toBe(true);
      expect(mailer.send('password_changed', 'c@example.com', { when: 'now' })).toBe(true);
      expect(mailer.send('password_changed', 'd@example.com', { when: 'now' })).toBe(true);
      expect(mailer.pending()).toBe(3);
      expect(mailer.send('password_changed', 'd@example.com', { when: 'now' })).toBe(false);
      expect(mailer.pending()).toBe(3);
      // No retry before its delay: nothing new connects until the clock reaches the first backoff
      // step (b, c and d are tried meanwhile, once each).
      await until(() => warnings.filter((w) => /delivery failed; retrying/.test(w)).length === 4);
      const acceptedBeforeBackoff = smtp.accepted;
      clock.advance((MAIL_RETRY_DELAYS_MS[0] ?? 0) - 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(smtp.accepted).toBe(acceptedBeforeBackoff);
      // Then every remaining backoff step, each attempt timing out, until all three are dropped.
      for (const delay of MAIL_RETRY_DELAYS_MS) {
        const attempts = warnings.length;
        clock.advance(delay);
        await until(() => warnings.length >= attempts + 3);
      }
      await mailer.idle();
      expect(warnings.filter((w) => /after every retry; dropped/.test(w))).toHaveLength(3);
      expect(
        warnings.filter((w) => /retrying message of the source holding the most dropped/.test(w)),
      ).toHaveLength(1);
      expect(warnings.join('\n')).toMatch(/"attempts":5/);
      expect(mailer.pending()).toBe(0);
      await until(() => smtp.open() === 0);
      mailer.close();
    }, 30_000);

    it('never blocks a request: answers come while a delivery hangs', async () => {
      const app = await buildTestServer({
        smtpUrl: smtp.url,
        mailSendTimeoutMs: 5000,
        forgotPasswordPerIpPerHour: 100,
      });
      try {
        const owner = await createUser(app);
        const { access_token: token } = await login(app, owner.email);
        const acceptedBefore = smtp.accepted;
        const forgot = await app.inject({
          method: 'POST',
          url: '/auth/forgot-password',
          payload: { email: owner.email },
        });
        expect(forgot.statusCode).toBe(202);
        // The reset mail's delivery is now stuck on the relay…
        await until(() => smtp.accepted > acceptedBefore && smtp.open() > 0);
        // …and requests that queue mail still answer while that connection is open.
        const changed = await app.inject({
          method: 'PATCH',
          url: '/users/me',
          headers: bearer(token),
          payload: { current_password: PASSWORD, password: 'another fine passphrase' },
        });
        expect(changed.statusCode).toBe(200);
        const again = await app.inject({
          method: 'POST',
          url: '/auth/forgot-password',
          payload: { email: owner.email },
        });
        expect(again.statusCode).toBe(202);
        expect(smtp.open()).toBeGreaterThan(0);
        expect(gatehouseCore(app.gatehouse).mailer.pending()).toBeGreaterThanOrEqual(2);
      } finally {
        // Closing the server stops the retries and closes the transport with the delivery in flight.
        await app.close();
      }
    }, 30_000);
  },
);
