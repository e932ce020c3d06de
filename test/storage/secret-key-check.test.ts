import { randomBytes } from 'node:crypto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import {
  adoptSecretKey,
  checkSharedSecretKey,
  precheckSharedSecretKey,
  secretKeyFingerprint,
} from '../../src/storage/secret-key-check.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

const T0 = 1_800_000_000_000;
const secret = () => new Uint8Array(randomBytes(32));

describe.each(engines)('the shared SECRET_KEY check on $name (red-team 2026-12q Q2)', ({ name }) => {
  const opened: TestDatabase[] = [];
  let test: TestDatabase;
  beforeEach(async () => {
    test = await createTestDatabase(name);
    opened.push(test);
  });
  afterAll(async () => {
    for (const database of opened) await database.dispose();
  });
  const stored = async () =>
    (await test.database.db.selectFrom('secret_key_check').selectAll().executeTakeFirst())?.fingerprint;

  it('records the first secret and then accepts only it', async () => {
    const one = secret();
    expect(await checkSharedSecretKey(test.database.db, one, undefined, T0)).toBe('recorded');
    expect(await stored()).toBe(secretKeyFingerprint(one));
    expect(await checkSharedSecretKey(test.database.db, one, undefined, T0 + 1)).toBe('matched');
    await expect(checkSharedSecretKey(test.database.db, secret(), undefined, T0 + 2)).rejects.toThrow(
      ConfigError,
    );
    // Refused as previous too: only the stored secret or a rotation away from it passes.
    await expect(checkSharedSecretKey(test.database.db, secret(), secret(), T0 + 3)).rejects.toThrow(
      /SECRET_KEY is not the secret the other instances on this database use/,
    );
    expect(await stored()).toBe(secretKeyFingerprint(one));
  });

  it('moves on with a rotation (SECRET_KEY_PREVIOUS), after which the old secret alone is refused', async () => {
    const old = secret();
    const fresh = secret();
    await checkSharedSecretKey(test.database.db, old, undefined, T0);
    expect(await checkSharedSecretKey(test.database.db, fresh, old, T0 + 1)).toBe('rotated');
    expect(await stored()).toBe(secretKeyFingerprint(fresh));
    expect(await checkSharedSecretKey(test.database.db, fresh, old, T0 + 2)).toBe('matched');
    await expect(checkSharedSecretKey(test.database.db, old, undefined, T0 + 3)).rejects.toThrow(ConfigError);
    // Rolled back: the old one again, with the new one as previous.
    expect(await checkSharedSecretKey(test.database.db, old, fresh, T0 + 4)).toBe('rotated');
  });

  it('lets revoke-all adopt a new secret outright', async () => {
    const leaked = secret();
    const replacement = secret();
    await checkSharedSecretKey(test.database.db, leaked, undefined, T0);
    await test.database.db.transaction().execute((trx) => adoptSecretKey(trx, replacement, T0 + 1));
    expect(await checkSharedSecretKey(test.database.db, replacement, undefined, T0 + 2)).toBe('matched');
    await expect(checkSharedSecretKey(test.database.db, leaked, undefined, T0 + 3)).rejects.toThrow(
      ConfigError,
    );
    // On a database that had none yet, too.
    const other = await createTestDatabase(name);
    opened.push(other);
    await other.database.db.transaction().execute((trx) => adoptSecretKey(trx, replacement, T0));
    expect(await checkSharedSecretKey(other.database.db, replacement, undefined, T0 + 1)).toBe('matched');
  });

  it('lets exactly one of two first instances with different secrets start', async () => {
    const outcomes = await Promise.allSettled([
      checkSharedSecretKey(test.database.db, secret(), undefined, T0),
      checkSharedSecretKey(test.database.db, secret(), undefined, T0),
    ]);
    expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(['fulfilled', 'rejected']);
  });
});

describe.each(engines)('the precheck before a core opens its keys, on $name', ({ name }) => {
  it('passes with no fingerprint, the stored secret or the previous one, writing nothing; refuses another', async () => {
    const test = await createTestDatabase(name);
    try {
      const one = secret();
      await precheckSharedSecretKey(test.database.db, secret(), undefined);
      expect(await test.database.db.selectFrom('secret_key_check').selectAll().execute()).toEqual([]);
      await checkSharedSecretKey(test.database.db, one, undefined, T0);
      await precheckSharedSecretKey(test.database.db, one, undefined);
      await precheckSharedSecretKey(test.database.db, secret(), one);
      await expect(precheckSharedSecretKey(test.database.db, secret(), undefined)).rejects.toThrow(
        ConfigError,
      );
    } finally {
      await test.dispose();
    }
  });
});
