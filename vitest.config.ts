import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Four files at a time on two cores: most files spend their time waiting for a spawned CLI, the emulator's
    // processing delay or a daemon's timer, and no test asserts on elapsed time (only on order and outcome). Measured on
    // this kind of machine: 2 workers 92 s, 3 workers 76 s, 4 workers 57-69 s, with no failure in four runs at 4.
    maxWorkers: 4,
    // Worker threads rather than child processes: a thread starts and imports with less CPU (measured: 63 s and 87 s
    // of user CPU against 68 s and 100 s). No test changes the working directory or relies on signals to its own
    // process (both are per process); the CLI and the daemon are spawned as processes of their own.
    pool: 'threads',
    // Test files share a worker's module cache instead of importing src/ and the dependencies again for each file
    // (most of a file's start-up time); no test relies on fresh module state (no module mocks, no env mutation).
    isolate: false,
    reporters: ['default'],
  },
});
