import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { type ServerProcess, startServerProcess } from './support/server-process.js';
import { openSse } from './support/sse-client.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string>, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

describe('gatehouse CLI (compiled)', () => {
  let server: ChildProcess | undefined;
  afterEach(() => {
    server?.kill('SIGKILL');
    server = undefined;
  });

  it('migrates, then creates a super_admin with the password from stdin', async () => {
    const env = { DATA_DIR: mkdtempSync(join(tmpdir(), 'gh-cli-')) };
    const migrated = await run(['migrate'], env);
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toContain('001-accounts');
    expect((await run(['migrate'], env)).stdout).toContain('up to date');
    const created = await run(
      ['create-user', '--email', 'root@example.com', '--role', 'super_admin'],
      env,
      'correct horse battery\n',
    );
    expect(created.stderr).toBe('');
    expect(created.stdout).toMatch(/Created super_admin root@example.com/);
    const weak = await run(['create-user', '--email', 'weak@example.com'], env, 'password12345678\n');
    expect(weak.code).toBe(1);
    expect(weak.stderr).toMatch(/common/);
    const badRole = await run(
      ['create-user', '--email', 'x@example.com', '--role', 'god'],
      env,
      'correct horse battery\n',
    );
    expect(badRole.code).toBe(64);
  });

  it('refuses to start with a bad setting, naming it', async () => {
    const result = await run(['serve'], {
      DATA_DIR: mkdtempSync(join(tmpdir(), 'gh-cli-')),
      SECRET_KEY: 'short',
      PORT: 'x',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('SECRET_KEY');
    expect(result.stderr).toContain('PORT');
  });

  it('rotates keys only for asymmetric algorithms', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    expect((await run(['rotate-keys'], { DATA_DIR: dir })).code).toBe(64);
    const rotated = await run(['rotate-keys'], { DATA_DIR: dir, JWT_ALG: 'ES256' });
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/New signing key/);
  });

  it('serves, logs JSON, and shuts down gracefully on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    server = spawn(process.execPath, [CLI, 'serve'], {
      env: { PATH: process.env.PATH ?? '', DATA_DIR: dir, PORT: '0' },
    });
    const child = server;
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout?.on('data', (d) => {
        output += d;
        const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (match?.[1]) resolve(match[1]);
      });
      child.on('exit', () => reject(new Error(output)));
    });
    expect(output).toMatch(/generated 256 random bits/);
    const health = await fetch(`${url}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toMatch(/SIGTERM received/);
    for (const line of output.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  });
});

describe('gatehouse serve: shutdown and backups (compiled, real process)', () => {
  const password = 'correct horse battery';
  const servers: ServerProcess[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) if (server.alive()) server.child.kill('SIGKILL');
  });

  const serve = async (env: Record<string, string>) => {
    const server = await startServerProcess(env);
    servers.push(server);
    await server.waitFor(/Gatehouse is ready/);
    return server;
  };
  const register = async (url: string, email: string) => {
    const response = await fetch(`${url}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    return response.status;
  };
  const token = async (url: string, email: string) => {
    const response = await fetch(`${url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: email, password }).toString(),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  // Far below the old 10 s force-exit: a shutdown that waits on a socket fails this test.
  it('exits 0 on SIGTERM with busy and idle keep-alive clients and an open event stream', {
    timeout: 20_000,
  }, async () => {
    const server = await serve({
      DATA_DIR: mkdtempSync(join(tmpdir(), 'gh-cli-')),
      COOKIE_SECURE: 'false',
      SHUTDOWN_GRACE_PERIOD: '30s',
    });
    const email = 'host@example.com';
    expect(await register(server.url, email)).toBe(201);
    const hostAuth = {
      authorization: `Bearer ${String((await token(server.url, email)).body.access_token)}`,
    };
    const room = (await (
      await fetch(`${server.url}/rooms`, {
        method: 'POST',
        headers: { ...hostAuth, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Shutdown' }),
      })
    ).json()) as { code: string };
    const joined = (await (
      await fetch(`${server.url}/rooms/${room.code}/join`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ player: 'Bot', transport: 'bearer' }),
      })
    ).json()) as { access_token: string };
    const stream = await openSse(`${server.url}/rooms/${room.code}/events`, {
      authorization: `Bearer ${joined.access_token}`,
    });
    expect(stream.status).toBe(200);
    const idle = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      httpGet(`${server.url}/healthz`, { agent: idle }, (response) => {
        response.resume();
        response.on('end', resolve);
      }).on('error', reject);
    });
    // A client that keeps its connection busy right through the shutdown.
    const busy = new Agent({ keepAlive: true, maxSockets: 2 });
    let running = true;
    const statuses: number[] = [];
    const load = (async () => {
      while (running) {
        const status = await new Promise<number>((resolve) => {
          httpGet(`${server.url}/users/me`, { agent: busy, headers: hostAuth }, (response) => {
            response.resume();
            response.on('end', () => resolve(response.statusCode ?? 0));
          }).on('error', () => resolve(0));
        });
        statuses.push(status);
      }
    })();
    while (statuses.length < 5) await new Promise((resolve) => setImmediate(resolve));
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    running = false;
    await load;
    await stream.ended;
    idle.destroy();
    busy.destroy();
    expect(server.output()).toMatch(/SIGTERM received/);
    expect(server.output()).toMatch(/"msg":"stopped"/);
    // Requests answered during the shutdown are whole answers (200, or 503 once closing).
    for (const status of statuses.filter((s) => s !== 0)) expect([200, 503]).toContain(status);
  });

  it('backs up SQLite while the server writes, and the copy restores', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    const env = { DATA_DIR: dir, REGISTRATIONS_PER_HOUR: '100000' };
    const server = await serve(env);
    const before = ['a', 'b', 'c'].map((name) => `${name}.before@example.com`);
    for (const email of before) expect(await register(server.url, email)).toBe(201);

    let writing = true;
    let written = 0;
    const writes = (async () => {
      while (writing) {
        written += 1;
        await register(server.url, `w${written}.during@example.com`);
      }
    })();
    const copy = join(mkdtempSync(join(tmpdir(), 'gh-backup-')), 'copy.db');
    const backedUp = await run(['backup', copy], env);
    writing = false;
    await writes;
    expect(backedUp.stderr).toBe('');
    expect(backedUp.code).toBe(0);
    expect(backedUp.stdout).toMatch(/Backed up .* to .*copy\.db/);
    expect(written).toBeGreaterThan(0);

    const opened = new SQLite(copy, { readonly: true });
    expect(opened.pragma('integrity_check', { simple: true })).toBe('ok');
    const emails = (opened.prepare('select email from users').all() as { email: string }[]).map(
      (r) => r.email,
    );
    opened.close();
    expect(emails).toEqual(expect.arrayContaining(before));
    // Never overwrites an existing backup.
    const again = await run(['backup', copy], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists/);

    // A change after the backup, then the documented restore: stop, copy the file back, start.
    expect(await register(server.url, 'after@example.com')).toBe(201);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    copyFileSync(copy, join(dir, 'gatehouse.db'));
    rmSync(join(dir, 'gatehouse.db-wal'), { force: true });
    rmSync(join(dir, 'gatehouse.db-shm'), { force: true });
    const restored = await serve(env);
    expect((await token(restored.url, 'a.before@example.com')).status).toBe(200);
    expect((await token(restored.url, 'after@example.com')).body).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses to back up PostgreSQL and prints the pg_dump recipe', async () => {
    const result = await run(['backup', join(tmpdir(), 'never.db')], {
      DATA_DIR: mkdtempSync(join(tmpdir(), 'gh-cli-')),
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/pg_dump --format=custom/);
    expect(result.stderr).toMatch(/pg_restore/);
    expect((await run(['backup'], {})).code).toBe(64);
  });
});
