import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const DIST = join(import.meta.dirname, '..', '..', 'dist', 'src');

/**
 * Runs in a fresh Node process (the test runner itself has pg and ioredis loaded): builds the
 * reference server on SQLite without Redis, serves a few requests, and prints which packages
 * ended up in the module cache. ESM imports of CommonJS packages land in that cache too, which
 * better-sqlite3 (imported that way) shows in the same answer.
 */
const CHILD = `
import { createRequire } from 'node:module';
import { join } from 'node:path';
const { buildServer } = await import(${JSON.stringify(join(DIST, 'server.js'))});
const { testConfig } = await import(${JSON.stringify(join(DIST, 'testing.js'))});
const config = testConfig();
const app = await buildServer({ ...config, databaseUrl: 'sqlite:' + join(config.dataDir, 'g.db') }, { logger: false });
await app.inject({ method: 'GET', url: '/healthz' });
await app.inject({ method: 'GET', url: '/readyz' });
await app.inject({ method: 'GET', url: '/users/me' });
const loaded = Object.keys(createRequire(import.meta.url).cache)
  .map((path) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(path)?.[1])
  .filter((name) => name !== undefined);
await app.close();
process.stdout.write(JSON.stringify([...new Set(loaded)]));
`;

describe('optional modules', () => {
  it('a server on SQLite without Redis never loads pg, ioredis, prom-client or argon2', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD], {
      env: { PATH: process.env.PATH ?? '' },
    });
    const loaded = JSON.parse(stdout) as string[];
    // The control: the cache does see CommonJS packages that the server does use.
    expect(loaded).toContain('better-sqlite3');
    expect(loaded).not.toContain('pg');
    expect(loaded).not.toContain('pg-pool');
    expect(loaded).not.toContain('ioredis');
    // Nothing was hashed yet.
    expect(loaded).not.toContain('@node-rs/argon2');
    // Metrics are off by default.
    expect(loaded).not.toContain('prom-client');
  });
});
