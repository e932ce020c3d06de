import { randomBytes } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createRoomTokens,
  looksLikeRoomToken,
  ROOM_CLAIM,
  ROOM_TOKEN_AUDIENCE,
  ROOM_TOKEN_MAX_TTL,
  ROOM_TOKEN_TYP,
} from '../../../../src/apps/dicery/core/room-token.js';
import { ACCESS_TOKEN_TYP } from '../../../../src/sessions/session-manager.js';
import { createTestClock } from '../../../../src/testing.js';
import { createAppTokens } from '../../../../src/tokens/app-tokens.js';
import { createKeyring, type Keyring } from '../../../../src/tokens/keyring.js';
import { useTempDirs } from '../../../support/temp-dirs.js';

/** App tokens over `keyring`, as the core builds them (room tokens are one app token kind). */
function appTokensFor(keyring: Keyring, clock: () => number) {
  return createAppTokens({ keyring, clock, reserved: { typ: 'at+jwt', audience: 'gatehouse' } });
}

const tempDir = useTempDirs();

const T0 = Date.UTC(2024, 0, 1, 12);
const secret = new Uint8Array(randomBytes(32));

describe('room tokens', () => {
  let keyring: Keyring;
  beforeAll(async () => {
    keyring = await createKeyring({
      algorithm: 'HS256',
      secret,
      issuer: 'gatehouse',
      dataDir: tempDir('room-token-'),
    });
  });

  it('carries its own typ, aud, the namespaced room claim, sub, iat, exp and jti', async () => {
    const clock = createTestClock(T0);
    const tokens = createRoomTokens({ tokens: appTokensFor(keyring, clock), clock: clock, ttlSeconds: 3600 });
    const issued = await tokens.issue('ABCDEFGH', 'player-1');
    expect(decodeProtectedHeader(issued.token)).toMatchObject({ alg: 'HS256', typ: ROOM_TOKEN_TYP });
    const claims = decodeJwt(issued.token);
    expect(claims).toMatchObject({
      iss: 'gatehouse',
      aud: ROOM_TOKEN_AUDIENCE,
      sub: 'player-1',
      [ROOM_CLAIM]: 'ABCDEFGH',
      iat: T0 / 1000,
      exp: T0 / 1000 + 3600,
    });
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(issued.expiresAt).toBe(T0 + 3600_000);
    expect(issued.expiresIn).toBe(3600);
    expect(await tokens.verify(issued.token)).toEqual({
      ok: true,
      playerId: 'player-1',
      roomCode: 'ABCDEFGH',
      expiresAt: T0 + 3600_000,
      issuedAt: T0 / 1000,
      seatGeneration: 0,
    });
  });

  it('never lives longer than 12 hours, whatever the configured lifetime', async () => {
    const tokens = createRoomTokens({
      tokens: appTokensFor(keyring, () => T0),
      clock: () => T0,
      ttlSeconds: 7 * 24 * 3600,
    });
    const issued = await tokens.issue('ABCDEFGH', 'p');
    const { iat, exp } = decodeJwt(issued.token);
    expect((exp ?? 0) - (iat ?? 0)).toBe(ROOM_TOKEN_MAX_TTL);
    expect(issued.expiresIn).toBe(12 * 3600);
  });

  it('refuses a non-positive or fractional lifetime at creation', () => {
    expect(() =>
      createRoomTokens({ tokens: appTokensFor(keyring, () => T0), clock: () => T0, ttlSeconds: 0 }),
    ).toThrow(/positive/);
    expect(() =>
      createRoomTokens({ tokens: appTokensFor(keyring, () => T0), clock: () => T0, ttlSeconds: 1.5 }),
    ).toThrow(/positive/);
  });

  it('expires exactly at exp, also when the verified token is cached', async () => {
    const clock = createTestClock(T0);
    const tokens = createRoomTokens({ tokens: appTokensFor(keyring, clock), clock: clock, ttlSeconds: 60 });
    const { token } = await tokens.issue('ABCDEFGH', 'p');
    expect((await tokens.verify(token)).ok).toBe(true);
    clock.advance(59_999);
    expect((await tokens.verify(token)).ok).toBe(true);
    clock.advance(1);
    expect(await tokens.verify(token)).toEqual({ ok: false, reason: 'expired' });
    // And from a cold cache (another instance): jose reports it expired too.
    const cold = createRoomTokens({ tokens: appTokensFor(keyring, clock), clock: clock, ttlSeconds: 60 });
    expect(await cold.verify(token)).toEqual({ ok: false, reason: 'expired' });
  });

  it('caches verified tokens (the signature is checked once) and bounds the cache', async () => {
    const spy = vi.spyOn(keyring, 'verify');
    try {
      const tokens = createRoomTokens({
        tokens: appTokensFor(keyring, () => T0),
        clock: () => T0,
        ttlSeconds: 60,
        cacheSize: 2,
      });
      const a = (await tokens.issue('ABCDEFGH', 'a')).token;
      const b = (await tokens.issue('ABCDEFGH', 'b')).token;
      const c = (await tokens.issue('ABCDEFGH', 'c')).token;
      await tokens.verify(a);
      await tokens.verify(a);
      expect(spy).toHaveBeenCalledTimes(1);
      await tokens.verify(b);
      await tokens.verify(c); // evicts a, the oldest
      expect(spy).toHaveBeenCalledTimes(3);
      await tokens.verify(a);
      expect(spy).toHaveBeenCalledTimes(4);
    } finally {
      spy.mockRestore();
    }
  });

  it('refuses an access token, and an access-token verifier refuses a room token', async () => {
    const tokens = createRoomTokens({
      tokens: appTokensFor(keyring, () => T0),
      clock: () => T0,
      ttlSeconds: 60,
    });
    const access = await keyring.sign(
      {
        sub: 'user-1',
        sid: 's',
        scope: 'me',
        aud: 'gatehouse-api',
        iat: T0 / 1000,
        exp: T0 / 1000 + 60,
        jti: 'j',
      },
      ACCESS_TOKEN_TYP,
    );
    expect(await tokens.verify(access)).toEqual({ ok: false, reason: 'invalid' });
    // Even with the room claim and audience forged in, the `typ` differs.
    const disguised = await keyring.sign(
      {
        sub: 'p',
        [ROOM_CLAIM]: 'ABCDEFGH',
        aud: ROOM_TOKEN_AUDIENCE,
        iat: T0 / 1000,
        exp: T0 / 1000 + 60,
        jti: 'j',
      },
      ACCESS_TOKEN_TYP,
    );
    expect(await tokens.verify(disguised)).toEqual({ ok: false, reason: 'invalid' });
    const room = (await tokens.issue('ABCDEFGH', 'p')).token;
    await expect(
      keyring.verify(room, {
        typ: ACCESS_TOKEN_TYP,
        audience: 'gatehouse-api',
        requiredClaims: ['sub', 'sid'],
        now: T0,
      }),
    ).rejects.toThrow();
  });

  it('refuses tampered, foreign-key, unsigned, claim-less and garbage tokens', async () => {
    const tokens = createRoomTokens({
      tokens: appTokensFor(keyring, () => T0),
      clock: () => T0,
      ttlSeconds: 60,
    });
    const { token } = await tokens.issue('ABCDEFGH', 'p');
    const [header, payload, signature] = token.split('.');
    const otherPayload = Buffer.from(
      JSON.stringify({ ...decodeJwt(token), [ROOM_CLAIM]: 'ZZZZZZZZ' }),
    ).toString('base64url');
    expect((await tokens.verify(`${header}.${otherPayload}.${signature}`)).ok).toBe(false);
    const foreign = await new SignJWT({ sub: 'p', [ROOM_CLAIM]: 'ABCDEFGH', jti: 'j' })
      .setProtectedHeader({ alg: 'HS256', typ: ROOM_TOKEN_TYP, kid: decodeProtectedHeader(token).kid })
      .setIssuer('gatehouse')
      .setAudience(ROOM_TOKEN_AUDIENCE)
      .setIssuedAt(T0 / 1000)
      .setExpirationTime(T0 / 1000 + 60)
      .sign(new Uint8Array(randomBytes(32)));
    expect(await tokens.verify(foreign)).toEqual({ ok: false, reason: 'invalid' });
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: ROOM_TOKEN_TYP })).toString('base64url')}.${payload}.`;
    expect(await tokens.verify(none)).toEqual({ ok: false, reason: 'invalid' });
    const noRoom = await keyring.sign(
      { sub: 'p', aud: ROOM_TOKEN_AUDIENCE, iat: T0 / 1000, exp: T0 / 1000 + 60, jti: 'j' },
      ROOM_TOKEN_TYP,
    );
    expect(await tokens.verify(noRoom)).toEqual({ ok: false, reason: 'invalid' });
    // Without `iat` no revoke-all cut-off could be applied to it (every token we issue has one).
    const noIat = await keyring.sign(
      { sub: 'p', [ROOM_CLAIM]: 'ABCDEFGH', aud: ROOM_TOKEN_AUDIENCE, exp: T0 / 1000 + 60, jti: 'j' },
      ROOM_TOKEN_TYP,
    );
    expect(await tokens.verify(noIat)).toEqual({ ok: false, reason: 'invalid' });
    const numericRoom = await keyring.sign(
      { sub: 'p', [ROOM_CLAIM]: 42, aud: ROOM_TOKEN_AUDIENCE, iat: T0 / 1000, exp: T0 / 1000 + 60, jti: 'j' },
      ROOM_TOKEN_TYP,
    );
    expect(await tokens.verify(numericRoom)).toEqual({ ok: false, reason: 'invalid' });
    expect(await tokens.verify('not-a-jwt')).toEqual({ ok: false, reason: 'invalid' });
    expect(await tokens.verify('x'.repeat(10_000))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('tells room tokens from other bearer tokens by header only, for routing', async () => {
    const tokens = createRoomTokens({
      tokens: appTokensFor(keyring, () => T0),
      clock: () => T0,
      ttlSeconds: 60,
    });
    expect(looksLikeRoomToken((await tokens.issue('ABCDEFGH', 'p')).token)).toBe(true);
    const access = await keyring.sign({ sub: 'u', aud: 'gatehouse-api', iat: 1, exp: 2 }, ACCESS_TOKEN_TYP);
    expect(looksLikeRoomToken(access)).toBe(false);
    expect(looksLikeRoomToken('gha_opaque-database-token')).toBe(false);
    expect(looksLikeRoomToken('')).toBe(false);
  });
});
