import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Every Strata a test starts accepts the test admin token, and fetch sends it (see the file).
    setupFiles: ['test/setup/authenticate.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash tests spawn child servers; two cores means two forks at a time at most.
    pool: 'forks',
    maxWorkers: 2,
  },
});
