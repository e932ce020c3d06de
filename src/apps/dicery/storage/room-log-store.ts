import { type Kysely, type RawBuilder, type Selectable, sql } from 'kysely';
import type { StoredRoomEvent } from './room-store.js';
import type { DiceryTables, RoomLogEntriesTable } from './tables.js';

/** A stored log entry (see migration `009a-room-log`). */
export interface RoomLogEntryRecord {
  roomCode: string;
  seq: number;
  prevHash: string;
  hash: string;
  entry: string;
  signature: string;
  keyId: string;
  visibility: 'room' | 'host';
  playerId: string;
  /** A secret roll's salt (hex); never sent before the reveal. */
  salt: string | null;
  /** Sequence number of the `roll_revealed` event, once revealed. */
  revealedSeq: number | null;
}

/** A log entry of a page, with its roll's stored event JSON when the roll is a revealed secret. */
export interface RoomLogPageEntry extends RoomLogEntryRecord {
  /** The roll event's JSON, only for a secret roll already revealed (the page shows its content). */
  revealedEventData: string | null;
}

/**
 * Rows of one page, cut in the database to a size budget so that rows beyond it are never sent
 * to (or decoded by) the server, and whether rows remain after them.
 */
export interface SizedPage<T> {
  rows: T[];
  /** True when the page was cut by the budget or filled its count: ask for the rest. */
  more: boolean;
}

/** A stored log signing key. */
export interface RoomLogKeyRecord {
  keyId: string;
  current: boolean;
  /** Raw public key, base64url. */
  publicKey: string;
  sealedPrivateKey: string;
  createdAt: number;
  retiredAt: number | null;
}

/**
 * Persistence of the per-room roll log and its signing keys. Build it over a transaction to write
 * an entry in the same unit of work as its roll event (whose append row-locks the room, so entries
 * of one room are written one at a time and the chain cannot fork).
 */
export interface RoomLogStore {
  /** The newest entry of a room (highest seq), if any. */
  lastEntry(code: string): Promise<Pick<RoomLogEntryRecord, 'seq' | 'hash'> | undefined>;
  insertEntry(entry: RoomLogEntryRecord): Promise<void>;
  /** The entry of the roll numbered `seq`. */
  findEntry(code: string, seq: number): Promise<RoomLogEntryRecord | undefined>;
  /**
   * Up to `limit` entries with `seq > afterSeq`, in order, fewer when their size in bytes (the
   * entry's JSON, plus a revealed secret roll's event JSON) passes `maxBytes`: at least one.
   */
  listEntries(
    code: string,
    afterSeq: number,
    limit: number,
    maxBytes: number,
  ): Promise<SizedPage<RoomLogPageEntry>>;
  /** Entries among `seqs` (at most a page), for the history's reveal state. */
  findEntries(code: string, seqs: readonly number[]): Promise<RoomLogEntryRecord[]>;
  /** Marks a secret roll revealed; false when it already was (of two concurrent reveals one wins). */
  markRevealed(code: string, seq: number, revealedSeq: number): Promise<boolean>;
  /**
   * Up to `limit` roll events of a room numbered below `beforeSeq`, newest first, fewer when their
   * JSON's bytes pass `maxBytes`: at least one (the history's pages; `(room_code, seq)` is the log's
   * unique index, so a page is one index range scan).
   */
  listRollEvents(
    code: string,
    beforeSeq: number,
    limit: number,
    maxBytes: number,
  ): Promise<SizedPage<StoredRoomEvent>>;
  /** The event numbered `seq` in a room. */
  findEvent(code: string, seq: number): Promise<StoredRoomEvent | undefined>;
  /** Rewrites a stored event's JSON (to add the chain hash, in the roll's own transaction). */
  replaceEventData(code: string, seq: number, dataJson: string): Promise<void>;
  /** The current signing key, if one exists. */
  currentKey(): Promise<RoomLogKeyRecord | undefined>;
  /**
   * Inserts a key as the current one unless another instance got there first (`ON CONFLICT DO
   * NOTHING` on the `current` slot); read {@link RoomLogStore.currentKey} afterwards.
   */
  insertCurrentKey(key: Omit<RoomLogKeyRecord, 'current' | 'retiredAt'>): Promise<void>;
  /** Retires the current key if it is still `keyId` (its sealed half no longer opens). */
  retireKey(keyId: string, now: number): Promise<void>;
  /** Every key, oldest first: all are published, since entries may cite any of them. */
  listKeys(): Promise<RoomLogKeyRecord[]>;
}

function toEntry(row: Selectable<RoomLogEntriesTable>): RoomLogEntryRecord {
  return {
    roomCode: row.room_code,
    seq: Number(row.seq),
    prevHash: row.prev_hash,
    hash: row.hash,
    entry: row.entry,
    signature: row.signature,
    keyId: row.key_id,
    visibility: row.visibility === 'host' ? 'host' : 'room',
    playerId: row.player_id,
    salt: row.salt,
    revealedSeq: row.revealed_seq === null ? null : Number(row.revealed_seq),
  };
}

/** Creates a {@link RoomLogStore} over a Kysely instance or transaction. */
export function createRoomLogStore(db: Kysely<DiceryTables>): RoomLogStore {
  return {
    async lastEntry(code) {
      const row = await db
        .selectFrom('room_log_entries')
        .select(['seq', 'hash'])
        .where('room_code', '=', code)
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row === undefined ? undefined : { seq: Number(row.seq), hash: row.hash };
    },
    async insertEntry(entry) {
      await db
        .insertInto('room_log_entries')
        .values({
          room_code: entry.roomCode,
          seq: entry.seq,
          prev_hash: entry.prevHash,
          hash: entry.hash,
          entry: entry.entry,
          signature: entry.signature,
          key_id: entry.keyId,
          visibility: entry.visibility,
          player_id: entry.playerId,
          salt: entry.salt,
          revealed_seq: entry.revealedSeq,
        })
        .execute();
    },
    async findEntry(code, seq) {
      const row = await db
        .selectFrom('room_log_entries')
        .selectAll()
        .where('room_code', '=', code)
        .where('seq', '=', seq)
        .executeTakeFirst();
      return row === undefined ? undefined : toEntry(row);
    },
    async listEntries(code, afterSeq, limit, maxBytes) {
      const page = db
        .selectFrom('room_log_entries')
        .selectAll()
        .where('room_code', '=', code)
        .where('seq', '>', afterSeq)
        .orderBy('seq')
        .limit(limit)
        .as('page');
      const sized = db
        .selectFrom(page)
        // Only a revealed secret roll shows its content on the page, so only its event is read.
        .leftJoin('room_events as ev', (join) =>
          join
            .onRef('ev.room_code', '=', 'page.room_code')
            .onRef('ev.seq', '=', 'page.seq')
            .on('page.salt', 'is not', null)
            .on('page.revealed_seq', 'is not', null),
        )
        .selectAll('page')
        .select([
          'ev.data as revealed_event_data',
          ...budgetColumns(sql`octet_length(page.entry) + coalesce(octet_length(ev.data), 0)`, sql`page.seq`),
        ])
        .as('sized');
      const rows = await db
        .selectFrom(sized)
        .selectAll()
        .where((eb) => eb.or([eb('used', '<=', maxBytes), eb('position', '=', 1)]))
        .orderBy('seq')
        .execute();
      return {
        rows: rows.map((row) => ({ ...toEntry(row), revealedEventData: row.revealed_event_data })),
        more: isCut(rows, limit),
      };
    },
    async findEntries(code, seqs) {
      if (seqs.length === 0) return [];
      const rows = await db
        .selectFrom('room_log_entries')
        .selectAll()
        .where('room_code', '=', code)
        .where('seq', 'in', [...seqs])
        .execute();
      return rows.map(toEntry);
    },
    async markRevealed(code, seq, revealedSeq) {
      const result = await db
        .updateTable('room_log_entries')
        .set({ revealed_seq: revealedSeq })
        .where('room_code', '=', code)
        .where('seq', '=', seq)
        .where('revealed_seq', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },
    async listRollEvents(code, beforeSeq, limit, maxBytes) {
      const page = db
        .selectFrom('room_events')
        .select(['seq', 'room_code', 'type', 'data', 'created_at'])
        .where('room_code', '=', code)
        .where('seq', '<', beforeSeq)
        .where('type', '=', 'roll')
        .orderBy('seq', 'desc')
        .limit(limit)
        .as('page');
      const sized = db
        .selectFrom(page)
        .selectAll()
        .select(budgetColumns(sql`octet_length(data)`, sql`seq desc`))
        .as('sized');
      const rows = await db
        .selectFrom(sized)
        .selectAll()
        .where((eb) => eb.or([eb('used', '<=', maxBytes), eb('position', '=', 1)]))
        .orderBy('seq', 'desc')
        .execute();
      return { rows: rows.map(toStoredEvent), more: isCut(rows, limit) };
    },
    async findEvent(code, seq) {
      const row = await db
        .selectFrom('room_events')
        .select(['seq', 'room_code', 'type', 'data', 'created_at'])
        .where('room_code', '=', code)
        .where('seq', '=', seq)
        .executeTakeFirst();
      return row === undefined ? undefined : toStoredEvent(row);
    },
    async replaceEventData(code, seq, dataJson) {
      await db
        .updateTable('room_events')
        .set({ data: dataJson })
        .where('room_code', '=', code)
        .where('seq', '=', seq)
        .execute();
    },
    async currentKey() {
      const row = await db
        .selectFrom('room_log_keys')
        .selectAll()
        .where('slot', '=', 'current')
        .executeTakeFirst();
      return row === undefined ? undefined : toKey(row);
    },
    async insertCurrentKey(key) {
      await db
        .insertInto('room_log_keys')
        .values({
          key_id: key.keyId,
          slot: 'current',
          public_key: key.publicKey,
          sealed_private_key: key.sealedPrivateKey,
          created_at: key.createdAt,
          retired_at: null,
        })
        .onConflict((oc) => oc.column('slot').doNothing())
        .execute();
    },
    async retireKey(keyId, now) {
      await db
        .updateTable('room_log_keys')
        .set({ slot: null, retired_at: now })
        .where('key_id', '=', keyId)
        .where('slot', '=', 'current')
        .execute();
    },
    async listKeys() {
      const rows = await db
        .selectFrom('room_log_keys')
        .selectAll()
        .orderBy('created_at')
        .orderBy('key_id')
        .execute();
      return rows.map(toKey);
    },
  };
}

/**
 * The columns a sized page is cut by, over the page's rows in `order`: `used`, the running sum of
 * `size` (bytes); `position`, the row's place (the first is always kept); `fetched`, how many rows
 * the page read (see {@link isCut}). PostgreSQL answers the three as bigint (strings).
 */
function budgetColumns(size: RawBuilder<unknown>, order: RawBuilder<unknown>) {
  return [
    sql<number | string>`sum(${size}) over (order by ${order})`.as('used'),
    sql<number | string>`row_number() over (order by ${order})`.as('position'),
    sql<number | string>`count(*) over ()`.as('fetched'),
  ];
}

/**
 * Whether rows remain after a sized page: it was cut by its budget (fewer rows than the database
 * read; PostgreSQL counts as bigint, a string) or read its whole count.
 */
function isCut(rows: readonly { fetched: number | string }[], limit: number): boolean {
  const fetched = Number(rows[0]?.fetched ?? 0);
  return rows.length < fetched || fetched === limit;
}

function toStoredEvent(row: {
  seq: number;
  room_code: string;
  type: string;
  data: string;
  created_at: number;
}): StoredRoomEvent {
  return {
    id: Number(row.seq),
    roomCode: row.room_code,
    type: row.type,
    data: row.data,
    createdAt: Number(row.created_at),
  };
}

function toKey(row: Selectable<DiceryTables['room_log_keys']>): RoomLogKeyRecord {
  return {
    keyId: row.key_id,
    current: row.slot === 'current',
    publicKey: row.public_key,
    sealedPrivateKey: row.sealed_private_key,
    createdAt: Number(row.created_at),
    retiredAt: row.retired_at === null ? null : Number(row.retired_at),
  };
}
