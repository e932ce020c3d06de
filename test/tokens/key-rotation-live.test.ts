import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createGatehouseCore } from '../../src/gatehouse.js';
import type { GatehouseCore } from '../../src/gatehouse-core.js';
import { buildServer, REFERENCE_APP_SCOPES, REFERENCE_APP_SETTINGS } from '../../src/server.js';
import { createTestClock, type TestClock, testConfig } from '../../src/testing.js';
import { KEY_PUBLICATION_DELAY_SECONDS } from '../../src/tokens/keyring.js';
import { revokeSigningKey, rotateSigningKeys } from '../../src/tokens/rotate-keys.js';
import { bearer, createUser, login } from '../support/accounts.js';
import { createTestDatabaseUrl, engines } from '../support/databases.js';

/**
 * A resource server that caches the JWKS for exactly its `Cache-Control: max-age` (by the test's
 * clock) and never refetches early, not even on an unknown kid: the strictest caching verifier.
 * Each refetch goes to the next instance, as through a load balancer.
 */
function cachingVerifier(apps: FastifyInstance[], clock: TestClock, issuer: string, audience: string) {
  let keySet: ReturnType<typeof createLocalJWKSet> | undefined;
  let expiresAt = 0;
  let fetches = 0;
  return {
    fetches: () => fetches,
    async verify(token: string) {
      if (keySet === undefined || clock() >= expiresAt) {
        const app = apps[fetches % apps.length];
        if (app === undefined) throw new Error('no instance');
        const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
        const maxAge = Number(/max-age=(\d+)/.exec(String(response.headers['cache-control']))?.[1]);
        expect(maxAge).toBeGreaterThan(0);
        keySet = createLocalJWKSet(response.json<JSONWebKeySet>());
        expiresAt = clock() + maxAge * 1000;
        fetches++;
      }
      const { payload } = await jwtVerify(token, keySet, {
        issuer,
        audience,
        algorithms: ['EdDSA'],
        currentDate: new Date(clock()),
      });
      return payload;
    },
  };
}

describe.each(engines)('live key rotation on two instances sharing one $name database', ({ name }) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('a verifier that cached the JWKS before rotate-keys verifies every token through the rotation; --revoke withdraws at once', async () => {
    const { url, drop } =
      name === 'sqlite'
        ? {
            url: `sqlite:${join(mkdtempSync(join(tmpdir(), 'gh-live-')), 'shared.db')}`,
            drop: async () => {},
          }
        : await createTestDatabaseUrl('postgres');
    cleanups.push(drop);
    const clock = createTestClock();
    // One configuration, two data directories: no file is shared, only the database.
    const shared = testConfig({ databaseUrl: url, jwtAlgorithm: 'EdDSA' });
    const instances: { app: FastifyInstance; core: GatehouseCore }[] = [];
    for (let i = 0; i < 2; i++) {
      const config = { ...shared, dataDir: mkdtempSync(join(tmpdir(), 'gh-live-')) };
      // The reference apps' scopes and settings: their guards refuse, at registration, a scope the
      // core does not know, and Dicery reads its settings from the core.
      const core = await createGatehouseCore(config, {
        clock,
        scopes: REFERENCE_APP_SCOPES,
        settings: REFERENCE_APP_SETTINGS,
      });
      const app = await buildServer(config, { gatehouse: core.facade, logger: false, webUi: false });
      cleanups.push(async () => {
        await app.close();
        await core.close();
      });
      instances.push({ app, core });
    }
    const [a, b] = instances;
    if (a === undefined || b === undefined) throw new Error('two instances expected');
    const apps = [a.app, b.app];
    const verifier = cachingVerifier(apps, clock, shared.issuer, shared.audience);
    const users = [await createUser(a.app), await createUser(b.app)];
    // What each instance's periodic reload does (every KEY_RELOAD_INTERVAL_SECONDS in real time).
    const reloadAll = () => Promise.all(instances.map(({ core }) => core.keyring.reload()));
    const loginBoth = () => Promise.all(apps.map((app, i) => login(app, users[i]?.email ?? '')));

    // Before the rotation: the verifier fetches and caches the key set.
    const issuedAt = clock();
    const before = await loginBoth();
    for (const { access_token } of before) await verifier.verify(access_token);
    const oldKid = decodeProtectedHeader(before[0]?.access_token ?? '').kid;

    const rotation = await rotateSigningKeys({
      database: a.core.database,
      algorithm: 'EdDSA',
      secret: shared.secretKey,
      now: clock(),
      retentionSeconds: a.core.keyRetentionSeconds,
    });
    await reloadAll();
    for (const { app } of instances) {
      const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
      // The access tokens' keys (the RS256 keys of ID tokens are published beside them).
      const accessKeys = jwks.keys.filter(
        (key) => key.alg === decodeProtectedHeader(before[0]?.access_token ?? '').alg,
      );
      expect(accessKeys.map((key) => key.kid)).toEqual([oldKid, rotation.kid]);
    }

    // Through the whole rotation, minute by minute: tokens from both instances, old and new,
    // verify at the caching verifier and at the other instance.
    const kidsSeen = new Set<string | undefined>();
    const step = 60_000;
    for (let t = 0; t <= 2 * KEY_PUBLICATION_DELAY_SECONDS * 1000; t += step) {
      await reloadAll();
      const tokens = await loginBoth();
      for (const [i, { access_token }] of tokens.entries()) {
        kidsSeen.add(decodeProtectedHeader(access_token).kid);
        expect(await verifier.verify(access_token)).toMatchObject({ sub: users[i]?.id });
        const other = apps[1 - i];
        if (other === undefined) throw new Error('unreachable');
        expect((await other.inject({ url: '/users/me', headers: bearer(access_token) })).statusCode).toBe(
          200,
        );
      }
      // Tokens issued before the rotation live on until they expire (ACCESS_TOKEN_TTL, 15 min).
      if (clock() < issuedAt + (before[0]?.expires_in ?? 0) * 1000) {
        for (const { access_token } of before) await verifier.verify(access_token);
      }
      clock.advance(step);
    }
    expect(kidsSeen).toEqual(new Set([oldKid, rotation.kid]));
    // It fetched only as often as max-age allowed: never forced by an unknown kid.
    expect(verifier.fetches()).toBe(Math.floor((2 * KEY_PUBLICATION_DELAY_SECONDS) / 300) + 1);

    // --revoke: the signing key is withdrawn; its tokens, even ones already verified and cached by
    // an instance, fail on both instances after their reload, and a replacement signs.
    const compromised = (await loginBoth())[0]?.access_token ?? '';
    expect((await b.app.inject({ url: '/users/me', headers: bearer(compromised) })).statusCode).toBe(200);
    const { replacement } = await revokeSigningKey({
      database: b.core.database,
      algorithm: 'EdDSA',
      secret: shared.secretKey,
      now: clock(),
      kid: rotation.kid,
      retentionSeconds: a.core.keyRetentionSeconds,
    });
    await reloadAll();
    for (const app of apps) {
      expect((await app.inject({ url: '/users/me', headers: bearer(compromised) })).statusCode).toBe(401);
      const jwks = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
      expect(jwks.keys.map((key) => key.kid)).not.toContain(rotation.kid);
    }
    const after = await loginBoth();
    for (const { access_token } of after) {
      expect(decodeProtectedHeader(access_token).kid).toBe(replacement);
      expect((await b.app.inject({ url: '/users/me', headers: bearer(access_token) })).statusCode).toBe(200);
    }
  });
});
