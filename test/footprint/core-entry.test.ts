import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

describe('the `gatehouse` entry', () => {
  it('loads no fastify: the core is framework-free (built dist, as consumers import it)', () => {
    // A child process, so this test's own imports (vitest, the test server) cannot mask a load.
    const script = `
      const { createRequire } = await import('node:module');
      await import(${JSON.stringify(resolve(root, 'dist/src/index.js'))});
      const loaded = Object.keys(createRequire(import.meta.url).cache ?? {});
      const fastifyish = loaded.filter((file) => /node_modules\\/(fastify|@fastify\\/|fastify-plugin)/.test(file));
      process.stdout.write(JSON.stringify(fastifyish));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual([]);
  });
});
