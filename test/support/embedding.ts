import { afterAll, beforeAll } from 'vitest';
import { createGatehouse, type Gatehouse } from '../../src/index.js';
import { type TestConfigOverrides, testConfig } from '../../src/testing.js';

/**
 * A Gatehouse core for the whole test file, made as an embedding app makes one
 * (`createGatehouse(config)`): created before the file's tests, closed after them. The returned
 * function gives the core inside a test (it throws before `beforeAll` has run).
 */
export function useGatehouse(overrides: TestConfigOverrides = {}): () => Gatehouse {
  let gatehouse: Gatehouse | undefined;
  beforeAll(async () => {
    gatehouse = await createGatehouse(testConfig(overrides));
  });
  afterAll(async () => gatehouse?.close());
  return () => {
    if (gatehouse === undefined) throw new Error('useGatehouse: the core is made in beforeAll');
    return gatehouse;
  };
}
