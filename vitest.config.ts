import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Spawned-process and SQLite tests share two cores; keep parallelism modest so timings stay sane.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
