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
const packages = () => [
  ...new Set(
    Object.keys(createRequire(import.meta.url).cache)
      .map((path) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(path)?.[1])
      .filter((name) => name !== undefined),
  ),
];
const before = packages();
// First use: the documentation and the web UI load their modules now, and answer.
const answers = {};
for (const url of ['/openapi.json', '/docs/', '/']) answers[url] = (await app.inject({ method: 'GET', url })).statusCode;
const after = packages();
await app.close();
process.stdout.write(JSON.stringify({ before, after, answers }));
`;

describe('optional modules', () => {
  it('a server on SQLite without Redis never loads pg, ioredis, prom-client, argon2, Swagger or static serving', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD], {
      env: { PATH: process.env.PATH ?? '' },
    });
    const {
      before: loaded,
      after,
      answers,
    } = JSON.parse(stdout) as {
      before: string[];
      after: string[];
      answers: Record<string, number>;
    };
    // The control: the cache does see CommonJS packages that the server does use.
    expect(loaded).toContain('better-sqlite3');
    expect(loaded).not.toContain('pg');
    expect(loaded).not.toContain('pg-pool');
    expect(loaded).not.toContain('ioredis');
    // Nothing was hashed yet.
    expect(loaded).not.toContain('@node-rs/argon2');
    // Metrics are off by default.
    expect(loaded).not.toContain('prom-client');
    // Nobody asked for /docs, /openapi.json or a web page: no OpenAPI generator, YAML parser,
    // Swagger UI or static file server.
    for (const name of ['@fastify/swagger', '@fastify/swagger-ui', '@fastify/static', 'yaml']) {
      expect(loaded).not.toContain(name);
    }
    // The first request loads them and is answered.
    expect(answers).toEqual({ '/openapi.json': 200, '/docs/': 200, '/': 200 });
    expect(after).toEqual(
      expect.arrayContaining(['@fastify/swagger', '@fastify/swagger-ui', '@fastify/static', 'yaml']),
    );
  });
});
