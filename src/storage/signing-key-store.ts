import { type Kysely, PostgresAdapter, sql } from 'kysely';
import type { Schema } from './schema.js';

/** One stored signing key. Times are epoch ms. */
export interface SigningKeyRecord {
  kid: string;
  /** The JWS algorithm the key is for (`EdDSA`, `ES256`, `RS256`). */
  algorithm: string;
  /** Rotation number, unique per algorithm. */
  generation: number;
  /** The public JWK, as JSON. */
  publicJwk: string;
  /** The private JWK, sealed (never stored in clear). */
  sealedPrivateKey: string;
  createdAt: number;
  /** When the key starts signing. */
  activatesAt: number;
  /** When it was withdrawn, or null. */
  revokedAt: number | null;
}

/**
 * Storage of the asymmetric signing keys that every instance shares (issue 11). The key set is
 * small and bounded: rotation purges keys once the last token they signed has expired.
 */
export interface SigningKeyStore {
  /** Every stored key of `algorithm`, oldest generation first. */
  listKeys(algorithm: string): Promise<SigningKeyRecord[]>;
  /**
   * Adds a key. Returns false, writing nothing, when its `kid` or its `(algorithm, generation)`
   * already exists: a concurrent rotation (or start-up) won the race.
   */
  insertKey(key: SigningKeyRecord): Promise<boolean>;
  /** Marks a key revoked at `at`; false when there is no such key or it already was. */
  revokeKey(kid: string, at: number): Promise<boolean>;
  /**
   * Marks every key not yet revoked, of every algorithm, revoked at `at` (`gatehouse revoke-all`);
   * returns those it revoked. On PostgreSQL it first locks the table against other writers until
   * the caller's transaction ends: under READ COMMITTED a second revoke-all whose UPDATE waited on
   * the first's locked rows re-checked only those once the first committed, never saw the fresh key
   * the first had inserted, and left it unrevoked beside its own (two current keys). The lock
   * (`SHARE ROW EXCLUSIVE`) conflicts with itself and with rotations' inserts, never with readers;
   * SQLite's write transactions are serial already.
   */
  revokeAllKeys(at: number): Promise<{ kid: string; algorithm: string }[]>;
  /** Moves a key's activation forward to `at` (never later); false when nothing changed. */
  activateKey(kid: string, at: number): Promise<boolean>;
  /**
   * Replaces a key's sealed private key, only if it still holds `expected` (compare-and-set: two
   * instances re-encrypting at once write once).
   */
  replaceSealedKey(kid: string, expected: string, sealed: string): Promise<boolean>;
  /** Deletes the given keys; returns how many went. */
  deleteKeys(kids: readonly string[]): Promise<number>;
}

/** Creates the {@link SigningKeyStore} over the `signing_keys` table (pool or transaction). */
export function createSigningKeyStore(db: Kysely<Schema>): SigningKeyStore {
  return {
    async listKeys(algorithm) {
      const rows = await db
        .selectFrom('signing_keys')
        .selectAll()
        .where('alg', '=', algorithm)
        .orderBy('generation', 'asc')
        .execute();
      return rows.map((row) => ({
        kid: row.kid,
        algorithm: row.alg,
        generation: Number(row.generation),
        publicJwk: row.public_jwk,
        sealedPrivateKey: row.private_key,
        createdAt: Number(row.created_at),
        activatesAt: Number(row.activates_at),
        revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
      }));
    },
    async insertKey(key) {
      // No conflict target: either unique constraint (kid, or algorithm + generation) makes it a no-op.
      const result = await db
        .insertInto('signing_keys')
        .values({
          kid: key.kid,
          alg: key.algorithm,
          generation: key.generation,
          public_jwk: key.publicJwk,
          private_key: key.sealedPrivateKey,
          created_at: key.createdAt,
          activates_at: key.activatesAt,
          revoked_at: key.revokedAt,
        })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },
    async revokeKey(kid, at) {
      const result = await db
        .updateTable('signing_keys')
        .set({ revoked_at: at })
        .where('kid', '=', kid)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async revokeAllKeys(at) {
      if (db.getExecutor().adapter instanceof PostgresAdapter) {
        await sql`lock table signing_keys in share row exclusive mode`.execute(db);
      }
      const rows = await db
        .updateTable('signing_keys')
        .set({ revoked_at: at })
        .where('revoked_at', 'is', null)
        .returning(['kid', 'alg'])
        .execute();
      return rows.map((row) => ({ kid: row.kid, algorithm: row.alg }));
    },
    async activateKey(kid, at) {
      const result = await db
        .updateTable('signing_keys')
        .set({ activates_at: at })
        .where('kid', '=', kid)
        .where('activates_at', '>', at)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async replaceSealedKey(kid, expected, sealed) {
      const result = await db
        .updateTable('signing_keys')
        .set({ private_key: sealed })
        .where('kid', '=', kid)
        .where('private_key', '=', expected)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async deleteKeys(kids) {
      if (kids.length === 0) return 0;
      const result = await db.deleteFrom('signing_keys').where('kid', 'in', kids).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
