import type { Transporter } from 'nodemailer';

/** One rendered message, ready to send. */
export interface MailMessage {
  /** The recipient's address (one recipient per message: a notice never reveals another address). */
  to: string;
  subject: string;
  /** Plain-text body. */
  text: string;
  /** HTML body (values already escaped by the template renderer). */
  html: string;
}

/** Where messages go: an SMTP server, or the file outbox when none is configured. */
export interface MailTransport {
  /** `smtp` or `outbox`, for the start-up log line. */
  readonly kind: 'smtp' | 'outbox';
  /** Delivers one message; rejects on failure (the mailer retries with backoff). */
  send(message: MailMessage): Promise<void>;
  /**
   * Checks, without sending, that messages could be delivered now (SMTP: connects, upgrades with
   * STARTTLS when required and authenticates); rejects with what is wrong, and how to fix it.
   */
  check(): Promise<void>;
  /** Closes pooled connections. */
  close(): void;
}

/**
 * True for a relay's permanent refusal of the message's recipient mailbox: nodemailer's
 * `EENVELOPE` at `RCPT TO` with a reply whose enhanced status code (RFC 3463) is 5.1.x (a bad
 * destination address: 5.1.1 no such user) or 5.2.1 (mailbox disabled), which every retry would
 * meet again. Nothing else counts, a bare 550 included: relays report relaying denied, sender and
 * client restrictions at `RCPT TO` too (Postfix's 554 5.7.1, Exchange's 550 5.7.54), which are the
 * configuration's problem, and a 552 there is temporary (RFC 5321 §4.5.3.1.10).
 */
export function isPermanentRejection(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, command, response } = error as { code?: unknown; command?: unknown; response?: unknown };
  if (code !== 'EENVELOPE' || command !== 'RCPT TO' || typeof response !== 'string') return false;
  const enhanced = /^5\d\d[ -]5\.(\d{1,3})\.(\d{1,3})\b/.exec(response);
  if (enhanced === null) return false;
  return enhanced[1] === '1' || (enhanced[1] === '2' && enhanced[2] === '1');
}

/** Options of {@link createSmtpTransport}. */
export interface SmtpTransportOptions {
  /** `smtp://user:pass@host:587` or `smtps://host:465` (`SMTP_URL`). */
  url: string;
  /** `MAIL_FROM`. */
  from: string;
  /** Bound of each phase of one attempt: connect, greeting, and socket inactivity (`MAIL_SEND_TIMEOUT`). */
  timeoutMs: number;
}

/**
 * Whether an `smtp://` connection must upgrade with STARTTLS before anything is sent: the default
 * for every server but one on this machine. Without it nodemailer upgrades only when the server
 * advertises STARTTLS, so anyone on the path who strips the advertisement (a downgrade, RFC 3207
 * §6) reads the SMTP credentials (`AUTH PLAIN`) and every message: password-reset and sign-in
 * links. RFC 8314 §3 asks for TLS on submission. A loopback relay (a local MTA) is not on a
 * network path and often offers no TLS, so it is exempt; `smtps://` is TLS from the first byte
 * anyway. An operator who must use a plaintext relay on the network says so in the URL
 * (`?requireTLS=false`, `?ignoreTLS=true` or `?opportunisticTLS=true`), which is then followed as given.
 */
export function requiresStartTls(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // nodemailer reports the malformed URL itself on the first message.
    return false;
  }
  if (parsed.protocol !== 'smtp:') return false;
  // The URL's own choice: `requireTLS` with any value, or a plaintext option turned on
  // (`?ignoreTLS=false` asks for nothing less than the default, so it keeps it).
  const { searchParams } = parsed;
  if (searchParams.has('requireTLS')) return false;
  if (['ignoreTLS', 'opportunisticTLS'].some((name) => searchParams.get(name) === 'true')) return false;
  const host = parsed.hostname.toLowerCase();
  const loopback =
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127\.\d+\.\d+\.\d+$/.test(host) ||
    host === '[::1]';
  return !loopback;
}

/**
 * SMTP delivery with nodemailer: STARTTLS is required on a network path ({@link requiresStartTls}).
 * Every phase has a timeout, so a server that accepts the TCP
 * connection and then hangs costs one attempt, not a stuck queue. File and URL access in message
 * content are disabled: bodies come from our templates, never from paths or URLs to fetch.
 *
 * nodemailer (≈ 40 modules and its TLS/HTTP/zlib imports, ≈ 3.5 MiB of idle RSS) is imported on
 * the first message, not at start-up: most processes never send one (issue 10, footprint).
 */
export function createSmtpTransport(options: SmtpTransportOptions): MailTransport {
  let transporter: Promise<Transporter> | undefined;
  const ready = (): Promise<Transporter> => {
    transporter ??= import('nodemailer').then(({ createTransport }) =>
      createTransport({
        url: options.url,
        // The URL's own TLS parameters, when it has any, override this (nodemailer reads them last).
        ...(startTls ? { requireTLS: true } : {}),
        connectionTimeout: options.timeoutMs,
        greetingTimeout: options.timeoutMs,
        socketTimeout: options.timeoutMs,
      }),
    );
    return transporter;
  };
  const startTls = requiresStartTls(options.url);
  /**
   * nodemailer's error, with the remedy when it is the STARTTLS this transport requires: an
   * operator upgrading from a version that sent in plaintext sees why mail stopped.
   */
  const explained = (error: unknown): unknown => {
    if (!startTls || !(error instanceof Error) || !/STARTTLS/i.test(error.message)) return error;
    // 454 is a relay that offers TLS but cannot now (RFC 3207 §4): plaintext is not the remedy.
    if ((error as { responseCode?: unknown }).responseCode === 454) return error;
    error.message +=
      ' (STARTTLS is required for a relay off this machine; to send in plaintext anyway, add ' +
      '?requireTLS=false to SMTP_URL)';
    return error;
  };
  const rethrowExplained = (error: unknown): never => {
    throw explained(error);
  };
  return {
    kind: 'smtp',
    async send(message) {
      await (await ready())
        .sendMail({
          from: options.from,
          to: message.to,
          subject: message.subject,
          text: message.text,
          html: message.html,
          disableFileAccess: true,
          disableUrlAccess: true,
        })
        .catch(rethrowExplained);
    },
    async check() {
      await (await ready()).verify().catch(rethrowExplained);
    },
    close: () => {
      // Nothing to close when no message was ever sent (nodemailer was never loaded).
      transporter?.then(
        (t) => t.close(),
        () => undefined,
      );
    },
  };
}
