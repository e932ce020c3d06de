import { randomUUID } from 'node:crypto';
import { chmod, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Type } from 'typebox';
import { Check } from 'typebox/schema';
import type { MailMessage, MailTransport } from './mail-transport.js';

/** Most messages the outbox keeps; writing one more deletes the oldest (see {@link createOutboxTransport}). */
export const OUTBOX_MAX_MESSAGES = 1000;

/** A message as the outbox stores it. */
export interface OutboxMessage extends MailMessage {
  /** File name without extension: sortable by time, then random. */
  id: string;
  /** `MAIL_FROM`. */
  from: string;
  /** When it was written, ISO 8601. */
  created_at: string;
}

const OutboxMessageSchema = Type.Object({
  id: Type.String(),
  from: Type.String(),
  to: Type.String(),
  subject: Type.String(),
  text: Type.String(),
  html: Type.String(),
  created_at: Type.String(),
});

/** `DATA_DIR/outbox`. */
export function outboxDirectory(dataDir: string): string {
  return join(dataDir, 'outbox');
}

/** Options of {@link createOutboxTransport}. */
export interface OutboxOptions {
  /** The folder (`DATA_DIR/outbox`), created 0700. */
  dir: string;
  from: string;
  clock: () => number;
  /** @default OUTBOX_MAX_MESSAGES */
  maxMessages?: number;
  /**
   * Messages older than this are deleted at start-up and at each write: the longest-lived link
   * they carry is dead by then, and a deleted account's mail must not stay readable (red-team
   * 2026-12k P6). @default no age limit
   */
  maxAgeMs?: number;
}

/** The write time (epoch ms) a message's file name starts with, or undefined for another file. */
function writtenAt(name: string): number | undefined {
  const match = /^(\d{15})-/.exec(name);
  return match === null ? undefined : Number(match[1]);
}

/**
 * The file outbox, for installations without SMTP: each message is one JSON file, created with
 * mode 0600 in a 0700 folder, so only the operator's account can read the links in it. Bounded:
 * beyond `maxMessages` files the oldest are deleted, so a flood of sign-ups cannot fill the disk,
 * and files older than `maxAgeMs` go too.
 */
export function createOutboxTransport(options: OutboxOptions): MailTransport {
  const maxMessages = options.maxMessages ?? OUTBOX_MAX_MESSAGES;
  let ready: Promise<void> | undefined;
  /** Deletes the oldest messages beyond `maxMessages`, and every message past `maxAgeMs`. */
  const prune = async () => {
    const names = (await readdir(options.dir)).filter((name) => name.endsWith('.json')).sort();
    const oldest = options.maxAgeMs === undefined ? undefined : options.clock() - options.maxAgeMs;
    // Names start with the zero-padded write time: the expired ones are the first, like the excess.
    const expired =
      oldest === undefined ? 0 : names.filter((name) => (writtenAt(name) ?? oldest) < oldest).length;
    const excess = Math.max(names.length - maxMessages, expired);
    for (const name of names.slice(0, excess)) await rm(join(options.dir, name), { force: true });
  };
  const prepare = async () => {
    await mkdir(options.dir, { recursive: true, mode: 0o700 });
    await chmod(options.dir, 0o700);
    await prune();
  };
  return {
    kind: 'outbox',
    async check() {
      // The folder, made 0700 if missing: what every message needs.
      ready ??= prepare();
      await ready;
    },
    async send(message) {
      ready ??= prepare();
      await ready;
      const now = options.clock();
      const id = `${String(now).padStart(15, '0')}-${randomUUID()}`;
      const stored: OutboxMessage = {
        id,
        from: options.from,
        ...message,
        created_at: new Date(now).toISOString(),
      };
      // `wx`: never follows or overwrites an existing file; the mode applies at creation.
      const file = await open(join(options.dir, `${id}.json`), 'wx', 0o600);
      try {
        await file.writeFile(`${JSON.stringify(stored, null, 2)}\n`);
      } finally {
        await file.close();
      }
      await prune();
    },
    close() {},
  };
}

/**
 * The newest `limit` messages of the outbox, newest first (for `MAIL_OUTBOX_HTTP` and tests). A
 * file that is not a message we wrote is skipped.
 */
export async function readOutbox(dir: string, limit: number): Promise<OutboxMessage[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith('.json'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const newest = names.sort().reverse().slice(0, limit);
  const messages: OutboxMessage[] = [];
  for (const name of newest) {
    try {
      const parsed: unknown = JSON.parse(await readFile(join(dir, name), 'utf8'));
      if (Check(OutboxMessageSchema, parsed)) messages.push(parsed);
    } catch {
      // Deleted meanwhile (the bound) or not ours: skip it.
    }
  }
  return messages;
}
