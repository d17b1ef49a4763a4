import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Integration suites talk to one real Redis; each uses its own key prefix,
    // so files may run in parallel.
    pool: 'forks',
    // A private redis-server for the run when none answers (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
  },
});
