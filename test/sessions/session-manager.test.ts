import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createGatehouseCore } from '../../src/gatehouse.js';
import type { GatehouseCore } from '../../src/gatehouse-core.js';
import {
  ACCESS_TOKEN_TYP,
  type BearerTokens,
  COOKIE_RECHECK_MS,
  MAX_ACCESS_TOKENS_PER_SESSION,
  type RefreshResult,
} from '../../src/sessions/session-manager.js';
import { createTestClock, type TestClock, testConfig } from '../../src/testing.js';
import { generateOpaqueToken, hashOpaqueToken } from '../../src/tokens/opaque-token.js';
import { createRefreshTokens, REFRESH_TOKEN_LENGTH } from '../../src/tokens/refresh-token.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

const INTERVAL = 10;
const client = { userAgent: 'test', ip: '127.0.0.1' };

describe.each(engines)('refresh grace on $name', ({ name }) => {
  let gatehouse: GatehouseCore;
  let strict: GatehouseCore;
  let clock: TestClock;
  const drops: (() => Promise<void>)[] = [];

  const open = async (refreshReuseInterval: number) => {
    const { url, drop } = await createTestDatabaseUrl(name);
    drops.push(drop);
    return createGatehouseCore(testConfig({ databaseUrl: url, refreshReuseInterval, accessTokenTtl: 3600 }), {
      clock,
    });
  };

  beforeAll(async () => {
    clock = createTestClock();
    gatehouse = await open(INTERVAL);
    strict = await open(0);
  });
  afterAll(async () => {
    await gatehouse.close();
    await strict.close();
    for (const drop of drops) await drop();
  });

  let counter = 0;
  const startSession = async (core: GatehouseCore): Promise<BearerTokens> => {
    counter += 1;
    const user = await core.accounts.register({
      email: `grace${counter}.${name}@example.com`,
      password: 'correct horse battery',
    });
    return core.sessions.startBearerSession(user.id, ['me'], client);
  };
  const tokensOf = (result: RefreshResult) => {
    if (!result.ok) throw new Error(`refresh failed: ${result.reason}`);
    return result.tokens;
  };
  const accepted = async (core: GatehouseCore, accessToken: string) =>
    (await core.sessions.verifyAccessToken(accessToken)).ok;

  it('within the interval, a retried refresh token gets the same successor and a new access token', async () => {
    const first = await startSession(gatehouse);
    const second = tokensOf(await gatehouse.sessions.refresh(first.refreshToken));
    clock.advance(INTERVAL * 1000 - 1);
    const retried = await gatehouse.sessions.refresh(first.refreshToken);
    expect(retried).toMatchObject({ ok: true, retried: true });
    const again = tokensOf(retried);
    expect(again.refreshToken).toBe(second.refreshToken);
    expect(again.accessToken).not.toBe(second.accessToken);
    expect(await accepted(gatehouse, second.accessToken)).toBe(true);
    expect(await accepted(gatehouse, again.accessToken)).toBe(true);
    // The successor is still the session's live refresh token.
    const third = tokensOf(await gatehouse.sessions.refresh(second.refreshToken));
    expect(await accepted(gatehouse, third.accessToken)).toBe(true);
  });

  it('after the interval, presenting the spent token revokes the whole family (RFC 9700 §4.14.2)', async () => {
    const first = await startSession(gatehouse);
    const second = tokensOf(await gatehouse.sessions.refresh(first.refreshToken));
    clock.advance(INTERVAL * 1000);
    expect(await gatehouse.sessions.refresh(first.refreshToken)).toEqual({ ok: false, reason: 'reused' });
    expect(gatehouse.revocations.isRevoked(second.session.id)).toBe(true);
    expect(await accepted(gatehouse, second.accessToken)).toBe(false);
    expect(await gatehouse.sessions.refresh(second.refreshToken)).toMatchObject({ ok: false });
  });

  it('once the successor has been used, the old token coming back is a replay, even within the interval', async () => {
    const first = await startSession(gatehouse);
    const second = tokensOf(await gatehouse.sessions.refresh(first.refreshToken));
    const third = tokensOf(await gatehouse.sessions.refresh(second.refreshToken));
    expect(await gatehouse.sessions.refresh(first.refreshToken)).toEqual({ ok: false, reason: 'reused' });
    expect(await accepted(gatehouse, third.accessToken)).toBe(false);
  });

  it('with interval 0, rotation is strict: the first reuse revokes, and only one concurrent refresh wins', async () => {
    const first = await startSession(strict);
    const second = tokensOf(await strict.sessions.refresh(first.refreshToken));
    expect(await strict.sessions.refresh(first.refreshToken)).toEqual({ ok: false, reason: 'reused' });
    expect(await accepted(strict, second.accessToken)).toBe(false);

    const other = await startSession(strict);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => strict.sessions.refresh(other.refreshToken)),
    );
    expect(results.filter((result) => result.ok)).toHaveLength(1);
    // Nothing is kept for a retry.
    const rows = await strict.database.db.selectFrom('refresh_tokens').select('successor').execute();
    expect(rows.every((row) => row.successor === null)).toBe(true);
  });

  it('rotates once under concurrent refreshes of one token; every caller gets the same successor', async () => {
    const first = await startSession(gatehouse);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => gatehouse.sessions.refresh(first.refreshToken)),
    );
    const refreshTokens = new Set(results.map((result) => tokensOf(result).refreshToken));
    expect(refreshTokens.size).toBe(1);
    expect(results.filter((result) => result.ok && !result.retried)).toHaveLength(1);
    const live = await gatehouse.database.db
      .selectFrom('refresh_tokens')
      .select('token_hash')
      .where('session_id', '=', first.session.id)
      .where('spent_at', 'is', null)
      .execute();
    expect(live).toHaveLength(1);
  });

  it('keeps the successor only encrypted, and only for the newest spent token', async () => {
    const first = await startSession(gatehouse);
    const second = tokensOf(await gatehouse.sessions.refresh(first.refreshToken));
    const kept = async (token: string) =>
      (
        await gatehouse.database.db
          .selectFrom('refresh_tokens')
          .select('successor')
          .where('token_hash', '=', hashOpaqueToken(token))
          .executeTakeFirst()
      )?.successor;
    const sealed = await kept(first.refreshToken);
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain(second.refreshToken.slice(4));
    tokensOf(await gatehouse.sessions.refresh(second.refreshToken));
    // The older spent token's row is gone altogether (pruned), successor and all.
    expect(await kept(first.refreshToken)).toBeUndefined();
    expect(await kept(second.refreshToken)).not.toBeNull();
    // And the sweep forgets it once the interval is over.
    await gatehouse.sessionStore.forgetRefreshSuccessors({ spentBefore: clock() + 1 });
    expect(await kept(second.refreshToken)).toBeNull();
  });

  // Red-team (Medium): in a rolling SECRET_KEY rotation, a refresh spent at an instance still on the
  // old secret and retried at one on the new secret found no successor: a reuse, and the session ended.
  it('through a SECRET_KEY rotation, a retry gets the successor an instance on the previous secret sealed', async () => {
    // Every core on one database: a file for SQLite (its test URL is a private in-memory one).
    const { url, drop } =
      name === 'sqlite'
        ? {
            url: `sqlite:${join(mkdtempSync(join(tmpdir(), 'gh-grace-rotation-')), 'db.sqlite')}`,
            drop: async () => {},
          }
        : await createTestDatabaseUrl(name);
    drops.push(drop);
    const before = testConfig({ databaseUrl: url, refreshReuseInterval: INTERVAL, accessTokenTtl: 3600 });
    const old = await createGatehouseCore(before, { clock });
    const spent: { first: BearerTokens; second: BearerTokens }[] = [];
    try {
      for (let i = 0; i < 2; i += 1) {
        const first = await startSession(old);
        spent.push({ first, second: tokensOf(await old.sessions.refresh(first.refreshToken)) });
      }
    } finally {
      await old.close();
    }
    const [during, after] = spent;
    const newKey = new Uint8Array(randomBytes(32));
    const rotating = await createGatehouseCore(
      { ...before, secretKey: newKey, secretKeyPrevious: before.secretKey },
      { clock },
    );
    try {
      const retried = await rotating.sessions.refresh(during?.first.refreshToken ?? '');
      expect(retried).toMatchObject({ ok: true, retried: true });
      expect(tokensOf(retried).refreshToken).toBe(during?.second.refreshToken);
    } finally {
      await rotating.close();
    }
    const rotated = await createGatehouseCore({ ...before, secretKey: newKey }, { clock });
    try {
      expect(await rotated.sessions.refresh(after?.first.refreshToken ?? '')).toEqual({
        ok: false,
        reason: 'reused',
      });
    } finally {
      await rotated.close();
    }
  });

  describe('a session keeps two refresh-token rows and still knows its older tokens', () => {
    const rowsOf = async (core: GatehouseCore, sessionId: string) =>
      (
        await core.database.db
          .selectFrom('refresh_tokens')
          .select('token_hash')
          .where('session_id', '=', sessionId)
          .execute()
      ).length;
    /** A session refreshed `times` times, past the grace interval each time; all its refresh tokens, oldest first. */
    const rotated = async (core: GatehouseCore, times: number) => {
      const first = await startSession(core);
      const tokens = [first];
      for (let i = 0; i < times; i += 1) {
        clock.advance(INTERVAL * 1000);
        tokens.push(tokensOf(await core.sessions.refresh(tokens[tokens.length - 1]?.refreshToken ?? '')));
      }
      return { sessionId: first.session.id, tokens: tokens.map((t) => t.refreshToken) };
    };

    it('however often it refreshes: the token spent last and its successor', async () => {
      const { sessionId, tokens } = await rotated(gatehouse, 25);
      expect(await rowsOf(gatehouse, sessionId)).toBe(2);
      const { sessionId: strictSession } = await rotated(strict, 5);
      expect(await rowsOf(strict, strictSession)).toBe(2);
      // The current token still works.
      expect((await gatehouse.sessions.refresh(tokens[25] ?? '')).ok).toBe(true);
    });

    it('an old token whose row is gone still ends the session (RFC 9700 §4.14.2)', async () => {
      const { sessionId, tokens } = await rotated(gatehouse, 6);
      const reuse = await gatehouse.sessions.refresh(tokens[2] ?? '');
      expect(reuse).toEqual({ ok: false, reason: 'reused' });
      expect(gatehouse.revocations.isRevoked(sessionId)).toBe(true);
      expect(await gatehouse.sessions.refresh(tokens[6] ?? '')).toMatchObject({ ok: false });
      expect(await gatehouse.sessionStore.findSession(sessionId)).toMatchObject({
        revokedAt: expect.any(Number),
      });
    });

    it('a token forged for the session, or another client presenting an old one, changes nothing', async () => {
      const { sessionId, tokens } = await rotated(gatehouse, 3);
      // Made under another SECRET_KEY for this very session: no family, so unknown.
      const forged = createRefreshTokens({ secretKey: new Uint8Array(randomBytes(32)) }).issue(
        sessionId,
      ).token;
      expect(await gatehouse.sessions.refresh(forged)).toEqual({ ok: false, reason: 'invalid' });
      // RFC 6749 §10.4: bound to its client; another client's presenting it revokes nothing.
      expect(await gatehouse.sessions.refresh(tokens[0] ?? '', [], 'another-client')).toEqual({
        ok: false,
        reason: 'invalid',
      });
      expect(await gatehouse.sessions.revokeToken(tokens[0] ?? '', { clientId: 'another-client' })).toEqual({
        revoked: false,
      });
      expect(gatehouse.revocations.isRevoked(sessionId)).toBe(false);
      expect((await gatehouse.sessions.refresh(tokens[3] ?? '')).ok).toBe(true);
    });

    it('RFC 7009: revoking an old token whose row is gone ends its session', async () => {
      const { sessionId, tokens } = await rotated(gatehouse, 4);
      expect(await gatehouse.sessions.revokeToken(tokens[1] ?? '', { clientId: 'gatehouse' })).toMatchObject({
        revoked: true,
        sessionId,
      });
      expect(gatehouse.revocations.isRevoked(sessionId)).toBe(true);
    });

    it('a token of the earlier, random-only layout still refreshes, into the new layout, and its row is kept', async () => {
      const first = await startSession(gatehouse);
      const legacy = generateOpaqueToken('ghr');
      await gatehouse.sessionStore.insertRefreshToken(
        legacy.hash,
        first.session.id,
        clock(),
        clock() + 3_600_000,
        'gatehouse',
        false,
      );
      const next = tokensOf(await gatehouse.sessions.refresh(legacy.token));
      expect(next.refreshToken).toHaveLength(REFRESH_TOKEN_LENGTH);
      expect(next.session.id).toBe(first.session.id);
      clock.advance(INTERVAL * 1000);
      const after = tokensOf(await gatehouse.sessions.refresh(next.refreshToken));
      // Its tag-less token would be merely unknown once its row went: the row stays (until it
      // expires), so the token coming back is still a reuse that ends the session.
      clock.advance(INTERVAL * 1000);
      expect(await gatehouse.sessions.refresh(legacy.token)).toEqual({ ok: false, reason: 'reused' });
      expect(gatehouse.revocations.isRevoked(first.session.id)).toBe(true);
      expect((await gatehouse.sessions.refresh(after.refreshToken)).ok).toBe(false);
    });

    it('a client back after the idle timeout, its tokens swept, gets expired and ends nothing', async () => {
      const core = await open(INTERVAL);
      const { sessionId, tokens } = await rotated(core, 3);
      clock.advance(7 * 24 * 3600 * 1000 + 1);
      await core.sessionStore.deleteExpired(clock());
      expect(await rowsOf(core, sessionId)).toBe(0);
      for (const token of [tokens[3], tokens[1]])
        expect(await core.sessions.refresh(token ?? '')).toEqual({ ok: false, reason: 'expired' });
      expect((await core.sessionStore.findSession(sessionId))?.revokedAt).toBeNull();
      expect(core.revocations.isRevoked(sessionId)).toBe(false);
      await core.close();
    });

    it('through a SECRET_KEY rotation, an old token issued under the previous key still ends its session', async () => {
      // Both cores on one database: a file for SQLite (its test URL is a private in-memory one).
      const { url, drop } =
        name === 'sqlite'
          ? {
              url: `sqlite:${join(mkdtempSync(join(tmpdir(), 'gh-rotation-')), 'db.sqlite')}`,
              drop: async () => {},
            }
          : await createTestDatabaseUrl(name);
      drops.push(drop);
      const before = testConfig({ databaseUrl: url, refreshReuseInterval: INTERVAL, accessTokenTtl: 3600 });
      const old = await createGatehouseCore(before, { clock });
      const { sessionId, tokens } = await rotated(old, 2);
      await old.close();
      const rotatedCore = await createGatehouseCore(
        { ...before, secretKey: new Uint8Array(randomBytes(32)), secretKeyPrevious: before.secretKey },
        { clock },
      );
      try {
        expect(await rotatedCore.sessions.refresh(tokens[0] ?? '')).toEqual({ ok: false, reason: 'reused' });
        expect((await rotatedCore.sessionStore.findSession(sessionId))?.revokedAt).toEqual(
          expect.any(Number),
        );
      } finally {
        await rotatedCore.close();
      }
    });
  });
});

describe('database token strategy', () => {
  it('reads a token row at most once per recheck interval; revocation and expiry apply on every hit', async () => {
    const clock = createTestClock();
    const core = await createGatehouseCore(testConfig({ tokenStrategy: 'database', accessTokenTtl: 120 }), {
      clock,
    });
    try {
      const user = await core.accounts.register({
        email: 'opaque@example.com',
        password: 'correct horse battery',
      });
      const lookups = vi.spyOn(core.sessionStore, 'findAccessToken');
      const verify = async (token: string) => (await core.sessions.verifyAccessToken(token)).ok;

      const first = await core.sessions.startBearerSession(user.id, ['me'], client);
      expect(first.accessToken).toMatch(/^gha_/);
      expect(await verify(first.accessToken)).toBe(true);
      expect(await verify(first.accessToken)).toBe(true);
      expect(lookups).toHaveBeenCalledTimes(1);
      clock.advance(COOKIE_RECHECK_MS);
      expect(await verify(first.accessToken)).toBe(true);
      expect(lookups).toHaveBeenCalledTimes(2);
      // Expiry is checked on a cached hit too (120 s TTL, last read 30 s in).
      clock.advance(120_000 - COOKIE_RECHECK_MS);
      expect(await verify(first.accessToken)).toBe(false);

      const second = await core.sessions.startBearerSession(user.id, ['me'], client);
      expect(await verify(second.accessToken)).toBe(true);
      await core.sessions.revokeSessions([second.session.id]);
      // Cached, but the revocation set is consulted on every hit: refused at once.
      expect(await verify(second.accessToken)).toBe(false);
      expect(await verify(`${second.accessToken.slice(0, -2)}xx`)).toBe(false);
    } finally {
      await core.close();
    }
  });
});

describe.each(engines)('database token strategy on $name: access-token rows per session', ({ name }) => {
  it('a session keeps its newest few however often it refreshes, retries within the grace interval included', async () => {
    const clock = createTestClock();
    const { url, drop } = await createTestDatabaseUrl(name);
    const core = await createGatehouseCore(
      testConfig({ databaseUrl: url, tokenStrategy: 'database', refreshReuseInterval: INTERVAL }),
      { clock },
    );
    try {
      const user = await core.accounts.register({
        email: `rows.${name}@example.com`,
        password: 'correct horse battery',
      });
      const first = await core.sessions.startBearerSession(user.id, ['me'], client);
      const rows = async () =>
        (
          await core.database.db
            .selectFrom('access_tokens')
            .select('token_hash')
            .where('session_id', '=', first.session.id)
            .execute()
        ).length;
      const issued = [first.accessToken];
      let refresh = first.refreshToken;
      for (let i = 0; i < MAX_ACCESS_TOKENS_PER_SESSION + 5; i += 1) {
        clock.advance(1);
        const result = await core.sessions.refresh(refresh);
        if (!result.ok) throw new Error(result.reason);
        issued.push(result.tokens.accessToken);
        refresh = result.tokens.refreshToken;
      }
      expect(await rows()).toBe(MAX_ACCESS_TOKENS_PER_SESSION);
      // A retried spent token mints an access token each time too: bounded the same way.
      const spent = refresh;
      const next = await core.sessions.refresh(spent);
      if (!next.ok) throw new Error(next.reason);
      let newest = next.tokens.accessToken;
      for (let i = 0; i < MAX_ACCESS_TOKENS_PER_SESSION + 5; i += 1) {
        clock.advance(1);
        const retried = await core.sessions.refresh(spent);
        expect(retried).toMatchObject({ ok: true, retried: true });
        if (retried.ok) newest = retried.tokens.accessToken;
      }
      expect(await rows()).toBe(MAX_ACCESS_TOKENS_PER_SESSION);
      // The newest works; older ones, never verified on this instance, are gone.
      expect((await core.sessions.verifyAccessToken(newest)).ok).toBe(true);
      for (const old of [issued[0], issued[1], next.tokens.accessToken])
        expect((await core.sessions.verifyAccessToken(old ?? '')).ok).toBe(false);
    } finally {
      await core.close();
      await drop();
    }
  });
});

describe('answers from memory (peekAccessToken, peekCookieToken)', () => {
  it('decides a cached JWT synchronously, with expiry and revocation checked on every peek', async () => {
    const clock = createTestClock();
    const core = await createGatehouseCore(testConfig({ accessTokenTtl: 120 }), { clock });
    try {
      const user = await core.accounts.register({
        email: 'peek@example.com',
        password: 'correct horse battery',
      });
      const tokens = await core.sessions.startBearerSession(user.id, ['me'], client);
      // Never verified on this instance: the signature must be checked first.
      expect(core.sessions.peekAccessToken(tokens.accessToken)).toBeUndefined();
      expect(core.sessions.peekAccessToken('not-a-jwt')).toBeUndefined();
      const verified = await core.sessions.verifyAccessToken(tokens.accessToken);
      expect(core.sessions.peekAccessToken(tokens.accessToken)).toEqual(verified);
      expect(core.sessions.cacheStats().jwt).toEqual({ hits: 1, misses: 1 });
      await core.sessions.revokeSessions([tokens.session.id]);
      expect(core.sessions.peekAccessToken(tokens.accessToken)).toEqual({ ok: false, reason: 'revoked' });

      const other = await core.sessions.startBearerSession(user.id, ['me'], client);
      expect((await core.sessions.verifyAccessToken(other.accessToken)).ok).toBe(true);
      clock.advance(120_000);
      expect(core.sessions.peekAccessToken(other.accessToken)).toEqual({ ok: false, reason: 'expired' });
    } finally {
      await core.close();
    }
  });

  it('keys verified JWTs by signature yet answers only the byte-identical token from memory', async () => {
    const core = await createGatehouseCore(testConfig({ accessTokenTtl: 120 }));
    try {
      const user = await core.accounts.register({
        email: 'peek-signature@example.com',
        password: 'correct horse battery',
      });
      const tokens = await core.sessions.startBearerSession(user.id, ['me'], client);
      const verified = await core.sessions.verifyAccessToken(tokens.accessToken);
      expect(verified.ok).toBe(true);
      const [header, payload, signature] = tokens.accessToken.split('.') as [string, string, string];
      const reencode = (segment: string, change: (value: Record<string, unknown>) => void) => {
        const value = JSON.parse(Buffer.from(segment, 'base64url').toString()) as Record<string, unknown>;
        change(value);
        return Buffer.from(JSON.stringify(value)).toString('base64url');
      };
      // The cached token's signature segment on another payload (more scopes, another user) or
      // another header: never a cache hit, and refused by the full verification.
      const forgeries = [
        `${header}.${reencode(payload, (claims) => {
          claims.scope = 'me admin';
        })}.${signature}`,
        `${header}.${reencode(payload, (claims) => {
          claims.sub = 'someone-else';
        })}.${signature}`,
        `${reencode(header, (fields) => {
          fields.kid = 'other';
        })}.${payload}.${signature}`,
      ];
      for (const forged of forgeries) {
        expect(forged).not.toBe(tokens.accessToken);
        expect(forged.endsWith(`.${signature}`)).toBe(true);
        expect(core.sessions.peekAccessToken(forged)).toBeUndefined();
        expect(await core.sessions.verifyAccessToken(forged)).toEqual({ ok: false, reason: 'invalid' });
      }
      // The real token's entry was neither replaced nor evicted by the forgeries.
      expect(core.sessions.peekAccessToken(tokens.accessToken)).toEqual(verified);
      expect(core.sessions.cacheStats().jwt).toEqual({ hits: 1, misses: 1 + forgeries.length });
    } finally {
      await core.close();
    }
  });

  it('holds at most 10 000 verified JWTs, evicting the oldest', async () => {
    const core = await createGatehouseCore(testConfig({ accessTokenTtl: 3600 }));
    try {
      const now = Math.floor(Date.now() / 1000);
      // Signed directly with the keyring: 10 001 sessions through the database would only add time.
      const sign = (i: number) =>
        core.keyring.sign(
          {
            sub: `user-${i}`,
            sid: `session-${i}`,
            scope: 'me',
            aud: core.config.audience,
            iat: now,
            exp: now + 3600,
            jti: `jti-${i}`,
          },
          ACCESS_TOKEN_TYP,
        );
      const tokens: string[] = [];
      for (let start = 0; start < 10_001; start += 500) {
        const batch = Array.from({ length: Math.min(500, 10_001 - start) }, (_, i) => sign(start + i));
        tokens.push(...(await Promise.all(batch)));
      }
      for (const token of tokens) expect((await core.sessions.verifyAccessToken(token)).ok).toBe(true);
      // The first is gone (verified again in full on its next use), the second and the last are kept.
      expect(core.sessions.peekAccessToken(tokens[0] as string)).toBeUndefined();
      expect(core.sessions.peekAccessToken(tokens[1] as string)?.ok).toBe(true);
      expect(core.sessions.peekAccessToken(tokens[10_000] as string)?.ok).toBe(true);
    } finally {
      await core.close();
    }
  }, 60_000);

  it('decides a cookie from memory only while no re-read or last-use write is due', async () => {
    const clock = createTestClock();
    const core = await createGatehouseCore(testConfig(), { clock });
    try {
      const user = await core.accounts.register({
        email: 'peek-cookie@example.com',
        password: 'correct horse battery',
      });
      const { cookieToken, session } = await core.sessions.startCookieSession(user.id, ['me'], client);
      expect(core.sessions.peekCookieToken('nonsense')).toEqual({ ok: false, reason: 'malformed' });
      expect(core.sessions.peekCookieToken(cookieToken)).toBeUndefined();
      const verified = await core.sessions.verifyCookieToken(cookieToken);
      expect(verified.ok).toBe(true);
      expect(core.sessions.peekCookieToken(cookieToken)).toEqual(verified);
      // Past the re-check interval the session row must be read again: not from memory.
      clock.advance(COOKIE_RECHECK_MS);
      expect(core.sessions.peekCookieToken(cookieToken)).toBeUndefined();
      expect((await core.sessions.verifyCookieToken(cookieToken)).ok).toBe(true);
      expect(core.sessions.peekCookieToken(cookieToken)?.ok).toBe(true);
      // A minute after the last recorded use, the use must be written: not from memory either.
      clock.advance(COOKIE_RECHECK_MS - 1);
      expect(core.sessions.peekCookieToken(cookieToken)?.ok).toBe(true);
      clock.advance(1);
      expect(core.sessions.peekCookieToken(cookieToken)).toBeUndefined();
      expect((await core.sessions.verifyCookieToken(cookieToken)).ok).toBe(true);
      // Revocation is consulted on every answer from memory.
      await core.sessions.revokeSessions([session.id]);
      expect(core.sessions.peekCookieToken(cookieToken)).toEqual({ ok: false, reason: 'revoked' });
      expect(await core.sessions.verifyCookieToken(cookieToken)).toEqual({ ok: false, reason: 'invalid' });
    } finally {
      await core.close();
    }
  });

  it('decides a cached opaque token synchronously (database strategy)', async () => {
    const core = await createGatehouseCore(testConfig({ tokenStrategy: 'database' }));
    try {
      const user = await core.accounts.register({
        email: 'peek-opaque@example.com',
        password: 'correct horse battery',
      });
      const tokens = await core.sessions.startBearerSession(user.id, ['me'], client);
      expect(core.sessions.peekAccessToken(tokens.accessToken)).toBeUndefined();
      expect(core.sessions.peekAccessToken('gha_short')).toEqual({ ok: false, reason: 'invalid' });
      const verified = await core.sessions.verifyAccessToken(tokens.accessToken);
      expect(core.sessions.peekAccessToken(tokens.accessToken)).toEqual(verified);
      await core.sessions.revokeSessions([tokens.session.id]);
      expect(core.sessions.peekAccessToken(tokens.accessToken)).toEqual({ ok: false, reason: 'invalid' });
    } finally {
      await core.close();
    }
  });
});

describe('a raised revocation cut-off (gatehouse revoke-all after a restore)', () => {
  // The restored database never knew the sessions opened after its backup, so revoke-all cannot
  // name them in a broadcast: a session row read before the cut-off must be read again, or a cached
  // cookie or opaque token of such a session would pass for up to COOKIE_RECHECK_MS more.
  const forgetSessionAndRaiseCutoff = async (core: GatehouseCore, clock: TestClock, sessionId: string) => {
    await core.database.db.deleteFrom('sessions').where('id', '=', sessionId).execute();
    clock.advance(1);
    await core.sessionStore.raiseRevocationCutoff(clock());
    await core.revocations.reload();
  };

  it('re-reads a cached cookie session checked before the cut-off', async () => {
    const clock = createTestClock();
    const core = await createGatehouseCore(testConfig(), { clock });
    try {
      const user = await core.accounts.register({
        email: 'cut-cookie@example.com',
        password: 'correct horse battery',
      });
      const { cookieToken, session } = await core.sessions.startCookieSession(user.id, ['me'], client);
      expect((await core.sessions.verifyCookieToken(cookieToken)).ok).toBe(true);
      expect(core.sessions.peekCookieToken(cookieToken)?.ok).toBe(true);
      await forgetSessionAndRaiseCutoff(core, clock, session.id);
      expect(core.sessions.peekCookieToken(cookieToken)).toBeUndefined();
      expect((await core.sessions.verifyCookieToken(cookieToken)).ok).toBe(false);
    } finally {
      await core.close();
    }
  });

  it('re-reads a cached opaque access token checked before the cut-off (database strategy)', async () => {
    const clock = createTestClock();
    const core = await createGatehouseCore(testConfig({ tokenStrategy: 'database' }), { clock });
    try {
      const user = await core.accounts.register({
        email: 'cut-opaque@example.com',
        password: 'correct horse battery',
      });
      const tokens = await core.sessions.startBearerSession(user.id, ['me'], client);
      expect((await core.sessions.verifyAccessToken(tokens.accessToken)).ok).toBe(true);
      expect(core.sessions.peekAccessToken(tokens.accessToken)?.ok).toBe(true);
      await forgetSessionAndRaiseCutoff(core, clock, tokens.session.id);
      expect(core.sessions.peekAccessToken(tokens.accessToken)).toBeUndefined();
      expect((await core.sessions.verifyAccessToken(tokens.accessToken)).ok).toBe(false);
    } finally {
      await core.close();
    }
  });

  it("re-reads a row read before the cut-off was learned, when this clock is ahead of revoke-all's", async () => {
    // revoke-all takes its cut-off from the clock of the machine it runs on (checked against the
    // database's, within a minute); this instance's clock may be ahead of it by a few seconds. A
    // row it read from the database before the cut-off then carries a `checkedAt` past the cut-off,
    // and compared by time alone it passed from memory for up to COOKIE_RECHECK_MS more.
    const clock = createTestClock();
    const core = await createGatehouseCore(testConfig(), { clock });
    try {
      const user = await core.accounts.register({
        email: 'cut-skew@example.com',
        password: 'correct horse battery',
      });
      const { cookieToken, session } = await core.sessions.startCookieSession(user.id, ['me'], client);
      expect((await core.sessions.verifyCookieToken(cookieToken)).ok).toBe(true);
      await core.database.db.deleteFrom('sessions').where('id', '=', session.id).execute();
      // revoke-all's machine is 3 s behind this one: its cut-off lies before this read.
      await core.sessionStore.raiseRevocationCutoff(Math.ceil((clock() - 3_000) / 1000) * 1000);
      await core.revocations.reload();
      expect(core.sessions.peekCookieToken(cookieToken)).toBeUndefined();
      expect((await core.sessions.verifyCookieToken(cookieToken)).ok).toBe(false);
    } finally {
      await core.close();
    }
  });

  it('keeps answering from memory for rows read after the cut-off', async () => {
    const clock = createTestClock();
    const core = await createGatehouseCore(testConfig(), { clock });
    try {
      await core.sessionStore.raiseRevocationCutoff(clock() + 1);
      await core.revocations.reload();
      clock.advance(1);
      const user = await core.accounts.register({
        email: 'cut-after@example.com',
        password: 'correct horse battery',
      });
      const { cookieToken } = await core.sessions.startCookieSession(user.id, ['me'], client);
      expect((await core.sessions.verifyCookieToken(cookieToken)).ok).toBe(true);
      expect(core.sessions.peekCookieToken(cookieToken)?.ok).toBe(true);
    } finally {
      await core.close();
    }
  });
});

describe.each(engines)('a sign-in whose account is gone ($name, red-team 2026-12d I10)', ({ name }) => {
  let gatehouse: GatehouseCore;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const database = await createTestDatabaseUrl(name);
    drop = database.drop;
    gatehouse = await createGatehouseCore(testConfig({ databaseUrl: database.url }));
  });
  afterAll(async () => {
    await gatehouse.close();
    await drop();
  });

  let counter = 0;
  const register = async () => {
    counter += 1;
    return gatehouse.accounts.register({
      email: `gone${counter}.${name}@example.com`,
      password: 'correct horse battery',
    });
  };
  /** The account deleted after its credentials were checked, as `DELETE /users/me` does mid-login. */
  const deletedUserId = async () => {
    const user = await register();
    expect(await gatehouse.users.deleteUser(user.id)).toBe(true);
    return user.id;
  };

  it('refuses a bearer session with INVALID_CREDENTIALS, not the foreign-key failure', async () => {
    const userId = await deletedUserId();
    await expect(gatehouse.sessions.startBearerSession(userId, ['me'], client)).rejects.toMatchObject({
      name: 'GatehouseError',
      code: 'INVALID_CREDENTIALS',
    });
    expect(await gatehouse.sessions.listSessions(userId)).toEqual([]);
  });

  it('refuses a cookie session the same way', async () => {
    const userId = await deletedUserId();
    await expect(gatehouse.sessions.startCookieSession(userId, ['me'], client)).rejects.toMatchObject({
      name: 'GatehouseError',
      code: 'INVALID_CREDENTIALS',
    });
  });

  it('rethrows a foreign-key failure whose account still exists, unchanged (a bug stays a bug)', async () => {
    const user = await register();
    const violation = Object.assign(new Error('FOREIGN KEY constraint failed'), {
      code: name === 'postgres' ? '23503' : 'SQLITE_CONSTRAINT_FOREIGNKEY',
    });
    const spend = async () => {
      throw violation;
    };
    await expect(
      gatehouse.sessions.startBearerSession(user.id, ['me'], client, undefined, { spend }),
    ).rejects.toBe(violation);
    await expect(gatehouse.sessions.startCookieSession(user.id, ['me'], client, { spend })).rejects.toBe(
      violation,
    );
    // Rolled back: the refused sign-ins left no session behind.
    expect(await gatehouse.sessions.listSessions(user.id)).toEqual([]);
  });
});
