import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The long soak and load runs have their own command (npm run test:soak, vitest.soak.config.ts).
    exclude: [...configDefaults.exclude, 'test/soak/**'],
    // The native addon and the HTTP servers are process-wide resources; forks keep tests isolated.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
