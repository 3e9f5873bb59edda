import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Spawned-process and SQLite tests share two cores; keep parallelism modest so timings stay sane.
    maxWorkers: 2,
    // Test files share a worker's module cache instead of importing src/ and the dependencies again for each file
    // (most of a file's start-up time); no test relies on fresh module state (no module mocks, no env mutation).
    isolate: false,
    reporters: ['default'],
  },
});
