import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootstrapSecret } from '../../src/config/bootstrap-secret.js';
import { CLI } from '../support/run-cli.js';
import { useTempDirs } from '../support/temp-dirs.js';

const tempDir = useTempDirs();

/**
 * Runs the compiled CLI under `ulimit -f 0`: every write to a file fails (Node ignores SIGXFSZ,
 * so the write returns EFBIG), the way a full disk fails it, with no root and no mount.
 */
function runWithoutRoom(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn('sh', ['-c', 'ulimit -f 0 && exec "$0" "$@"', process.execPath, CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('bootstrapSecret', () => {
  it('generates the secret once and reads it back after', () => {
    const dataDir = join(tempDir('gh-secret-'), 'data');
    const first = bootstrapSecret(dataDir);
    const second = bootstrapSecret(dataDir);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(Buffer.from(second.key).equals(Buffer.from(first.key))).toBe(true);
    expect(first.key.byteLength).toBe(32);
    // Only the secret (and no temporary file) is left.
    expect(readdirSync(dataDir)).toEqual(['secret.key']);
  });

  it('a write that finds no room leaves no secret.key behind, so the next start just makes one', async () => {
    const dataDir = join(tempDir('gh-secret-full-'), 'data');
    const full = await runWithoutRoom(['migrate'], { DATA_DIR: dataDir });
    // One line naming the cause and the fix, not "internal error … report it".
    expect(full.stderr).toMatch(/^gatehouse: no room to write \(EFBIG: .*\): free space on the disk/);
    expect(full.stderr.trim().split('\n')).toHaveLength(1);
    expect(full.code).toBe(74);
    // Created in place, it was left empty, and every later start was refused:
    // "secret.key holds fewer than 32 bytes; delete it to generate a new one".
    expect(existsSync(join(dataDir, 'secret.key'))).toBe(false);
    expect(readdirSync(dataDir)).toEqual([]);

    const secret = bootstrapSecret(dataDir);
    expect(secret.created).toBe(true);
  });
});
