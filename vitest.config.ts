import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Argon2id at OWASP cost is ~30 ms per hash on 2 cores; HTTP tests hash for real.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only contend for the argon2 thread pool.
    maxWorkers: 2,
    globalSetup: ['test/global-setup.ts'],
  },
});
