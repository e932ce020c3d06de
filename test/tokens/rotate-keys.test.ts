import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createSigningKeyStore } from '../../src/storage/signing-key-store.js';
import { createTestClock } from '../../src/testing.js';
import { createKeyring, KEY_PUBLICATION_DELAY_SECONDS, type Keyring } from '../../src/tokens/keyring.js';
import { revokeSigningKey, rotateSigningKeys } from '../../src/tokens/rotate-keys.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';

const secret = new Uint8Array(32).map((_, i) => (i * 7 + 7) % 256);
const RETAIN = 13 * 3600;
const verifyAt = (keyring: Keyring, token: string, now: number) =>
  keyring.verify(token, { typ: 'at+jwt', audience: 'api', requiredClaims: ['sub'], now });

describe.each(engines)('rotate-keys on $name', ({ name }) => {
  let test: TestDatabase;
  let keyring: Keyring;
  afterEach(async () => {
    keyring.close();
    await test.dispose();
  });
  const setup = async () => {
    test = await createTestDatabase(name);
    const clock = createTestClock();
    keyring = await createKeyring({
      algorithm: 'ES256',
      secret,
      issuer: 'gatehouse',
      dataDir: mkdtempSync(join(tmpdir(), 'gh-rotate-')),
      database: test.database,
      clock,
      retentionSeconds: RETAIN,
    });
    const sign = async () => {
      const iat = Math.floor(clock() / 1000);
      return keyring.sign({ sub: 'u1', aud: 'api', iat, exp: iat + 600 }, 'at+jwt');
    };
    const options = () => ({
      database: test.database,
      algorithm: 'ES256' as const,
      secret,
      now: clock(),
      retentionSeconds: RETAIN,
    });
    return { clock, sign, options };
  };

  it('publishes the next key at once and signs with it only after the publication delay', async () => {
    const { clock, sign, options } = await setup();
    const [first] = keyring.jwks().keys;
    const rotation = await rotateSigningKeys(options());
    expect(rotation.activatesAt).toBe(clock() + KEY_PUBLICATION_DELAY_SECONDS * 1000);
    await keyring.reload();
    expect(keyring.jwks().keys.map((key) => key.kid)).toEqual([first?.kid, rotation.kid]);
    expect(decodeProtectedHeader(await sign()).kid).toBe(first?.kid);
    clock.advance(KEY_PUBLICATION_DELAY_SECONDS * 1000 - 1);
    expect(decodeProtectedHeader(await sign()).kid).toBe(first?.kid);
    // No reload needed at the switch: the instant is in the rows every instance already read.
    clock.advance(1);
    expect(decodeProtectedHeader(await sign()).kid).toBe(rotation.kid);
  });

  it('refuses a second rotation while one is pending; two at once add exactly one key', async () => {
    const { clock, options } = await setup();
    const results = await Promise.allSettled([rotateSigningKeys(options()), rotateSigningKeys(options())]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect(rejected?.status === 'rejected' && rejected.reason).toMatchObject({
      code: expect.stringMatching(/^KEY_ROTATION_(PENDING|CONFLICT)$/),
    });
    const store = createSigningKeyStore(test.database.db);
    expect(await store.listKeys('ES256')).toHaveLength(2);
    await expect(rotateSigningKeys(options())).rejects.toMatchObject({ code: 'KEY_ROTATION_PENDING' });
    clock.advance(KEY_PUBLICATION_DELAY_SECONDS * 1000);
    await rotateSigningKeys(options());
    const generations = (await store.listKeys('ES256')).map((key) => key.generation);
    expect(generations).toEqual([1, 2, 3]);
  });

  it('revoking the signing key withdraws it at once and a replacement signs from now', async () => {
    const { clock, sign, options } = await setup();
    const token = await sign();
    const { kid } = decodeProtectedHeader(token);
    const before = keyring.revision();
    const { revoked, replacement } = await revokeSigningKey({ ...options(), kid: kid ?? '' });
    expect(revoked).toBe(kid);
    await keyring.reload();
    expect(keyring.revision()).not.toBe(before);
    await expect(verifyAt(keyring, token, clock())).rejects.toThrow('unknown kid');
    expect(keyring.jwks().keys.map((key) => key.kid)).toEqual([replacement]);
    expect(decodeProtectedHeader(await sign()).kid).toBe(replacement);
    await expect(revokeSigningKey({ ...options(), kid: 'nope' })).rejects.toMatchObject({
      code: 'SIGNING_KEY_UNKNOWN',
    });
  });

  it('revoking the signing key while a next key waits makes that one sign now', async () => {
    const { sign, options } = await setup();
    const current = decodeProtectedHeader(await sign()).kid ?? '';
    const next = await rotateSigningKeys(options());
    expect((await revokeSigningKey({ ...options(), kid: current })).replacement).toBe(next.kid);
    await keyring.reload();
    expect(decodeProtectedHeader(await sign()).kid).toBe(next.kid);
  });

  it('bounds the table: keys are purged once their last token expired, revoked ones after the retention', async () => {
    const { clock, options } = await setup();
    const store = createSigningKeyStore(test.database.db);
    for (let i = 0; i < 3; i++) {
      await rotateSigningKeys(options());
      clock.advance(KEY_PUBLICATION_DELAY_SECONDS * 1000);
    }
    const [, second] = await store.listKeys('ES256');
    await revokeSigningKey({ ...options(), kid: second?.kid ?? '' });
    expect(await store.listKeys('ES256')).toHaveLength(4);
    clock.advance(RETAIN * 1000);
    const { removed } = await rotateSigningKeys(options());
    expect(removed).toHaveLength(3);
    expect((await store.listKeys('ES256')).length).toBe(2);
  });
});
