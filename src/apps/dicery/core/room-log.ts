/**
 * The signed per-room roll log (issue 14, item 7), server side: builds each roll's entry, chains
 * it to the room's previous one, signs it with the dedicated Ed25519 log key, and answers the
 * log documents and published keys. The format and the verifier are in `../shared/room-log.ts`.
 *
 * @module
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';
import type { AppSealer } from '../../../index.js';
import {
  GENESIS_HASH,
  LOG_SIGNATURE_CONTEXT,
  ROOM_LOG_FORMAT,
  type RoomLogDocument,
  type RoomLogItem,
  type RoomLogKey,
} from '../shared/room-log.js';
import type { RollEventData } from '../shared/wire.js';
import type { RoomLogEntryRecord, RoomLogKeyRecord, RoomLogStore } from '../storage/room-log-store.js';
import { ROOM_PAGE_MAX_BYTES } from './page-budget.js';
import type { RoomEvent } from './room-bus.js';

/**
 * Most entries one log page holds. A page is built and serialised on the event loop, so its size
 * bounds how long one member's read can hold up everyone else: 200 entries of at most
 * `maxDrawsPerRoll` dice each stay around a megabyte (red-team F1 measured 100 MB at 1000 entries
 * before the draw cap).
 */
export const ROOM_LOG_MAX_PAGE = 200;

/**
 * Longest {@link RoomLog.keys} answers from memory before reading the keys again (ms). The route is
 * public and unauthenticated, so a read per request let anyone put unbounded load on the database;
 * now it costs at most one read per this interval per instance. A key this instance creates or
 * retires shows at once; another instance's within this long (keys change only when a sealed key no
 * longer opens, and clients cache the answer for 5 minutes anyway).
 */
export const ROOM_LOG_KEYS_MAX_AGE_MS = 5_000;

/**
 * JSON with object keys sorted at every level: the same value always gives the same text, so a
 * secret roll's content can be rebuilt byte for byte from the stored roll when it is revealed.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** What a roll's entry commits to: its notation, label, dice and total (the "results"). */
export function rollContent(data: RollEventData): string {
  return canonicalJson({
    notation: data.notation,
    label: data.label,
    terms: data.terms,
    modifier: data.modifier,
    total: data.total,
  });
}

function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** SHA-256 of the salt's bytes then the content's UTF-8: a secret roll's commitment. */
export function commitRoll(saltHex: string, content: string): string {
  return sha256Hex(Buffer.concat([Buffer.from(saltHex, 'hex'), Buffer.from(content, 'utf8')]));
}

/** Options of {@link createRoomLog}. */
export interface RoomLogOptions {
  /** Keys and entries outside any transaction (the key's first load, log pages). */
  store: RoomLogStore;
  /** Seals the private key at rest (`gatehouse.appSealer('dicery-room-log')`). */
  sealer: AppSealer;
  clock: () => number;
}

/** The roll log service. */
export interface RoomLog {
  /**
   * Loads the signing key, creating it on first use. Call before a roll's transaction (on SQLite
   * that transaction holds the only connection). Throws when the database is unavailable.
   */
  ready(): Promise<void>;
  /**
   * Appends the entry of `roll` (just appended, so the room's row lock is held) to its room's
   * chain through `store` (bound to the roll's transaction), stores the chain hash in the roll
   * event, and returns it. A secret roll (`visibility: "host"`) enters as a commitment under a
   * fresh 128-bit salt, kept on the server until the host reveals it.
   */
  record(store: RoomLogStore, roll: RoomEvent<'roll'>): Promise<string>;
  /**
   * Up to `limit` entries after `afterSeq`, with the keys they cite; reveals only of revealed
   * rolls. Fewer when the entries and reveals pass {@link ROOM_PAGE_MAX_BYTES} (at least one),
   * `next_after` then naming the rest.
   */
  page(
    code: string,
    afterSeq: number,
    limit: number,
  ): Promise<RoomLogDocument & { next_after: number | null }>;
  /**
   * Every log key ever used (all stay published while any entry cites them, i.e. always), from
   * memory when read less than {@link ROOM_LOG_KEYS_MAX_AGE_MS} ago; concurrent calls share one read.
   * Rejects (and remembers nothing) when the read fails, so the next call reads again.
   */
  keys(): Promise<RoomLogKey[]>;
}

const SEAL_CONTEXT = (kid: string) => `room-log-key:${kid}`;

/** Creates the {@link RoomLog}. */
export function createRoomLog(options: RoomLogOptions): RoomLog {
  const { store, sealer, clock } = options;
  let signer: { kid: string; key: KeyObject } | undefined;
  let loading: Promise<void> | undefined;
  // The published keys as last read: one array (a few keys, one per key change ever) and at most
  // one read in flight. `keysVersion` moves when this instance changes a key, so a read that
  // started before the change neither fills the cache nor serves calls made after it.
  let publishedKeys: { keys: RoomLogKey[]; readAt: number } | undefined;
  let readingKeys: { version: number; keys: Promise<RoomLogKey[]> } | undefined;
  let keysVersion = 0;
  const forgetKeys = () => {
    keysVersion += 1;
    publishedKeys = undefined;
  };

  const makeKey = async () => {
    const pair = generateKeyPairSync('ed25519');
    const jwk = pair.publicKey.export({ format: 'jwk' });
    if (jwk.x === undefined) throw new Error('Ed25519 public key without x');
    const kid = `rlk-${sha256Hex(Buffer.from(jwk.x, 'base64url')).slice(0, 16)}`;
    const pkcs8 = pair.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
    await store.insertCurrentKey({
      keyId: kid,
      publicKey: jwk.x,
      sealedPrivateKey: sealer.seal(pkcs8, SEAL_CONTEXT(kid)),
      createdAt: clock(),
    });
    forgetKeys();
  };

  const openKey = (record: RoomLogKeyRecord) => {
    const pkcs8 = sealer.open(record.sealedPrivateKey, SEAL_CONTEXT(record.keyId));
    if (pkcs8 === undefined) return undefined;
    return createPrivateKey({ key: Buffer.from(pkcs8, 'base64'), format: 'der', type: 'pkcs8' });
  };

  const load = async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await store.currentKey();
      if (current === undefined) {
        // Concurrent instances may all get here: the `current` slot is unique, one insert wins,
        // and every instance then reads the winner.
        await makeKey();
        continue;
      }
      const key = openKey(current);
      if (key !== undefined) {
        signer = { kid: current.keyId, key };
        return;
      }
      // Sealed under a SECRET_KEY no longer configured: the key can no longer sign, so it retires
      // (and stays published for the entries it signed) and a new one takes over.
      await store.retireKey(current.keyId, clock());
      forgetKeys();
    }
    throw new Error('No usable room-log signing key after 3 attempts');
  };

  const toItem = (entry: RoomLogEntryRecord, reveal?: { salt: string; content: string }): RoomLogItem => {
    const item: RoomLogItem = {
      seq: entry.seq,
      hash: entry.hash,
      signature: entry.signature,
      kid: entry.keyId,
      entry: entry.entry,
    };
    if (reveal !== undefined && entry.revealedSeq !== null) {
      item.reveal = { salt: reveal.salt, content: reveal.content, revealed_seq: entry.revealedSeq };
    }
    return item;
  };

  const toPublished = (key: RoomLogKeyRecord): RoomLogKey => ({
    kid: key.keyId,
    alg: 'Ed25519',
    public_key: key.publicKey,
    created_at: new Date(key.createdAt).toISOString(),
    retired_at: key.retiredAt === null ? null : new Date(key.retiredAt).toISOString(),
  });

  return {
    async ready() {
      if (signer !== undefined) return;
      loading ??= load().finally(() => {
        loading = undefined;
      });
      await loading;
    },

    async record(tx, roll) {
      if (signer === undefined) throw new Error('RoomLog.record before ready()');
      const { data } = roll;
      // Read under the room's row lock (the roll's append took it): no other roll of this room
      // can sit between this read and this insert, so the chain never forks.
      const previous = await tx.lastEntry(roll.room);
      const secret = data.visibility === 'host';
      const content = rollContent(data);
      const salt = secret ? randomBytes(16).toString('hex') : null;
      const entry = canonicalJson({
        v: 1,
        room: roll.room,
        seq: roll.id,
        prev: previous?.hash ?? GENESIS_HASH,
        at: roll.at,
        player: { id: data.player.id, name: data.player.name },
        visibility: secret ? 'host' : 'room',
        ...(salt === null ? { roll: JSON.parse(content) } : { commitment: commitRoll(salt, content) }),
      });
      const hash = sha256Hex(entry);
      const signature = sign(null, Buffer.from(LOG_SIGNATURE_CONTEXT + hash), signer.key).toString(
        'base64url',
      );
      await tx.insertEntry({
        roomCode: roll.room,
        seq: roll.id,
        prevHash: previous?.hash ?? GENESIS_HASH,
        hash,
        entry,
        signature,
        keyId: signer.kid,
        visibility: secret ? 'host' : 'room',
        playerId: data.player.id,
        salt,
        revealedSeq: null,
      });
      data.hash = hash;
      await tx.replaceEventData(roll.room, roll.id, JSON.stringify(data));
      return hash;
    },

    async page(code, afterSeq, limit) {
      const size = Math.min(Math.max(Math.trunc(limit), 1), ROOM_LOG_MAX_PAGE);
      // Cut to the size budget in the database (ROOM_PAGE_MAX_BYTES, counting a revealed roll's
      // event too): rows beyond it are never sent, decoded or parsed.
      const [entries, keys] = await Promise.all([
        store.listEntries(code, afterSeq, size, ROOM_PAGE_MAX_BYTES),
        store.listKeys(),
      ]);
      const kept = entries.rows;
      const items = kept.map((entry) =>
        toItem(
          entry,
          entry.salt !== null && entry.revealedEventData !== null
            ? {
                salt: entry.salt,
                content: rollContent(JSON.parse(entry.revealedEventData) as RollEventData),
              }
            : undefined,
        ),
      );
      const cited = new Set(kept.map((entry) => entry.keyId));
      const last = kept.at(-1);
      const more = entries.more;
      return {
        format: ROOM_LOG_FORMAT,
        room: code,
        keys: keys.filter((key) => cited.has(key.keyId)).map(toPublished),
        entries: items,
        next_after: more && last !== undefined ? last.seq : null,
      };
    },

    async keys() {
      const now = clock();
      // The wall clock may step back: a read "from the future" counts as old (read again).
      if (
        publishedKeys !== undefined &&
        now >= publishedKeys.readAt &&
        now - publishedKeys.readAt < ROOM_LOG_KEYS_MAX_AGE_MS
      ) {
        return publishedKeys.keys;
      }
      if (readingKeys === undefined || readingKeys.version !== keysVersion) {
        const version = keysVersion;
        const reading = store.listKeys().then((rows) => {
          const keys = rows.map(toPublished);
          if (version === keysVersion) publishedKeys = { keys, readAt: clock() };
          return keys;
        });
        // Settled either way, the next call after it reads afresh (when the cache is stale or the
        // read failed): a failure is never remembered, as an empty list or otherwise.
        const settled = () => {
          if (readingKeys?.keys === reading) readingKeys = undefined;
        };
        void reading.then(settled, settled);
        readingKeys = { version, keys: reading };
      }
      return readingKeys.keys;
    },
  };
}
