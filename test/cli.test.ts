import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

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
