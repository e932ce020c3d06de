import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseCore } from '../../src/gatehouse-core.js';
import { createSigningKeyStore } from '../../src/storage/signing-key-store.js';
import { buildTestServer } from '../../src/testing.js';
import { createTestDatabaseUrl } from '../support/databases.js';
import { type FreezableProxy, startFreezableProxy } from '../support/freezable-proxy.js';
import { PUBLIC_URL } from '../support/oauth-provider.js';

const onPostgres = process.env.DATABASE_URL?.startsWith('postgres') === true;

/**
 * Operator red-team 2026-12h F4: on an HS256 install, the ID-token keys (ES256) were loaded on the
 * first discovery or JWKS request, so an instance that started shortly before a database outage
 * answered both 503 throughout it. An install that has such keys now loads them at start-up.
 */
describe.skipIf(!onPostgres)('discovery and JWKS while PostgreSQL is frozen (HS256 install)', () => {
  let proxy: FreezableProxy;
  let url: string;
  let drop: () => Promise<void> = async () => {};
  let published: string[];
  /** Both instances share one secret, as instances of one deployment do. */
  const secretKey = new Uint8Array(randomBytes(32));

  beforeAll(async () => {
    const database = await createTestDatabaseUrl('postgres');
    url = database.url;
    drop = database.drop;
    // A first instance publishes (and so creates) the ID-token keys, as a relying party's first
    // discovery does.
    const first = await buildTestServer({
      databaseUrl: url,
      secretKey,
      publicUrl: PUBLIC_URL,
      issuer: PUBLIC_URL,
    });
    const jwks = await first.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    expect(jwks.statusCode).toBe(200);
    published = (jwks.json() as { keys: { kid: string }[] }).keys.map((key) => key.kid);
    expect(published.length).toBeGreaterThan(0);
    await first.close();
    proxy = await startFreezableProxy(Number(new URL(url).port || 5432));
  });
  afterAll(async () => {
    await proxy?.close();
    await drop();
  });

  it('a later instance answers both from the keys it loaded at start-up', async () => {
    const throughProxy = new URL(url);
    throughProxy.hostname = '127.0.0.1';
    throughProxy.port = String(proxy.port);
    let app: FastifyInstance | undefined;
    try {
      app = await buildTestServer({
        databaseUrl: throughProxy.toString(),
        secretKey,
        databaseConnectTimeoutMs: 1000,
        databaseStatementTimeoutMs: 1000,
        publicUrl: PUBLIC_URL,
        issuer: PUBLIC_URL,
      });
      proxy.freeze();
      const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
      expect(jwks.statusCode, jwks.body).toBe(200);
      expect((jwks.json() as { keys: { kid: string }[] }).keys.map((key) => key.kid)).toEqual(published);
      const discovery = await app.inject({ method: 'GET', url: '/.well-known/openid-configuration' });
      expect(discovery.statusCode, discovery.body).toBe(200);
      expect(discovery.json()).toMatchObject({ id_token_signing_alg_values_supported: ['ES256', 'RS256'] });
    } finally {
      proxy.thaw();
      await app?.close();
    }
  });
  it('an instance whose ID-token keys do not open (SECRET_KEY changed) still starts', async () => {
    // Today the database names its instances' secret (red-team 2026-12q Q2): another one is refused
    // at start-up. What this test is about is a database from before that check, which names none.
    await expect(
      buildTestServer({ databaseUrl: url, publicUrl: PUBLIC_URL, issuer: PUBLIC_URL }),
    ).rejects.toThrow(/SECRET_KEY is not the secret the other instances/);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('delete from secret_key_check');
    await client.end();
    const warnings: string[] = [];
    const app = await buildTestServer(
      { databaseUrl: url, publicUrl: PUBLIC_URL, issuer: PUBLIC_URL },
      { onWarning: (message) => warnings.push(message) },
    );
    try {
      expect(warnings).toContainEqual(expect.stringMatching(/^ID-token keys not loaded at start-up/));
      const registered = await app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { email: `keys.${process.pid}@example.com`, password: 'correct horse battery' },
      });
      expect(registered.statusCode, registered.body).toBe(201);
    } finally {
      await app.close();
    }
  });
});

describe('an HS256 install that never issued an ID token', () => {
  it('creates no ID-token key at start-up', async () => {
    const app = await buildTestServer();
    try {
      const { database } = gatehouseCore(app.gatehouse);
      expect(await createSigningKeyStore(database.db).listKeys('ES256')).toEqual([]);
      // The first publication creates them, as before.
      expect((await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode).toBe(200);
      expect(await createSigningKeyStore(database.db).listKeys('ES256')).toHaveLength(1);
    } finally {
      await app.close();
    }
  });
});
