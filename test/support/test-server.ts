import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import { buildTestServer, type TestConfigOverrides } from '../../src/testing.js';
import { createTestDatabaseUrl } from './databases.js';

/**
 * A test server for the whole file on a throwaway database of `engine` (in-memory SQLite, or a
 * `gh_test_*` PostgreSQL database of its own): built before the file's tests, closed and its
 * database dropped after them. The returned function gives the server inside a test (it throws
 * before `beforeAll` has run). For the suites that run once per engine (`describe.each(engines)`).
 */
export function useTestServer(
  engine: 'sqlite' | 'postgres',
  overrides: TestConfigOverrides = {},
): () => FastifyInstance {
  let app: FastifyInstance | undefined;
  let drop: () => Promise<void> = async () => {};
  beforeAll(async () => {
    const database = await createTestDatabaseUrl(engine);
    drop = database.drop;
    app = await buildTestServer({ ...overrides, databaseUrl: database.url });
  });
  afterAll(async () => {
    await app?.close();
    await drop();
  });
  return () => {
    if (app === undefined) throw new Error('useTestServer: the server is built in beforeAll');
    return app;
  };
}
