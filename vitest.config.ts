import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Timeouts catch hangs, not slowness: on a loaded 2-core machine starting a server (a hook) or
    // a CPU-bound property test takes several times its quiet duration.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // A private redis-server for the run when none answers (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/crash/**'],
          // Integration suites talk to one real Redis, each under its own key prefix, and spend
          // most of their time waiting for delayed jobs: three files at a time even on 2 cores
          // (vitest's default there is one file at a time).
          maxWorkers: 3,
        },
      },
      {
        extends: true,
        test: {
          name: 'crash',
          include: ['test/crash/**/*.test.ts'],
          // After the rest, alone: the crash runs measure lateness and should not share the CPU.
          sequence: { groupOrder: 1 },
          maxWorkers: 1,
        },
      },
    ],
  },
});
