import type { Kysely } from 'kysely';
import { lockUserRow } from '../../storage/lock-user-row.js';
import type { Schema } from '../../storage/schema.js';

/** A registered passkey (WebAuthn credential), as stored. */
export interface PasskeyRecord {
  /** Credential id, base64url. */
  id: string;
  userId: string;
  /** COSE public key, base64url. */
  publicKey: string;
  /** Signature counter last seen. */
  counter: number;
  /** `multiDevice` for a passkey that may be synced (BE flag), else `singleDevice`. */
  deviceType: 'singleDevice' | 'multiDevice';
  /** The BS flag: the passkey is backed up (synced) now. */
  backedUp: boolean;
  transports: string[];
  /** A label the owner can recognise (the browser's user agent summary at registration). */
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

/** Persistence of passkeys (migration 014a). */
export interface PasskeyStore {
  /** The account's passkeys, oldest first. */
  listPasskeys(userId: string): Promise<PasskeyRecord[]>;
  /** How many passkeys the account holds. */
  countPasskeys(userId: string): Promise<number>;
  /** A passkey by credential id, whoever owns it. */
  findPasskey(id: string): Promise<PasskeyRecord | undefined>;
  /** Inserts a passkey; false when the credential id is already registered (atomic). */
  insertPasskey(passkey: PasskeyRecord): Promise<boolean>;
  /**
   * Inserts a passkey unless its account already holds `max`: `limit` then, `duplicate` when the
   * credential id is registered already. Exact under concurrency: the count and the insert run in
   * one transaction holding the account's row lock (`lockUserRow`).
   */
  insertPasskeyWithinCap(passkey: PasskeyRecord, max: number): Promise<'inserted' | 'limit' | 'duplicate'>;
  /**
   * Records a use: the new counter and backup state. Compare-and-set on the counter read before
   * the check, so two requests replaying one assertion cannot both move it (false for the loser).
   */
  recordPasskeyUse(
    id: string,
    previousCounter: number,
    use: { counter: number; backedUp: boolean; at: number },
  ): Promise<boolean>;
  /** Removes one of the account's passkeys; false when it has none with this id. */
  deletePasskey(userId: string, id: string): Promise<boolean>;
  /** Removes every passkey of the account; how many were removed. */
  deletePasskeys(userId: string): Promise<number>;
}

type Row = Schema['passkeys'];

function toRecord(row: Row): PasskeyRecord {
  return {
    id: row.id,
    userId: row.user_id,
    publicKey: row.public_key,
    counter: Number(row.counter),
    deviceType: row.device_type === 'multiDevice' ? 'multiDevice' : 'singleDevice',
    backedUp: Number(row.backed_up) === 1,
    transports: row.transports === '' ? [] : row.transports.split(','),
    name: row.name,
    createdAt: Number(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
  };
}

/** A {@link PasskeyStore} over Kysely (the pool or a transaction), for SQLite and PostgreSQL alike. */
export function createPasskeyStore(db: Kysely<Schema>): PasskeyStore {
  const countPasskeys = async (trx: Kysely<Schema>, userId: string) => {
    const row = await trx
      .selectFrom('passkeys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  };
  const insertPasskey = async (trx: Kysely<Schema>, passkey: PasskeyRecord) => {
    const row = await trx
      .insertInto('passkeys')
      .values({
        id: passkey.id,
        user_id: passkey.userId,
        public_key: passkey.publicKey,
        counter: passkey.counter,
        device_type: passkey.deviceType,
        backed_up: passkey.backedUp ? 1 : 0,
        transports: passkey.transports.join(','),
        name: passkey.name,
        created_at: passkey.createdAt,
        last_used_at: passkey.lastUsedAt,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .executeTakeFirst();
    return row !== undefined;
  };
  return {
    async listPasskeys(userId) {
      const rows = await db
        .selectFrom('passkeys')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toRecord);
    },

    countPasskeys: (userId) => countPasskeys(db, userId),

    async findPasskey(id) {
      const row = await db.selectFrom('passkeys').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toRecord(row);
    },

    insertPasskey: (passkey) => insertPasskey(db, passkey),

    insertPasskeyWithinCap: (passkey, max) =>
      lockUserRow(db, passkey.userId, async (trx) => {
        if ((await countPasskeys(trx, passkey.userId)) >= max) return 'limit';
        return (await insertPasskey(trx, passkey)) ? 'inserted' : 'duplicate';
      }),

    async recordPasskeyUse(id, previousCounter, use) {
      const result = await db
        .updateTable('passkeys')
        .set({ counter: use.counter, backed_up: use.backedUp ? 1 : 0, last_used_at: use.at })
        .where('id', '=', id)
        .where('counter', '=', previousCounter)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async deletePasskey(userId, id) {
      const result = await db
        .deleteFrom('passkeys')
        .where('user_id', '=', userId)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },

    async deletePasskeys(userId) {
      const result = await db.deleteFrom('passkeys').where('user_id', '=', userId).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
