import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createRoomTokens } from '../../src/apps/dicery/core/room-token.js';
import { buildTestServer } from '../../src/testing.js';
import { createAppTokens } from '../../src/tokens/app-tokens.js';
import {
  createKeyring,
  IAT_CLOCK_SKEW_SECONDS,
  KEY_RETENTION_MARGIN_SECONDS,
  type Keyring,
  retiredKeyRetentionSeconds,
  rotateSigningKeys,
} from '../../src/tokens/keyring.js';
import { bearer, createUser, login } from '../support/accounts.js';

/** App tokens over `keyring`, as the core builds them (room tokens are one app token kind). */
function appTokensFor(keyring: Keyring, clock: () => number) {
  return createAppTokens({ keyring, clock, reserved: { typ: 'at+jwt', audience: 'gatehouse' } });
}

const secret = new Uint8Array(32).fill(1);
const expect200 = { typ: 'at+jwt', audience: 'api', requiredClaims: ['sub'] };
const claims = () => ({
  sub: 'u1',
  aud: 'api',
  iat: Math.floor(Date.now() / 1000),
  exp: Math.floor(Date.now() / 1000) + 60,
});

describe('keyring', () => {
  it.each(['EdDSA', 'ES256', 'RS256'] as const)(
    '%s: generates keys in DATA_DIR, puts kid in tokens and publishes the public JWKs',
    async (algorithm) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'gh-keys-'));
      const keyring = await createKeyring({ algorithm, secret, issuer: 'gatehouse', dataDir });
      const token = await keyring.sign(claims(), 'at+jwt');
      const header = decodeProtectedHeader(token);
      expect(header).toMatchObject({ alg: algorithm, typ: 'at+jwt', kid: expect.any(String) });
      const { keys } = keyring.jwks();
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatchObject({ kid: header.kid, alg: algorithm, use: 'sig' });
      // No private member of any key type may be published (RFC 7518 §6.2.2, §6.3.2).
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(keys[0]).not.toHaveProperty(member);
      expect(await keyring.verify(token, { ...expect200, now: Date.now() })).toMatchObject({ sub: 'u1' });
      // A second start reuses the same key.
      const again = await createKeyring({ algorithm, secret, issuer: 'gatehouse', dataDir });
      expect(again.jwks().keys[0]?.kid).toBe(header.kid);
    },
  );

  it('refuses a token whose iat lies in the future beyond IAT_CLOCK_SKEW_SECONDS', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-keys-'));
    const keyring = await createKeyring({ algorithm: 'HS256', secret, issuer: 'gatehouse', dataDir });
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

  it('keeps verifying tokens of a rotated-out key until they expire', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-keys-'));
    const before = await createKeyring({ algorithm: 'EdDSA', secret, issuer: 'gatehouse', dataDir });
    const oldToken = await before.sign(claims(), 'at+jwt');
    const { kid } = await rotateSigningKeys(dataDir, 'EdDSA', 3600);
    const after = await createKeyring({ algorithm: 'EdDSA', secret, issuer: 'gatehouse', dataDir });
    const newToken = await after.sign(claims(), 'at+jwt');
    expect(decodeProtectedHeader(newToken).kid).toBe(kid);
    expect(decodeProtectedHeader(oldToken).kid).not.toBe(kid);
    expect(after.jwks().keys).toHaveLength(2);
    expect(await after.verify(oldToken, { ...expect200, now: Date.now() })).toMatchObject({ sub: 'u1' });
    await expect(after.verify(oldToken, { ...expect200, now: Date.now() + 120_000 })).rejects.toThrow();
    // Once the retention passes, another rotation drops the retired key.
    const later = await rotateSigningKeys(dataDir, 'EdDSA', 3600, Date.now() + 7200_000);
    expect(later.removed.length).toBeGreaterThan(0);
  });

  it('keeps a retired key as long as the room tokens it signed live, not just access tokens', async () => {
    // Regression: rotate-keys kept retired keys accessTokenTtl + 1 h, but room tokens signed by
    // the same keyring live up to 12 h, so a rotation killed every player's room cookie early.
    const config = { accessTokenTtl: 900, roomTokenTtl: 12 * 3600 };
    const retain = retiredKeyRetentionSeconds(config);
    expect(retain).toBe(12 * 3600 + KEY_RETENTION_MARGIN_SECONDS);
    expect(retiredKeyRetentionSeconds({ accessTokenTtl: 24 * 3600, roomTokenTtl: 3600 })).toBe(
      24 * 3600 + KEY_RETENTION_MARGIN_SECONDS,
    );

    const dataDir = mkdtempSync(join(tmpdir(), 'gh-keys-'));
    const start = Date.now();
    let now = start;
    const clock = () => now;
    const before = await createKeyring({ algorithm: 'EdDSA', secret, issuer: 'gatehouse', dataDir });
    const roomToken = await createRoomTokens({
      tokens: appTokensFor(before, clock),
      clock: clock,
      ttlSeconds: config.roomTokenTtl,
    }).issue('ABCDEF', 'player-1');
    // Rotate right after issuing, then again 11 h later (just before the room token expires):
    // the second rotation must not drop the key that signed it.
    await rotateSigningKeys(dataDir, 'EdDSA', retain, start);
    now = start + 11 * 3600_000;
    const later = await rotateSigningKeys(dataDir, 'EdDSA', retain, now);
    expect(later.removed).toEqual([]);
    const after = await createKeyring({ algorithm: 'EdDSA', secret, issuer: 'gatehouse', dataDir });
    const check = await createRoomTokens({
      tokens: appTokensFor(after, clock),
      clock: clock,
      ttlSeconds: config.roomTokenTtl,
    }).verify(roomToken.token);
    expect(check).toMatchObject({ ok: true, playerId: 'player-1' });
    // Once every token it could have signed is dead, the key goes.
    const last = await rotateSigningKeys(dataDir, 'EdDSA', retain, start + retain * 1000 + 1);
    expect(last.removed).toHaveLength(1);
  });

  it('accepts only the configured algorithm, whatever the token claims', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gh-keys-'));
    const ed = await createKeyring({ algorithm: 'EdDSA', secret, issuer: 'gatehouse', dataDir });
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

  it('has no JWKS route with HS256 (a shared secret is never published)', async () => {
    const app = await buildTestServer();
    expect((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode).toBe(404);
    await app.close();
  });
});
