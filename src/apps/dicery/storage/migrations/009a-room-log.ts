import type { Kysely } from 'kysely';

/**
 * The per-room roll log (issue 14, items 5 and 7): a hash chain of every roll, signed with a
 * dedicated Ed25519 key, and the secret rolls' salts.
 *
 * - `room_log_entries`: one row per roll, keyed by the roll event's sequence number. `entry` is the
 *   exact JSON text that was hashed (`hash` = SHA-256 of it) and signed (`signature`, by `key_id`);
 *   it names the previous entry's hash (`prev_hash`), so a changed, removed or reordered entry
 *   breaks the chain. A secret roll's entry holds only a commitment, SHA-256(salt ‖ content);
 *   `salt` stays here (never sent) until the host reveals the roll (`revealed_seq`: the sequence
 *   number of the `roll_revealed` event). Bounded by the rolls, which are rate-limited per player
 *   and per address; deleted with their room.
 * - `room_log_keys`: the log signing keys. The private key is sealed at rest
 *   (`Gatehouse.appSealer`), the public key published (`GET /rooms/log-keys`). Rows are never
 *   deleted while an entry cites them (none is deleted today: one row per key change, and a key
 *   changes only when its sealed private key no longer opens). `slot = 'current'` marks the one
 *   signing key; its unique index lets concurrent instances race to create it and agree.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('room_log_keys')
    .addColumn('key_id', 'text', (c) => c.primaryKey())
    .addColumn('slot', 'text')
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('sealed_private_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('retired_at', 'bigint')
    .execute();
  await db.schema.createIndex('room_log_keys_slot_idx').on('room_log_keys').column('slot').unique().execute();

  await db.schema
    .createTable('room_log_entries')
    .addColumn('room_code', 'text', (c) => c.notNull().references('rooms.code').onDelete('cascade'))
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('entry', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull().references('room_log_keys.key_id'))
    .addColumn('visibility', 'text', (c) => c.notNull())
    .addColumn('player_id', 'text', (c) => c.notNull())
    .addColumn('salt', 'text')
    .addColumn('revealed_seq', 'bigint')
    .addPrimaryKeyConstraint('room_log_entries_pk', ['room_code', 'seq'])
    .execute();
}

/** Drops what {@link up} created. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('room_log_entries').execute();
  await db.schema.dropTable('room_log_keys').execute();
}
