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
  /** Closes pooled connections. */
  close(): void;
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
 * SMTP delivery with nodemailer. Every phase has a timeout, so a server that accepts the TCP
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
        connectionTimeout: options.timeoutMs,
        greetingTimeout: options.timeoutMs,
        socketTimeout: options.timeoutMs,
      }),
    );
    return transporter;
  };
  return {
    kind: 'smtp',
    async send(message) {
      await (await ready()).sendMail({
        from: options.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
        disableFileAccess: true,
        disableUrlAccess: true,
      });
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
