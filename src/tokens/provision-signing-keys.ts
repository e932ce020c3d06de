import type { Database } from '../storage/open-database.js';
import { createSigningKeyStore } from '../storage/signing-key-store.js';
import {
  type AsymmetricAlgorithm,
  createSigningKeySealer,
  generateSigningKey,
  readLegacyKeyFile,
  sealContext,
} from './signing-key-material.js';

/** What {@link provisionSigningKeys} did, for the start-up log and the tests. */
export interface ProvisionReport {
  /** Keys imported from `DATA_DIR/signing-keys.json` (the first start after the upgrade). */
  imported: string[];
  /** The key generated because there was none (the first start of a new installation). */
  generated: string | undefined;
  /** Keys whose private key was sealed under SECRET_KEY_PREVIOUS and is now sealed under SECRET_KEY. */
  resealed: string[];
}

/**
 * Makes sure the database holds a key set for `algorithm`, once per installation: with no key of
 * that algorithm stored, the keys of a pre-database `DATA_DIR/signing-keys.json` are imported (so
 * tokens signed before the upgrade keep verifying), or else one key is generated, current at once.
 * Several instances starting together are safe: the inserts run in one transaction and a key that
 * lost the race to another instance's (same kid or generation) is not written.
 *
 * Then every key sealed under SECRET_KEY_PREVIOUS is re-sealed under SECRET_KEY (compare-and-set,
 * so two instances doing it at once write once), after which the previous secret can be dropped.
 */
export async function provisionSigningKeys(options: {
  database: Database;
  algorithm: AsymmetricAlgorithm;
  dataDir: string;
  now: number;
  secret: Uint8Array;
  previousSecret?: Uint8Array | undefined;
}): Promise<ProvisionReport> {
  const { database, algorithm, now } = options;
  const sealer = createSigningKeySealer(options.secret);
  const report: ProvisionReport = { imported: [], generated: undefined, resealed: [] };

  const existing = await createSigningKeyStore(database.db).listKeys(algorithm);
  if (existing.length === 0) {
    // Read (and keys generated) outside the transaction: file and CPU work hold no lock.
    const legacy = await readLegacyKeyFile({ dataDir: options.dataDir, algorithm, now, sealer });
    const records =
      legacy.length > 0
        ? legacy
        : [await generateSigningKey({ algorithm, generation: 1, now, activatesAt: now, sealer })];
    const inserted = await database
      .transaction(async (trx) => {
        const store = createSigningKeyStore(trx);
        // Another instance provisioned meanwhile: its set stands, ours is dropped whole.
        if ((await store.listKeys(algorithm)).length > 0) return false;
        for (const record of records) {
          if (!(await store.insertKey(record))) throw new LostProvisioningRace();
        }
        return true;
      })
      .catch((error: unknown) => {
        if (error instanceof LostProvisioningRace) return false;
        throw error;
      });
    if (inserted && legacy.length > 0) report.imported = records.map((record) => record.kid);
    if (inserted && legacy.length === 0) report.generated = records[0]?.kid;
  }

  if (options.previousSecret !== undefined) {
    const previous = createSigningKeySealer(options.previousSecret);
    const store = createSigningKeyStore(database.db);
    for (const key of await store.listKeys(algorithm)) {
      const context = sealContext(key.algorithm, key.kid);
      if (sealer.open(key.sealedPrivateKey, context) !== undefined) continue;
      const opened = previous.open(key.sealedPrivateKey, context);
      if (opened === undefined) continue;
      if (await store.replaceSealedKey(key.kid, key.sealedPrivateKey, sealer.seal(opened, context))) {
        report.resealed.push(key.kid);
      }
    }
  }
  return report;
}

/** Rolls the provisioning transaction back when another instance's keys got in first. */
class LostProvisioningRace extends Error {}
