import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { defaultConfig, type GatehouseConfig } from './config/config.js';
import { type BuildServerOptions, buildServer } from './server.js';

/**
 * Settings for tests: an in-memory SQLite database, a random secret, a temporary data directory,
 * and everything else at its production default (hashing parameters included).
 */
export function testConfig(overrides: Partial<GatehouseConfig> = {}): GatehouseConfig {
  return {
    ...defaultConfig,
    dataDir: mkdtempSync(join(tmpdir(), 'gatehouse-test-')),
    databaseUrl: 'sqlite::memory:',
    secretKey: new Uint8Array(randomBytes(32)),
    logLevel: 'silent',
    ...overrides,
  };
}

/** A controllable clock for token tests: starts at `start` and moves only when told. */
export interface TestClock {
  (): number;
  /** Moves time forward by `ms`. */
  advance(ms: number): void;
}

/** Creates a {@link TestClock}. */
export function createTestClock(start = Date.now()): TestClock {
  let now = start;
  return Object.assign(() => now, {
    advance(ms: number) {
      now += ms;
    },
  });
}

/** Builds a server on {@link testConfig} for `app.inject` tests. Close it when done. */
export async function buildTestServer(
  overrides: Partial<GatehouseConfig> = {},
  options: BuildServerOptions = {},
): Promise<FastifyInstance> {
  return buildServer(testConfig(overrides), { logger: false, ...options });
}
