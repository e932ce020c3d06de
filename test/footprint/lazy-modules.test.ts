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
import { createRequire, register } from 'node:module';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
// ESM imports never reach require.cache: a resolve hook reports every URL the process resolves.
const { port1, port2 } = new MessageChannel();
const resolved = new Set();
port1.on('message', (url) => resolved.add(url));
port1.unref();
const HOOK = 'let port; export function initialize(data) { port = data.port; } ' +
  'export async function resolve(specifier, context, next) { const r = await next(specifier, context); port.postMessage(r.url); return r; }';
register('data:text/javascript,' + encodeURIComponent(HOOK), import.meta.url, { data: { port: port2 }, transferList: [port2] });
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
// Hook messages arrive asynchronously: let them all in before reading the set.
await new Promise((resolve) => setTimeout(resolve, 200));
const esm = [...resolved].filter((url) => url.includes('/node_modules/')).map((url) => url.replace(/^.*\\/node_modules\\//, ''));
// First use: the documentation and the web UI load their modules now, and answer.
const answers = {};
for (const url of ['/openapi.json', '/docs/', '/']) answers[url] = (await app.inject({ method: 'GET', url })).statusCode;
// The first player name loads the confusables map, and is answered.
const { normalizePlayerName } = await import(${JSON.stringify(join(DIST, 'apps', 'dicery', 'core', 'player-name.js'))});
answers.cyrillicAliceIsAlice = normalizePlayerName('\u0410lice').key === normalizePlayerName('Alice').key;
const after = packages();
await app.close();
process.stdout.write(JSON.stringify({ before, after, answers, esm }));
`;

describe('optional modules', () => {
  it('a server on SQLite without Redis never loads pg, ioredis, prom-client, argon2, nodemailer, Swagger, static serving or the confusables map', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD], {
      env: { PATH: process.env.PATH ?? '' },
    });
    const {
      before: loaded,
      after,
      answers,
      esm,
    } = JSON.parse(stdout) as {
      before: string[];
      after: string[];
      answers: Record<string, number | boolean>;
      esm: string[];
    };
    // The control: the cache does see CommonJS packages that the server does use.
    expect(loaded).toContain('better-sqlite3');
    expect(loaded).not.toContain('pg');
    expect(loaded).not.toContain('pg-pool');
    expect(loaded).not.toContain('ioredis');
    // ESM packages (paths under node_modules): the hook sees the ones the server does use...
    expect(esm.some((path) => path.startsWith('kysely/'))).toBe(true);
    expect(esm.some((path) => path.startsWith('typebox/build/schema/'))).toBe(true);
    // ...but no mail was sent, so no nodemailer (≈ 3.5 MiB RSS), and configuration checks use
    // typebox/schema's Check, not typebox/value (its converters, codecs and generators).
    expect(esm.filter((path) => path.startsWith('nodemailer/'))).toEqual([]);
    expect(esm.filter((path) => path.startsWith('typebox/build/value/'))).toEqual([]);
    // Nothing was hashed yet.
    expect(loaded).not.toContain('@node-rs/argon2');
    // Metrics are off by default.
    expect(loaded).not.toContain('prom-client');
    // Nobody asked for /docs, /openapi.json or a web page: no OpenAPI generator, YAML parser,
    // Swagger UI or static file server.
    for (const name of ['@fastify/swagger', '@fastify/swagger-ui', '@fastify/static', 'yaml']) {
      expect(loaded).not.toContain(name);
    }
    // No Dicery player has named themselves: no confusables map (≈ 0.8 MiB of heap).
    expect(loaded).not.toContain('unhomoglyph');
    // The first request loads them and is answered; the first player name loads the map, which
    // gives Cyrillic А the key of Latin A.
    expect(answers).toEqual({ '/openapi.json': 200, '/docs/': 200, '/': 200, cyrillicAliceIsAlice: true });
    expect(after).toEqual(
      expect.arrayContaining([
        '@fastify/swagger',
        '@fastify/swagger-ui',
        '@fastify/static',
        'yaml',
        'unhomoglyph',
      ]),
    );
  });
});
