import { defineConfig } from 'vitest/config';

// Long runs kept out of `npm test`: `npm run soak:arm` / `npm run soak`.
export default defineConfig({
  test: {
    include: ['test/**/*.soak.ts'],
    testTimeout: 900_000,
    pool: 'forks',
  },
});
