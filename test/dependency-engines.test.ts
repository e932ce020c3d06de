/**
 * Gatehouse supports Node 20.19+ (package.json `engines`), but a few packages our dependencies pull
 * declare `engines: node >= 22`. Each such package is listed here with why it still runs on Node
 * 20.19, and is loaded the way its dependent loads it: a new one fails this test until someone
 * checks it and says why (or pins a version that accepts Node 20).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
// A transitive dependency (autocannon, prebuild-install), without types of its own.
const semver = require('semver') as {
  satisfies(version: string, range: string): boolean;
  minVersion(range: string): { version: string } | null;
};

interface LockEntry {
  version?: string;
  engines?: { node?: string } | string[];
}
const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as {
  packages: Record<string, LockEntry>;
};
const ours = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  engines: { node: string };
};

/**
 * Packages whose `engines` exclude Node 20, by path in node_modules, each with how it is loaded. Both are
 * ESM-only (`"type": "module"`, plain ES2020 code) and are loaded with `require()` by a CommonJS
 * dependent: require(esm) is on by default from Node 20.19.0 (and 22.12), which is our floor, so
 * `>= 22` is their maintainers' support policy, not a feature they need. Overriding them to their
 * last CommonJS releases (cookie 1.1.1, content-disposition 0.5/1.0) would run a pair neither dependent
 * is tested with (cookie 1.x percent-encodes every Set-Cookie value; 2.x only what it must), and an
 * override reaches only our own installs, never an application that installs gatehouse.
 */
const ALLOWED: Record<string, { load: () => unknown }> = {
  // @fastify/cookie 11 and light-my-request 6 (Fastify's inject) declare cookie ^2.0.0.
  'node_modules/cookie': {
    load: () => (require('light-my-request') as typeof import('light-my-request')).inject,
  },
  // @fastify/static 10 (inside @fastify/swagger-ui 6) declares content-disposition ^3.0.0.
  'node_modules/@fastify/swagger-ui/node_modules/content-disposition': {
    load: () => require('@fastify/swagger-ui'),
  },
};

describe('dependency engines', () => {
  const floor = semver.minVersion(ours.engines.node)?.version ?? '';

  it('our floor is a Node with require(esm) on by default (20.19.0)', () => {
    expect(floor).toBe('20.19.0');
  });

  it('every installed package accepts our Node floor, or is listed with its reason', () => {
    const excluding = Object.entries(lock.packages)
      .filter(([path, entry]) => {
        const node = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
        return path !== '' && node !== undefined && !semver.satisfies(floor, node);
      })
      .map(([path]) => path)
      .sort();
    expect(excluding).toEqual(Object.keys(ALLOWED).sort());
  });

  it('each listed package loads through its CommonJS dependent on this Node', () => {
    for (const { load } of Object.values(ALLOWED)) expect(load()).toBeTypeOf('function');
    expect(require('cookie')).toHaveProperty('parseCookie');
  });
});
