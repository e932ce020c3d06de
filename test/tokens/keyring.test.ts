import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createRoomTokens } from '../../src/apps/dicery/core/room-token.js';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { createSigningKeyStore } from '../../src/storage/signing-key-store.js';
import { buildTestServer, createTestClock } from '../../src/testing.js';
import { createAppTokens } from '../../src/tokens/app-tokens.js';
import {
  createKeyring,
  IAT_CLOCK_SKEW_SECONDS,
  KEY_PUBLICATION_DELAY_SECONDS,
  KEY_RETENTION_MARGIN_SECONDS,
  type Keyring,
  type KeyringOptions,
  retiredKeyRetentionSeconds,
} from '../../src/tokens/keyring.js';
import { rotateSigningKeys } from '../../src/tokens/rotate-keys.js';
import { bearer, createUser, login } from '../support/accounts.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/databases.js';
import { writeLegacyKeyFile } from '../support/legacy-key-file.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

/** App tokens over `keyring`, as the core builds them (room tokens are one app token kind). */
function appTokensFor(keyring: Keyring, clock: () => number) {
  return createAppTokens({ keyring, clock, reserved: { typ: 'at+jwt', audience: 'gatehouse' } });
}

const secret = new Uint8Array(32).map((_, i) => (i * 7 + 1) % 256);
const otherSecret = new Uint8Array(32).map((_, i) => (i * 7 + 2) % 256);
const expect200 = { typ: 'at+jwt', audience: 'api', requiredClaims: ['sub'] };
const claims = (now = Date.now()) => ({
  sub: 'u1',
  aud: 'api',
  iat: Math.floor(now / 1000),
  exp: Math.floor(now / 1000) + 60,
});

describe('HS256 keyring', () => {
  const hmac = (options: Partial<KeyringOptions> = {}) =>
    createKeyring({ algorithm: 'HS256', secret, issuer: 'gatehouse', dataDir: tmpdir(), ...options });

  it('refuses a token whose iat lies in the future beyond IAT_CLOCK_SKEW_SECONDS', async () => {
    const keyring = await hmac();
    const now = Date.now();
    const at = (iat: number) => keyring.sign({ sub: 'u1', aud: 'api', iat, exp: iat + 600 }, 'at+jwt');
    const nowSeconds = Math.floor(now / 1000);
    const skewed = await at(nowSeconds + IAT_CLOCK_SKEW_SECONDS);
    expect(await keyring.verify(skewed, { ...expect200, now })).toMatchObject({ sub: 'u1' });
    const future = await at(nowSeconds + IAT_CLOCK_SKEW_SECONDS + 2);
    await expect(keyring.verify(future, { ...expect200, now })).rejects.toMatchObject({
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      claim: 'iat',
    });
  });

  it('imports its secret once, not on every signature and verification', async () => {
    const importKey = vi.spyOn(crypto.subtle, 'importKey');
    try {
      const keyring = await hmac();
      const imports = importKey.mock.calls.length;
      expect(imports).toBe(1);
      for (let i = 0; i < 3; i += 1) {
        const token = await keyring.sign(claims(), 'at+jwt');
        expect(await keyring.verify(token, { ...expect200, now: Date.now() })).toMatchObject({ sub: 'u1' });
      }
      expect(importKey.mock.calls.length).toBe(imports);
    } finally {
      importKey.mockRestore();
    }
  });

  it('signs each typ with its own header, byte for byte what jose signs, however the typs interleave', async () => {
    // The header segment is encoded once per typ (issue 10): a cached one must never leak into
    // another typ's tokens.
    const keyring = await hmac();
    const key = new Uint8Array(secret);
    for (const typ of ['at+jwt', 'dicery-room+jwt', 'at+jwt', 'id_token+jwt', 'dicery-room+jwt']) {
      const payload = claims(1_700_000_000_000);
      const token = await keyring.sign(payload, typ);
      const kid = decodeProtectedHeader(token).kid as string;
      const expected = await new SignJWT(payload)
        .setProtectedHeader({ alg: 'HS256', typ, kid })
        .setIssuer('gatehouse')
        .sign(key);
      expect(token).toBe(expected);
    }
  });

  it('verifies tokens signed under SECRET_KEY_PREVIOUS, signs only with SECRET_KEY, publishes nothing', async () => {
    const old = await hmac({ secret: otherSecret });
    const oldToken = await old.sign(claims(), 'at+jwt');
    const rotated = await hmac({ previousSecret: otherSecret });
    expect(await rotated.verify(oldToken, { ...expect200, now: Date.now() })).toMatchObject({ sub: 'u1' });
    const newToken = await rotated.sign(claims(), 'at+jwt');
    expect(decodeProtectedHeader(newToken).kid).not.toBe(decodeProtectedHeader(oldToken).kid);
    await expect(old.verify(newToken, { ...expect200, now: Date.now() })).rejects.toThrow();
    expect(rotated.jwks()).toEqual({ keys: [] });
    // Without the previous secret, the old tokens stop verifying.
    await expect((await hmac()).verify(oldToken, { ...expect200, now: Date.now() })).rejects.toThrow(
      'unknown kid',
    );
  });
});

describe.each(engines)('database keyring on $name', ({ name }) => {
  let test: TestDatabase | undefined;
  const closers: (() => void)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await test?.dispose();
    test = undefined;
  });
  const setup = async () => {
    test = await createTestDatabase(name);
    const database = test.database;
    const dataDir = tempDir('gh-keys-');
    const open = async (options: Partial<KeyringOptions> = {}) => {
      const keyring = await createKeyring({
        algorithm: 'EdDSA',
        secret,
        issuer: 'gatehouse',
        dataDir,
        database,
        ...options,
      });
      closers.push(() => keyring.close());
      return keyring;
    };
    return { database, dataDir, open };
  };

  it.each(['EdDSA', 'ES256', 'RS256'] as const)(
    '%s: creates one key in the database, puts its kid in tokens, publishes only the public JWK',
    async (algorithm) => {
      const { database, open } = await setup();
      const keyring = await open({ algorithm });
      const token = await keyring.sign(claims(), 'at+jwt');
      const header = decodeProtectedHeader(token);
      expect(header).toMatchObject({ alg: algorithm, typ: 'at+jwt', kid: expect.any(String) });
      const { keys } = keyring.jwks();
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatchObject({ kid: header.kid, alg: algorithm, use: 'sig' });
      // No private member of any key type may be published (RFC 7518 §6.2.2, §6.3.2).
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(keys[0]).not.toHaveProperty(member);
      expect(await keyring.verify(token, { ...expect200, now: Date.now() })).toMatchObject({ sub: 'u1' });
      // The private key is stored sealed, never in clear.
      const [stored] = await createSigningKeyStore(database.db).listKeys(algorithm);
      expect(stored?.sealedPrivateKey).toMatch(/^v1\./);
      expect(stored?.sealedPrivateKey).not.toContain('"d"');
      // A second instance on the same database uses the same key.
      const again = await open({ algorithm });
      expect(again.jwks().keys.map((key) => key.kid)).toEqual([header.kid]);
      expect(await again.verify(token, { ...expect200, now: Date.now() })).toMatchObject({ sub: 'u1' });
    },
  );

  it('two instances starting at once on an empty database end up with one key', async () => {
    const { open } = await setup();
    const [a, b] = await Promise.all([open(), open()]);
    expect(a.jwks().keys).toHaveLength(1);
    expect(b.jwks()).toEqual(a.jwks());
  });

  it('refuses to start when SECRET_KEY changed, and re-seals under it given SECRET_KEY_PREVIOUS', async () => {
    const { database, open } = await setup();
    const before = await open();
    const token = await before.sign(claims(), 'at+jwt');
    await expect(open({ secret: otherSecret })).rejects.toMatchObject({ code: 'SIGNING_KEY_SEALED' });
    const rotated = await open({ secret: otherSecret, previousSecret: secret });
    expect(await rotated.verify(token, { ...expect200, now: Date.now() })).toMatchObject({ sub: 'u1' });
    expect(decodeProtectedHeader(await rotated.sign(claims(), 'at+jwt')).kid).toBe(
      decodeProtectedHeader(token).kid,
    );
    // Re-sealed in the database: the new secret alone now opens it, the old one no longer does.
    const alone = await open({ secret: otherSecret });
    expect(await alone.sign(claims(), 'at+jwt')).toBeTypeOf('string');
    await expect(open({ secret })).rejects.toMatchObject({ code: 'SIGNING_KEY_SEALED' });
    expect(await createSigningKeyStore(database.db).listKeys('EdDSA')).toHaveLength(1);
  });

  it('imports a signing-keys.json written by the old code once; tokens signed before the upgrade keep verifying', async () => {
    const { database, dataDir, open } = await setup();
    const now = Date.now();
    const legacy = await writeLegacyKeyFile(dataDir, 'ES256', [now - 3 * 3600_000, now - 3600_000]);
    const retiredToken = await legacy.sign(0, claims(now - 3 * 3600_000 + 1000), 'at+jwt', 'gatehouse');
    const currentToken = await legacy.sign(1, claims(now), 'at+jwt', 'gatehouse');
    const keyring = await open({ algorithm: 'ES256' });
    expect(keyring.jwks().keys.map((key) => key.kid)).toEqual(legacy.kids);
    expect(await keyring.verify(currentToken, { ...expect200, now })).toMatchObject({ sub: 'u1' });
    // The retired key's token: verifies by signature (it would have expired by now, so check then).
    expect(
      await keyring.verify(retiredToken, { ...expect200, now: now - 3 * 3600_000 + 2000 }),
    ).toMatchObject({ sub: 'u1' });
    // The newest key of the file keeps signing: nothing changes for verifiers at the upgrade.
    expect(decodeProtectedHeader(await keyring.sign(claims(), 'at+jwt')).kid).toBe(legacy.kids[1]);
    // Once: a file changed (or restored) later is not imported again.
    writeFileSync(join(dataDir, 'signing-keys.json'), '{"keys":[]}');
    const again = await open({ algorithm: 'ES256' });
    expect(again.jwks().keys.map((key) => key.kid)).toEqual(legacy.kids);
    expect(await createSigningKeyStore(database.db).listKeys('ES256')).toHaveLength(2);
  });

  it('keeps the last good key set when a reload fails, and warns', async () => {
    const { database, open } = await setup();
    const warn = vi.fn();
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const keyring = await open({ onWarning: warn, reloadIntervalMs: 1000 });
      const token = await keyring.sign(claims(), 'at+jwt');
      await database.db.schema.alterTable('signing_keys').renameTo('signing_keys_gone').execute();
      await expect(keyring.reload()).rejects.toThrow();
      vi.advanceTimersByTime(1000);
      await vi.waitFor(() =>
        expect(warn).toHaveBeenCalledWith(
          'signing key reload failed; keeping the last key set',
          expect.anything(),
        ),
      );
      expect(await keyring.verify(token, { ...expect200, now: Date.now() })).toMatchObject({ sub: 'u1' });
      expect(decodeProtectedHeader(await keyring.sign(claims(), 'at+jwt')).kid).toBe(
        decodeProtectedHeader(token).kid,
      );
      await database.db.schema.alterTable('signing_keys_gone').renameTo('signing_keys').execute();
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps a retired key as long as the app tokens it signed live, not just access tokens', async () => {
    // Regression: rotate-keys kept retired keys accessTokenTtl + 1 h, but room tokens signed by
    // the same keyring live up to 12 h, so a rotation killed every player's room cookie early.
    // Dicery declares its room tokens' lifetime (dicerySettings.tokenLifetime); the core keeps the longer.
    const config = { accessTokenTtl: 900, appTokenLifetime: 12 * 3600 };
    const retain = retiredKeyRetentionSeconds(config);
    expect(retain).toBe(12 * 3600 + KEY_RETENTION_MARGIN_SECONDS);
    expect(retiredKeyRetentionSeconds({ accessTokenTtl: 24 * 3600, appTokenLifetime: 3600 })).toBe(
      24 * 3600 + KEY_RETENTION_MARGIN_SECONDS,
    );
    expect(retiredKeyRetentionSeconds({ accessTokenTtl: 900, appTokenLifetime: 0 })).toBe(
      900 + KEY_RETENTION_MARGIN_SECONDS,
    );
    const { database, open } = await setup();
    const clock = createTestClock();
    const start = clock();
    const keyring = await open({ clock, retentionSeconds: retain });
    const rooms = createRoomTokens({
      tokens: appTokensFor(keyring, clock),
      clock,
      ttlSeconds: config.appTokenLifetime,
    });
    const roomToken = await rooms.issue('ABCDEF', 'player-1');
    const rotate = () =>
      rotateSigningKeys({ database, algorithm: 'EdDSA', secret, now: clock(), retentionSeconds: retain });
    // Rotate right after issuing (the new key signs 10 min later), then again 11 h later, just
    // before the room token expires: the second rotation must not drop the key that signed it.
    await rotate();
    clock.advance(11 * 3600_000);
    expect((await rotate()).removed).toEqual([]);
    await keyring.reload();
    expect(await rooms.verify(roomToken.token)).toMatchObject({ ok: true, playerId: 'player-1' });
    // Once every token it could have signed is dead (it signed until its successor activated),
    // the key goes.
    clock.advance(start + (KEY_PUBLICATION_DELAY_SECONDS + retain) * 1000 + 1 - clock());
    const last = await rotate();
    expect(last.removed).toEqual([decodeProtectedHeader(roomToken.token).kid]);
  });

  it('accepts only the configured algorithm, whatever the token claims', async () => {
    const { open } = await setup();
    const ed = await open();
    const kid = ed.jwks().keys[0]?.kid;
    // HS256 signed with the public key bytes: the classic algorithm-confusion attack.
    const publicBytes = new TextEncoder().encode(JSON.stringify(ed.jwks().keys[0]));
    const confused = await new SignJWT({ ...claims(), iss: 'gatehouse' })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid })
      .sign(publicBytes);
    await expect(ed.verify(confused, { ...expect200, now: Date.now() })).rejects.toThrow();
    // An ES256 token with a kid we do not know.
    const { privateKey } = await generateKeyPair('ES256');
    const foreign = await new SignJWT({ ...claims(), iss: 'gatehouse' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
      .sign(privateKey);
    await expect(ed.verify(foreign, { ...expect200, now: Date.now() })).rejects.toThrow();
    // A token that brings its own key (jwk header) is not trusted.
    const { privateKey: attackerKey, publicKey } = await generateKeyPair('EdDSA');
    const embedded = await new SignJWT({ ...claims(), iss: 'gatehouse' })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', jwk: await exportJWK(publicKey) })
      .sign(attackerKey);
    await expect(ed.verify(embedded, { ...expect200, now: Date.now() })).rejects.toThrow();
  });
});

describe('asymmetric tokens end to end', () => {
  it('serves the JWKS and accepts its own EdDSA tokens', async () => {
    const app = await buildTestServer({ jwtAlgorithm: 'EdDSA' });
    const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    expect(jwks.statusCode).toBe(200);
    expect(jwks.json().keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    const user = await createUser(app);
    const { access_token } = await login(app, user.email);
    expect(decodeProtectedHeader(access_token)).toMatchObject({ alg: 'EdDSA', kid: jwks.json().keys[0].kid });
    expect(
      (await app.inject({ method: 'GET', url: '/users/me', headers: bearer(access_token) })).statusCode,
    ).toBe(200);
    await app.close();
  });

  it("never publishes the HS256 secret: with HS256 the JWKS holds only the ID tokens' keys", async () => {
    const app = await buildTestServer();
    // A client that chose RS256 makes its keys (an anonymous JWKS request never does).
    await gatehouseCore(app.gatehouse).idTokenKeys.keyring('RS256');
    const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
    expect(jwks.keys).toHaveLength(2);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwks.keys[1]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    // No private member of either key type (RFC 7518 §6.2.2, §6.3.2), nor an HMAC secret.
    for (const key of jwks.keys) {
      for (const member of ['d', 'k', 'p', 'q', 'dp', 'dq', 'qi', 'oth'])
        expect(key).not.toHaveProperty(member);
    }
    await app.close();
  });
});
