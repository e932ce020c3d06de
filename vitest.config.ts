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
    // A worker keeps its modules from one test file to the next instead of importing the server
    // afresh for each (≈ 1.4 s a file, 356 s of a CI run's 780): the suite ran in 566 s, and its CPU
    // time halved. It asks what the source asks anyway: no module-level state that one server
    // (or test) leaves for the next. A test file restores what it stubs or spies on globals
    // (`vi.unstubAllGlobals`, `mockRestore`) and removes the process listeners it adds.
    isolate: false,
    globalSetup: ['test/global-setup.ts'],
    // Files and the tests in them run in a random order on every run (the seed is printed; rerun
    // one with --sequence.seed=N), so a test that leans on another's leftovers fails at once.
    sequence: { shuffle: { files: true, tests: true } },
  },
});
