import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNoticeStore } from '../src/mail/storage/notice-store.js';
import { openDatabase } from '../src/storage/open-database.js';
import { createTestDatabaseUrl, engines } from './support/databases.js';
import { run } from './support/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'gh-cli-clients-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each case starts a Node process that opens (and migrates) the database: seconds on a busy machine.
describe('gatehouse clients (compiled CLI)', { timeout: 120_000 }, () => {
  it('warns when the client redirects to an origin of CORS_CREDENTIALED_ORIGINS', async () => {
    const env = { DATA_DIR: join(dir, 'cors'), CORS_CREDENTIALED_ORIGINS: 'https://front.example' };
    const created = await run(
      ['clients', 'create', '--name', 'Partner', '--redirect-uri', 'https://front.example/cb'],
      env,
    );
    expect(created.code).toBe(0);
    expect(created.stderr).toMatch(
      /^warning: OAuth client \S+ redirects to https:\/\/front\.example, which CORS_CREDENTIALED_ORIGINS/,
    );
    expect(JSON.parse(created.stdout).warnings).toEqual([expect.stringContaining('https://front.example')]);
  });

  it('creates public and confidential clients as JSON, lists and deletes them', async () => {
    const env = { DATA_DIR: join(dir, 'a') };
    const spa = await run(
      [
        'clients',
        'create',
        '--name',
        'My SPA',
        '--redirect-uri',
        'http://127.0.0.1:5173/cb',
        '--redirect-uri',
        'https://spa.example/cb',
      ],
      env,
    );
    expect(spa.stderr).toBe('');
    expect(spa.code).toBe(0);
    const publicClient = JSON.parse(spa.stdout);
    expect(publicClient).toMatchObject({
      client_id: expect.any(String),
      client_type: 'public',
      redirect_uris: ['http://127.0.0.1:5173/cb', 'https://spa.example/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
    });
    expect(publicClient).not.toHaveProperty('client_secret');
    const service = await run(
      [
        'clients',
        'create',
        '--name',
        'Billing',
        '--confidential',
        '--grant',
        'client_credentials',
        '--scope',
        'clothes:read',
      ],
      env,
    );
    expect(service.code).toBe(0);
    const confidential = JSON.parse(service.stdout);
    expect(confidential).toMatchObject({ client_type: 'confidential', scopes: ['clothes:read'] });
    expect(confidential.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const listed = await run(['clients', 'list'], env);
    expect(JSON.parse(listed.stdout).map((c: { client_id: string }) => c.client_id)).toEqual([
      publicClient.client_id,
      confidential.client_id,
    ]);
    expect(listed.stdout).not.toContain(confidential.client_secret);
    // Disable and enable: JSON of the client as it now is; an unknown id exits 65.
    const disabled = await run(['clients', 'disable', confidential.client_id], env);
    expect(disabled.code).toBe(0);
    expect(JSON.parse(disabled.stdout)).toMatchObject({ client_id: confidential.client_id, disabled: true });
    const enabled = await run(['clients', 'enable', confidential.client_id], env);
    expect(JSON.parse(enabled.stdout)).toMatchObject({ disabled: false });
    expect((await run(['clients', 'disable', 'nobody'], env)).code).toBe(65);
    expect((await run(['clients', 'delete', publicClient.client_id], env)).code).toBe(0);
    const again = await run(['clients', 'delete', publicClient.client_id], env);
    expect(again.code).toBe(65);
    expect(again.stderr).toMatch(/^gatehouse: client not deleted: No OAuth client has this id\.\n$/);
  });

  it('registers a client whose ID tokens are RS256', async () => {
    const env = { DATA_DIR: join(dir, 'rs256') };
    // OpenID Connect Core §15.1: an RP that accepts RS256 alone gets RS256 ID tokens.
    const cluster = await run(
      [
        'clients',
        'create',
        '--name',
        'Cluster',
        '--id-token-alg',
        'RS256',
        '--redirect-uri',
        'https://k8s.example/cb',
      ],
      env,
    );
    expect(cluster.code, cluster.stderr).toBe(0);
    expect(JSON.parse(cluster.stdout)).toMatchObject({ id_token_signed_response_alg: 'RS256' });
  });

  it('refuses a bad registration in one line (65) and bad usage (64), creating nothing', async () => {
    const env = { DATA_DIR: join(dir, 'b') };
    const bad = await run(
      ['clients', 'create', '--name', 'X', '--redirect-uri', 'http://evil.example/cb'],
      env,
    );
    expect(bad.code).toBe(65);
    expect(bad.stderr).toMatch(
      /^gatehouse: client not created: The client registration is invalid\. redirect_uris\/0: must use https[^\n]*\n$/,
    );
    const implicit = await run(
      ['clients', 'create', '--name', 'X', '--grant', 'implicit', '--redirect-uri', 'https://a.example/'],
      env,
    );
    expect(implicit.code).toBe(65);
    expect(implicit.stderr).toContain('RFC 9700');
    const hs256 = await run(
      ['clients', 'create', '--name', 'X', '--id-token-alg', 'HS256', '--redirect-uri', 'https://a.example/'],
      env,
    );
    expect(hs256.code).toBe(65);
    expect(hs256.stderr).toMatch(/id_token_signed_response_alg: "HS256" is not offered; use ES256 or RS256/);
    for (const args of [
      ['clients'],
      ['clients', 'create'],
      ['clients', 'nuke'],
      ['clients', 'create', '--name', 'X', '--secret', 'y'],
      ['clients', 'delete'],
    ]) {
      const usage = await run(args, env);
      expect(usage.code).toBe(64);
      expect(usage.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
    expect(JSON.parse((await run(['clients', 'list'], env)).stdout)).toEqual([]);
  });
});

// Review of the security notices: a command's core swept at start-up, took the servers' pending
// notices and mailed them through its own transport (DATA_DIR/outbox without SMTP_URL). Only a
// PostgreSQL pool lets the sweep run during a short command, so this is that engine's test too.
describe.each(engines)(
  "commands leave the servers' security notices alone ($name)",
  { timeout: 120_000 },
  ({ name }) => {
    it('clients list and rotate-keys take no pending notice and mail nothing', async () => {
      const database = await createTestDatabaseUrl(name);
      const dataDir = join(dir, `notices-${name}`);
      const env: Record<string, string> = { DATA_DIR: dataDir };
      if (name === 'postgres') env.DATABASE_URL = database.url;
      try {
        // The first command migrates the database.
        expect((await run(['clients', 'list'], env)).code).toBe(0);
        const url = name === 'postgres' ? database.url : `sqlite:${join(dataDir, 'gatehouse.db')}`;
        const opened = openDatabase(url);
        const store = createNoticeStore(opened.db, opened.dialect);
        try {
          await store.add(
            { kind: 'password_changed', recipient: 'owner@example.com', values: '{"when":"t"}' },
            Date.now(),
            3,
          );
        } finally {
          await opened.close();
        }
        for (const args of [['clients', 'list'], ['rotate-keys'], ['clients', 'list']]) {
          const ran = await run(args, env);
          expect(ran.code, ran.stderr).toBe(0);
        }
        const reopened = openDatabase(url);
        try {
          const rows = await reopened.db
            .selectFrom('pending_notices')
            .select(['recipient', 'claimed_until'])
            .execute();
          expect(rows.map((row) => [row.recipient, Number(row.claimed_until)])).toEqual([
            ['owner@example.com', 0],
          ]);
        } finally {
          await reopened.close();
        }
        const outbox = join(dataDir, 'outbox');
        expect(existsSync(outbox) ? readdirSync(outbox) : []).toEqual([]);
      } finally {
        await database.drop();
      }
    });
  },
);
