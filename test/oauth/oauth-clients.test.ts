import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/audit-log.js';
import { GatehouseError } from '../../src/errors.js';
import {
  createOAuthClients,
  hashClientSecret,
  MAX_REDIRECT_URIS,
  newClientId,
  type OAuthClients,
  redirectIdentifiesClient,
  redirectUriMatches,
  redirectUriProblem,
} from '../../src/oauth/oauth-clients.js';
import { createAuditRetentionStore } from '../../src/storage/audit-retention-store.js';
import { createAuditStore } from '../../src/storage/audit-store.js';
import { createOAuthClientStore } from '../../src/storage/oauth-client-store.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';

const T0 = 1_800_000_000_000;
const CLI = { actorId: null };

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; fields: string[] }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof GatehouseError) {
      return { code: error.code, fields: (error.errors ?? []).map((e) => e.field) };
    }
    throw error;
  }
  throw new Error('expected a GatehouseError');
}

describe('redirectUriProblem', () => {
  it.each([
    'https://app.example/cb',
    'https://app.example:8443/cb?x=1',
    'http://127.0.0.1:5173/cb',
    'http://[::1]/cb',
    'http://localhost:3000/',
    'com.example.app:/oauth',
    'https://bücher.example/cb',
    'https://192.0.2.1:8443/cb',
    'https://[2001:db8::1]/cb',
  ])('accepts %s', (uri) => expect(redirectUriProblem(uri)).toBeUndefined());

  it.each([
    ['relative', '/cb'],
    ['http elsewhere', 'http://app.example/cb'],
    ['a fragment', 'https://app.example/cb#x'],
    ['user info', 'https://app.example@evil.example/cb'],
    ['a space', 'https://app.example/c b'],
    ['javascript:', 'javascript:alert(1)'],
    ['data:', 'data:text/html,hi'],
    ['too long', `https://app.example/${'a'.repeat(2000)}`],
    // Red-team F10: WHATWG URL keeps these in the host, and the consent page's CSP would carry them.
    ['a semicolon in the host', 'https://x.example;frame-ancestors/cb'],
    ['a comma in the host', 'https://x.example,evil/cb'],
    ['an underscore in the host', 'https://a_b.example/cb'],
    ['a "!" in the host', 'https://x!y.example/cb'],
    ['a trailing dot', 'https://x.example./cb'],
    ['a semicolon in a loopback-looking host', 'http://localhost;x/cb'],
    // Response parameters in the registered query: every response would carry two of each.
    ['a code in the query', 'https://app.example/cb?x=1&code=evil'],
    ['an iss in the query', 'https://app.example/cb?iss=http://evil.example'],
    ['a state in the query', 'https://app.example/cb?state=fixed'],
    ['an error in the query', 'com.example.app:/oauth?error=x'],
    ['port 0', 'https://app.example:0/cb'],
  ])('refuses %s', (_label, uri) => expect(redirectUriProblem(uri)).toBeTypeOf('string'));
});

describe('redirectIdentifiesClient', () => {
  // Red-team 2026-12g O1: only three loopback names were known, so consent was remembered (and
  // prompt=none answered with a code) for other names of the device that any local app can serve.
  it("only for https on a host outside the device: every loopback name and address is any app's", () => {
    for (const uri of [
      'https://app.example/cb',
      'https://127.example/cb',
      'https://localhost.example/cb',
      'https://[2001:db8::1]/cb',
    ])
      expect(redirectIdentifiesClient(uri), uri).toBe(true);
    for (const uri of [
      'http://app.example/cb',
      'com.example.app:/cb',
      'https://localhost/cb',
      'https://localhost./cb',
      'https://app.localhost/cb',
      'https://app.localhost./cb',
      'https://127.0.0.1/cb',
      'https://127.0.0.2:8443/cb',
      'https://127.1.2.3/cb',
      'https://0.0.0.0/cb',
      'https://[::1]/cb',
      'https://[::]/cb',
      'https://[::ffff:127.0.0.1]/cb',
      'https://[::ffff:7f00:2]/cb',
      'not a uri',
    ])
      expect(redirectIdentifiesClient(uri), uri).toBe(false);
  });
});

describe('redirectUriMatches', () => {
  it('compares as written, but for the port of an http loopback IP literal (RFC 8252 §7.3)', () => {
    expect(redirectUriMatches('https://app.example/cb', 'https://app.example/cb')).toBe(true);
    expect(redirectUriMatches('https://app.example/cb', 'https://app.example:444/cb')).toBe(false);
    expect(redirectUriMatches('https://app.example/cb', 'https://APP.example/cb')).toBe(false);
    expect(redirectUriMatches('http://127.0.0.1/cb', 'http://127.0.0.1:1/cb')).toBe(true);
    expect(redirectUriMatches('http://127.0.0.1:3000/cb', 'http://127.0.0.1:65535/cb')).toBe(true);
    expect(redirectUriMatches('http://127.0.0.1:3000/cb', 'http://127.0.0.1/cb')).toBe(true);
    expect(redirectUriMatches('http://[::1]/', 'http://[::1]:9/')).toBe(true);
    expect(redirectUriMatches('http://127.0.0.1', 'http://127.0.0.1:9')).toBe(true);
    for (const presented of [
      'http://127.0.0.1:0/cb',
      'http://127.0.0.1:65536/cb',
      'http://127.0.0.1:99999/cb',
      'http://127.0.0.1:80/cb/',
      'http://127.0.0.1:80/CB',
      'http://[::1]:80/cb',
      'https://127.0.0.1:80/cb',
      'http://127.0.0.1:80@evil.example/cb',
      'http://127.0.0.1:80#/cb',
    ])
      expect(redirectUriMatches('http://127.0.0.1/cb', presented), presented).toBe(false);
    expect(redirectUriMatches('http://localhost/cb', 'http://localhost:80/cb')).toBe(false);
    expect(redirectUriMatches('http://127.0.0.2/cb', 'http://127.0.0.2:80/cb')).toBe(false);
  });
});

describe('OAuthClients', () => {
  let test: TestDatabase;
  let clients: OAuthClients;

  beforeAll(async () => {
    test = await createTestDatabase('sqlite');
    const db = test.database.db;
    clients = createOAuthClients({
      clients: createOAuthClientStore(db),
      transaction: (work) =>
        test.database.transaction((trx) =>
          work({
            clients: createOAuthClientStore(trx),
            audit: createAuditLog(createAuditStore(trx), () => T0, createAuditRetentionStore(trx)),
            endClientSessions: async () => [],
          }),
        ),
      clock: () => T0,
    });
  });
  afterAll(async () => test.dispose());

  const auditOf = async (clientId: string) =>
    (
      await createAuditLog(
        createAuditStore(test.database.db),
        () => T0,
        createAuditRetentionStore(test.database.db),
      ).list({ limit: 100, offset: 0 })
    ).items
      .filter((row) => row.details?.client_id === clientId)
      .map((row) => [row.event, row.actorId]);

  it('registers a public client with the defaults, no secret stored, audited', async () => {
    const { client, clientSecret } = await clients.create(
      { name: '  Notes   app ', redirectUris: ['https://notes.example/cb'] },
      { actorId: 'admin-1' },
    );
    expect(clientSecret).toBeUndefined();
    expect(client).toEqual({
      clientId: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      name: 'Notes app',
      type: 'public',
      redirectUris: ['https://notes.example/cb'],
      postLogoutRedirectUris: [],
      grantTypes: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'profile', 'email'],
      createdAt: T0,
      disabled: false,
      idTokenSignedResponseAlg: 'ES256',
    });
    expect(await clients.get(client.clientId)).toEqual(client);
    expect(await auditOf(client.clientId)).toEqual([['oauth_client_created', 'admin-1']]);
  });

  it('keeps an explicit ID-token algorithm across a JWT_ALG change, and falls back to the default only when it is no longer offered', async () => {
    const rs256 = await clients.create(
      { name: 'Cluster', redirectUris: ['https://k8s.example/cb'], idTokenSignedResponseAlg: 'RS256' },
      { actorId: 'admin-1' },
    );
    const es256 = await clients.create(
      { name: 'Pinned', redirectUris: ['https://pinned.example/cb'], idTokenSignedResponseAlg: 'ES256' },
      { actorId: 'admin-1' },
    );
    const implicit = await clients.create(
      { name: 'Default', redirectUris: ['https://d.example/cb'] },
      { actorId: 'admin-1' },
    );
    expect([rs256, es256, implicit].map((made) => made.client.idTokenSignedResponseAlg)).toEqual([
      'RS256',
      'ES256',
      'ES256',
    ]);
    // The same rows read by an installation whose JWT_ALG became EdDSA (its algorithms: EdDSA, RS256).
    const afterChange = createOAuthClients({
      clients: createOAuthClientStore(test.database.db),
      transaction: () => Promise.reject(new Error('read only')),
      clock: () => T0,
      idTokenAlgorithms: ['EdDSA', 'RS256'],
    });
    const read = async (id: string) => (await afterChange.get(id)).idTokenSignedResponseAlg;
    expect(await read(rs256.client.clientId)).toBe('RS256');
    expect(await read(es256.client.clientId)).toBe('EdDSA');
    expect(await read(implicit.client.clientId)).toBe('EdDSA');
  });

  it('gives a confidential client a 256-bit secret, stored only as its hash, and authenticates it', async () => {
    const { client, clientSecret } = await clients.create(
      { name: 'Billing', confidential: true, grantTypes: ['client_credentials'], scopes: ['users:read'] },
      CLI,
    );
    expect(client.type).toBe('confidential');
    expect(clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = await createOAuthClientStore(test.database.db).findClient(client.clientId);
    expect(row?.secretHash).toBe(hashClientSecret(clientSecret ?? ''));
    expect(JSON.stringify(row)).not.toContain(clientSecret);
    expect(await clients.authenticate(client.clientId, clientSecret)).toEqual({ ok: true, client });
    expect(await clients.authenticate(client.clientId, `${clientSecret}x`)).toEqual({
      ok: false,
      reason: 'invalid_secret',
    });
    expect(await clients.authenticate(client.clientId, undefined)).toEqual({
      ok: false,
      reason: 'secret_required',
    });
  });

  it('refuses a secret from a public client and unknown or first-party ids', async () => {
    const { client } = await clients.create({ name: 'SPA', redirectUris: ['http://127.0.0.1:5173/cb'] }, CLI);
    expect(await clients.authenticate(client.clientId, undefined)).toEqual({ ok: true, client });
    expect(await clients.authenticate(client.clientId, 'guess')).toEqual({
      ok: false,
      reason: 'secret_not_expected',
    });
    for (const id of ['nope', 'gatehouse', 'a\u0000b', 'x'.repeat(300)]) {
      expect(await clients.authenticate(id, undefined)).toEqual({ ok: false, reason: 'unknown_client' });
      expect(await clients.find(id)).toBeUndefined();
    }
  });

  it('refuses every bad field at once: implicit/password grants, public client_credentials, unknown scopes, bad URIs', async () => {
    expect(
      await codeOf(
        clients.create(
          {
            name: '\u202Eevil',
            redirectUris: ['http://evil.example/cb', 'https://ok.example/cb#frag'],
            grantTypes: ['implicit', 'password', 'client_credentials'],
            scopes: ['openid', 'root'],
          },
          CLI,
        ),
      ),
    ).toEqual({
      code: 'VALIDATION_FAILED',
      fields: [
        'name',
        'redirect_uris/0',
        'redirect_uris/1',
        'grant_types',
        'grant_types',
        'grant_types',
        'scopes',
      ],
    });
    expect(await codeOf(clients.create({ name: 'No URIs' }, CLI))).toEqual({
      code: 'VALIDATION_FAILED',
      fields: ['redirect_uris'],
    });
    const many = Array.from({ length: MAX_REDIRECT_URIS + 1 }, (_, i) => `https://a.example/${i}`);
    expect((await codeOf(clients.create({ name: 'Many', redirectUris: many }, CLI))).fields).toEqual([
      'redirect_uris',
    ]);
    expect((await codeOf(clients.create({ name: 'None', grantTypes: [] }, CLI))).fields).toEqual([
      'grant_types',
    ]);
  });

  it('removes a client once (audited); then it is CLIENT_NOT_FOUND and cannot authenticate', async () => {
    const { client } = await clients.create({ name: 'Old', redirectUris: ['https://old.example/cb'] }, CLI);
    await clients.remove(client.clientId, { actorId: 'admin-2' });
    expect(await codeOf(clients.remove(client.clientId, CLI))).toEqual({
      code: 'CLIENT_NOT_FOUND',
      fields: [],
    });
    expect(await codeOf(clients.get(client.clientId))).toEqual({ code: 'CLIENT_NOT_FOUND', fields: [] });
    expect((await clients.authenticate(client.clientId, undefined)).ok).toBe(false);
    expect(await auditOf(client.clientId)).toEqual(
      expect.arrayContaining([
        ['oauth_client_created', null],
        ['oauth_client_deleted', 'admin-2'],
      ]),
    );
  });
});

describe('OAuthClients registration cap', () => {
  it('refuses the client beyond MAX_OAUTH_CLIENTS with TOO_MANY_CLIENTS, writing nothing', async () => {
    const test = await createTestDatabase('sqlite');
    try {
      const store = createOAuthClientStore(test.database.db);
      const full = { ...store, countClients: async () => 1000 };
      const clients = createOAuthClients({
        clients: store,
        transaction: (work) =>
          work({ clients: full, audit: { record: async () => {} }, endClientSessions: async () => [] }),
        clock: () => T0,
      });
      expect(
        await codeOf(clients.create({ name: 'One more', redirectUris: ['https://a.example/'] }, CLI)),
      ).toEqual({
        code: 'TOO_MANY_CLIENTS',
        fields: [],
      });
      expect(await clients.list()).toEqual([]);
    } finally {
      await test.dispose();
    }
  });
});

describe('client ids', () => {
  it('are 128 random bits in base64url that never start with "-" (a command line would take one for an option)', () => {
    const ids = Array.from({ length: 5_000 }, () => newClientId());
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
