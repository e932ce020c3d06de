/**
 * A room's roll log (issue 14, item 7): the document `GET /rooms/{code}/log` answers, and its
 * verifier, shared by the server, the `gatehouse verify-room-log` command and the web UI's verify
 * page. Browser-safe: WebCrypto (`globalThis.crypto.subtle`, SHA-256 and Ed25519) and nothing from
 * `node:`.
 *
 * **The chain.** Each roll has an entry: a JSON text naming the room, the roll's sequence number,
 * the previous entry's hash (`prev`; {@link GENESIS_HASH} for the room's first), the time, the
 * roller and either the roll (`roll`: notation, label, dice, total) or, for a secret roll, only
 * `commitment` = SHA-256(salt ‖ content), where the salt is 128 random bits and `content` the
 * roll's text. An entry's hash is SHA-256 of its exact text; the server signs
 * `"dicery-room-log-v1:" + hash` with an Ed25519 key used for nothing else. Revealing a secret
 * roll publishes its salt and content, which must hash to the commitment.
 *
 * @module
 */

/** The `format` of a log document. */
export const ROOM_LOG_FORMAT = 'dicery-room-log/1';

/** The `prev` of a room's first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** What an entry's signature covers, before the entry's hash (domain separation). */
export const LOG_SIGNATURE_CONTEXT = 'dicery-room-log-v1:';

/** A published log signing key. */
export interface RoomLogKey {
  /** Key id, cited by entries. */
  kid: string;
  /** `Ed25519`. */
  alg: 'Ed25519';
  /** The raw 32-byte public key, base64url. */
  public_key: string;
  /** When the key was created (ISO 8601). */
  created_at: string;
  /** When it stopped signing, if it did. */
  retired_at: string | null;
}

/** A secret roll's disclosure: hashing the salt's bytes then the content's UTF-8 gives its commitment. */
export interface RoomLogReveal {
  /** 128-bit salt, hex. */
  salt: string;
  /** The committed text (the roll's notation, label, dice and total as JSON). */
  content: string;
  /** Sequence number of the `roll_revealed` event. */
  revealed_seq: number;
}

/** One entry of a log document. */
export interface RoomLogItem {
  /** The roll's event sequence number in the room. */
  seq: number;
  /** SHA-256 (hex) of `entry`. */
  hash: string;
  /** Ed25519 signature (base64url) of {@link LOG_SIGNATURE_CONTEXT} + `hash`. */
  signature: string;
  /** Id of the signing key. */
  kid: string;
  /** The exact JSON text that was hashed. */
  entry: string;
  /** For a revealed secret roll. */
  reveal?: RoomLogReveal;
}

/** A log document (`GET /rooms/{code}/log`, or several pages joined in order). */
export interface RoomLogDocument {
  format: typeof ROOM_LOG_FORMAT;
  room: string;
  /** The keys the entries cite. */
  keys: RoomLogKey[];
  entries: RoomLogItem[];
}

/** The parsed `entry` text. */
export interface RoomLogEntryBody {
  v: 1;
  room: string;
  seq: number;
  prev: string;
  at: string;
  player: { id: string; name: string };
  visibility: 'room' | 'host';
  /** A public roll's content (the same object whose JSON a secret roll commits to). */
  roll?: unknown;
  /** A secret roll's commitment, hex. */
  commitment?: string;
}

/** Why a log does not verify, at which entry (0-based index in `entries`, and its `seq` if known). */
export interface RoomLogProblem {
  index: number;
  seq: number | null;
  reason:
    | 'malformed'
    | 'wrong_room'
    | 'seq_mismatch'
    | 'out_of_order'
    | 'hash_mismatch'
    | 'broken_chain'
    | 'unknown_key'
    | 'bad_signature'
    | 'reveal_mismatch';
  message: string;
}

/** What {@link verifyRoomLog} found. */
export type RoomLogVerdict =
  | {
      ok: true;
      /** Entries verified. */
      entries: number;
      /** True when the first entry is the room's first (`prev` is the genesis hash). */
      fromGenesis: boolean;
      /** Hash of the last entry: compare it with one you saw live to detect a cut-off tail. */
      head: string;
      /** Secret rolls whose reveal matched their commitment. */
      revealed: number;
      /** Secret rolls still hidden (their commitment is chained and signed, their content unknown). */
      secret: number;
    }
  | { ok: false; problems: RoomLogProblem[] };

const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;

function hexOf(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

function bytesOfHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(new ArrayBuffer(hex.length / 2));
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function bytesOfBase64Url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  const out = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

const encoder = new TextEncoder();

function utf8(text: string): Uint8Array<ArrayBuffer> {
  const encoded = encoder.encode(text);
  const out = new Uint8Array(new ArrayBuffer(encoded.length));
  out.set(encoded);
  return out;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return hexOf(await crypto.subtle.digest('SHA-256', bytes));
}

/** SHA-256 (hex) of a secret roll's salt bytes followed by its content's UTF-8: its commitment. */
export async function commitmentOf(saltHex: string, content: string): Promise<string> {
  const salt = bytesOfHex(saltHex);
  const text = utf8(content);
  const joined = new Uint8Array(new ArrayBuffer(salt.length + text.length));
  joined.set(salt);
  joined.set(text, salt.length);
  return sha256Hex(joined);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseBody(text: string): RoomLogEntryBody | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(value) || value.v !== 1) return undefined;
  const { room, seq, prev, at, player, visibility, commitment } = value;
  if (typeof room !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq)) return undefined;
  if (typeof prev !== 'string' || !HEX64.test(prev) || typeof at !== 'string') return undefined;
  if (!isRecord(player) || typeof player.id !== 'string' || typeof player.name !== 'string') return undefined;
  if (visibility === 'host') {
    if (typeof commitment !== 'string' || !HEX64.test(commitment) || 'roll' in value) return undefined;
  } else if (visibility !== 'room' || !('roll' in value) || 'commitment' in value) return undefined;
  return value as unknown as RoomLogEntryBody;
}

/** Most problems a verdict lists (a mangled file must not make a huge report). */
const MAX_PROBLEMS = 20;

/**
 * Verifies a log document: each entry's hash is SHA-256 of its text, names the room and its
 * sequence number, links to the previous entry's hash, carries a valid Ed25519 signature by a key
 * of `keys` (or of `options.trustedKeys`, which then replace the document's own), and every reveal
 * matches its commitment. Never throws for bad input: a value that is not a log is a verdict with
 * a `malformed` problem.
 *
 * What it proves and what it does not: see README, "Verifiable rolls".
 */
export async function verifyRoomLog(
  document: unknown,
  options: { trustedKeys?: readonly RoomLogKey[] } = {},
): Promise<RoomLogVerdict> {
  const problems: RoomLogProblem[] = [];
  const report = (problem: RoomLogProblem) => {
    if (problems.length < MAX_PROBLEMS) problems.push(problem);
  };
  if (
    !isRecord(document) ||
    document.format !== ROOM_LOG_FORMAT ||
    typeof document.room !== 'string' ||
    !Array.isArray(document.entries) ||
    !Array.isArray(document.keys)
  ) {
    return {
      ok: false,
      problems: [{ index: -1, seq: null, reason: 'malformed', message: `Not a ${ROOM_LOG_FORMAT} document` }],
    };
  }
  const room = document.room;
  const keys = new Map<string, CryptoKey>();
  for (const key of options.trustedKeys ?? (document.keys as unknown[])) {
    if (!isRecord(key) || typeof key.kid !== 'string' || typeof key.public_key !== 'string') continue;
    const raw = bytesOfBase64Url(key.public_key);
    if (raw === undefined || raw.length !== 32) continue;
    try {
      keys.set(key.kid, await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']));
    } catch {
      // An unusable key is as good as none: entries citing it report `unknown_key`.
    }
  }

  let previous: { hash: string; seq: number } | undefined;
  let fromGenesis = false;
  let revealed = 0;
  let secret = 0;
  for (const [index, item] of (document.entries as unknown[]).entries()) {
    if (
      !isRecord(item) ||
      typeof item.entry !== 'string' ||
      typeof item.hash !== 'string' ||
      typeof item.signature !== 'string' ||
      typeof item.kid !== 'string' ||
      typeof item.seq !== 'number'
    ) {
      report({
        index,
        seq: null,
        reason: 'malformed',
        message: 'Entry is missing entry, hash, signature, kid or seq',
      });
      previous = undefined;
      continue;
    }
    const seq = item.seq;
    const body = parseBody(item.entry);
    if (body === undefined) {
      report({ index, seq, reason: 'malformed', message: 'Entry text is not a valid log entry' });
      previous = undefined;
      continue;
    }
    if (body.room !== room)
      report({ index, seq, reason: 'wrong_room', message: `Entry belongs to room ${body.room}` });
    if (body.seq !== seq)
      report({ index, seq, reason: 'seq_mismatch', message: `Entry says seq ${body.seq}` });
    const hash = await sha256Hex(utf8(item.entry));
    if (hash !== item.hash) {
      report({ index, seq, reason: 'hash_mismatch', message: 'The entry text does not hash to its hash' });
    }
    if (previous === undefined) {
      if (index === 0) fromGenesis = body.prev === GENESIS_HASH;
    } else {
      if (body.seq <= previous.seq) {
        report({
          index,
          seq,
          reason: 'out_of_order',
          message: `Entry ${body.seq} follows entry ${previous.seq}`,
        });
      }
      if (body.prev !== previous.hash) {
        report({
          index,
          seq,
          reason: 'broken_chain',
          message: 'Entry does not link to the entry before it: one was changed, removed or reordered',
        });
      }
    }
    const key = keys.get(item.kid);
    if (key === undefined) {
      report({ index, seq, reason: 'unknown_key', message: `No published key ${item.kid}` });
    } else {
      const signature = bytesOfBase64Url(item.signature);
      let valid = false;
      try {
        valid =
          signature !== undefined &&
          (await crypto.subtle.verify(
            { name: 'Ed25519' },
            key,
            signature,
            utf8(LOG_SIGNATURE_CONTEXT + item.hash),
          ));
      } catch {
        valid = false;
      }
      if (!valid) report({ index, seq, reason: 'bad_signature', message: 'The signature does not verify' });
    }
    if (body.visibility === 'host') {
      const reveal = item.reveal;
      if (reveal === undefined) secret++;
      else if (
        !isRecord(reveal) ||
        typeof reveal.salt !== 'string' ||
        !HEX32.test(reveal.salt) ||
        typeof reveal.content !== 'string' ||
        (await commitmentOf(reveal.salt, reveal.content)) !== body.commitment
      ) {
        report({
          index,
          seq,
          reason: 'reveal_mismatch',
          message: 'The revealed roll does not match its commitment',
        });
      } else revealed++;
    }
    // Chain from what the entry claims its hash is, so one changed entry is reported once.
    previous = { hash: item.hash, seq: body.seq };
  }
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    entries: document.entries.length,
    fromGenesis,
    head: previous?.hash ?? GENESIS_HASH,
    revealed,
    secret,
  };
}
